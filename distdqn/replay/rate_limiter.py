"""The samples-per-insert rate limiter (Reverb's SampleToInsertRatio), counted in transitions.

With I transitions inserted and S transitions sampled so far, the expected number of samples is

    E(I) = samples_per_insert * max(0, I - min_size_to_sample)

and the limiter keeps S inside the band [lo, hi] = [E(I) * (1 - tolerance), E(I) * (1 + tolerance)]:

    can_sample(n, size)  <=>  size >= min_size_to_sample  and  S + n <= hi + slack      with slack = n
    can_insert(n)        <=>  I < min_size_to_sample      or   S >= lo - slack          with slack = 0

The slack of one request (`n` on the sample side) means the band is checked *before* an operation: a sample of n is
allowed while S <= hi and may overshoot hi by at most n; an insert is allowed while S >= lo and may push E(I)
past S by at most samples_per_insert * n. That choice is what rules out a deadlock: lo <= hi always, so for any S
either S <= hi (sampling may proceed, once min_size_to_sample items are stored) or S > hi >= lo (inserting may).
Checking after the operation instead (S + n <= hi) would stall both sides whenever a sample batch is wider than
the band, e.g. at the start when E(I) = 0. Reverb's error_buffer is an absolute band; here the band is a fraction of
E(I), i.e. the ratio S / (I - min_size_to_sample) stays within samples_per_insert * (1 +- tolerance) up to one batch.

`samples_per_insert == 0` disables the ratio: sampling needs only min_size_to_sample, inserting is always allowed.
"""

from __future__ import annotations

from typing import Any


class RateLimiter:
    """Decides whether a sample or insert may proceed now; the caller waits (or signals back-pressure) otherwise."""

    def __init__(self, min_size_to_sample: int, samples_per_insert: float, tolerance: float):
        if min_size_to_sample < 1:
            raise ValueError(f"min_size_to_sample must be >= 1, got {min_size_to_sample}")
        if samples_per_insert < 0:
            raise ValueError(f"samples_per_insert must be >= 0 (0 disables the limiter), got {samples_per_insert}")
        if not 0.0 <= tolerance < 1.0:
            raise ValueError(f"tolerance must lie in [0, 1), got {tolerance}")
        self.min_size_to_sample = int(min_size_to_sample)
        self.samples_per_insert = float(samples_per_insert)
        self.tolerance = float(tolerance)
        self.inserted = 0  # transitions
        self.sampled = 0  # transitions

    @classmethod
    def from_config(cls, replay_config: Any) -> RateLimiter:
        """The global limiter of a run's `ReplayConfig` (min_size_to_sample, samples_per_insert and its tolerance)."""
        c = replay_config
        return cls(c.min_size_to_sample, c.samples_per_insert, c.samples_per_insert_tolerance)

    def expected_samples(self) -> float:
        """E(I) = samples_per_insert * max(0, I - min_size_to_sample)."""
        return self.samples_per_insert * max(0, self.inserted - self.min_size_to_sample)

    def can_sample(self, n: int, size: int) -> bool:
        """True when a sample of `n` transitions may proceed with `size` transitions stored."""
        if size < self.min_size_to_sample:
            return False
        if self.samples_per_insert == 0:
            return True
        slack = n
        return self.sampled + n <= self.expected_samples() * (1.0 + self.tolerance) + slack

    def can_insert(self, n: int) -> bool:
        """True when an insert of `n` transitions may proceed (`n` does not change the answer; see the module doc)."""
        if self.samples_per_insert == 0 or self.inserted < self.min_size_to_sample:
            return True
        return self.sampled >= self.expected_samples() * (1.0 - self.tolerance)

    def on_sample(self, n: int) -> None:
        self.sampled += int(n)

    def on_insert(self, n: int) -> None:
        self.inserted += int(n)

    def load_counts(self, inserted: int, sampled: int) -> None:
        """Set both counters, e.g. from counts observed elsewhere (the shards' inserts, the learner's samples)."""
        self.inserted = int(inserted)
        self.sampled = int(sampled)

    def state_dict(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "sampled": self.sampled}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inserted = int(state["inserted"])
        self.sampled = int(state["sampled"])
