"""Scalar schedules of the run (importance-weight beta), as pure functions of a counter."""

from __future__ import annotations


def linear(start: float, end: float, duration: int, t: int) -> float:
    """`start` at t = 0, `end` from t = duration on, linear in between (duration <= 0 means `end` at once)."""
    if duration <= 0 or t >= duration:
        return end
    return start + (end - start) * max(t, 0) / duration


def beta_at(replay_config, updates: int) -> float:
    """The importance-weight exponent after `updates` learner updates (annealed towards 1, as in PER)."""
    return linear(replay_config.beta_start, replay_config.beta_end, replay_config.beta_anneal_updates, updates)
