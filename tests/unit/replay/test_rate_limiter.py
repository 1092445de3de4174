"""RateLimiter: the samples-per-insert band, min size, disabling, and that alternating sides never deadlocks."""

import numpy as np
import pytest

from distdqn.replay.rate_limiter import RateLimiter


def test_waits_for_min_size():
    limiter = RateLimiter(min_size_to_sample=100, samples_per_insert=2.0, tolerance=0.5)
    assert not limiter.can_sample(10, size=99)
    assert limiter.can_insert(1000)


@pytest.mark.parametrize(
    "inserted,sampled,can_sample,can_insert",
    [
        # min_size 100, spi 2, tolerance 0.5: E = 2 * (I - 100), band [lo, hi] = [0.5 E, 1.5 E]; samples of n = 32
        (99, 0, False, True),  # below min size: no sampling, inserting always allowed
        (100, 0, True, True),  # E = 0: S = 0 is inside the band, both sides may go
        (100, 32, False, True),  # S + n = 64 > hi + n = 32: sampling waits; S >= lo = 0: inserts go
        (150, 100, True, True),  # E = 100, band [50, 150]
        (150, 150, True, True),  # S == hi: one more batch may overshoot hi by n
        (150, 151, False, True),  # S > hi
        (200, 99, True, False),  # E = 200, S < lo = 100: inserting waits, sampling catches up
        (200, 100, True, True),  # S == lo
        (300, 150, True, False),  # E = 400, S < lo = 200
    ],
)
def test_band(inserted, sampled, can_sample, can_insert):
    limiter = RateLimiter(100, 2.0, 0.5)
    limiter.load_state_dict({"inserted": inserted, "sampled": sampled})
    assert limiter.can_sample(32, size=inserted) == can_sample
    assert limiter.can_insert(32) == can_insert


def test_disabled_with_zero_ratio():
    limiter = RateLimiter(10, 0.0, 0.0)
    limiter.on_insert(10)
    limiter.on_sample(10**9)
    assert limiter.can_sample(512, size=10) and limiter.can_insert(10**6)


@pytest.mark.parametrize("spi,tol,insert_n,sample_n", [(2.0, 0.5, 50, 256), (0.25, 0.0, 1000, 32), (8.0, 0.1, 7, 512)])
def test_no_deadlock_and_ratio_stays_in_band(spi, tol, insert_n, sample_n):
    rng = np.random.default_rng(0)
    limiter = RateLimiter(min_size_to_sample=500, samples_per_insert=spi, tolerance=tol)
    for _ in range(20_000):
        size = limiter.inserted
        sample_ok, insert_ok = limiter.can_sample(sample_n, size), limiter.can_insert(insert_n)
        assert sample_ok or insert_ok, limiter.state_dict()
        if sample_ok and (not insert_ok or rng.random() < 0.5):
            limiter.on_sample(sample_n)
        else:
            limiter.on_insert(insert_n)
    expected = limiter.expected_samples()
    assert limiter.sampled > 0
    # within the band, give or take one batch on either side
    assert expected * (1 - tol) - spi * insert_n <= limiter.sampled <= expected * (1 + tol) + sample_n


def test_rejects_bad_values():
    with pytest.raises(ValueError, match="min_size_to_sample"):
        RateLimiter(0, 1.0, 0.1)
    with pytest.raises(ValueError, match="samples_per_insert"):
        RateLimiter(1, -1.0, 0.1)
    with pytest.raises(ValueError, match="tolerance"):
        RateLimiter(1, 1.0, 1.0)
