"""Scalar schedules of the run (importance-weight beta, the learning rate), as pure functions of a counter."""

from __future__ import annotations

import math


def linear(start: float, end: float, duration: int, t: int) -> float:
    """`start` at t = 0, `end` from t = duration on, linear in between (duration <= 0 means `end` at once)."""
    if duration <= 0 or t >= duration:
        return end
    return start + (end - start) * max(t, 0) / duration


def beta_at(replay_config, updates: int) -> float:
    """The importance-weight exponent after `updates` learner updates (annealed towards 1, as in PER)."""
    return linear(replay_config.beta_start, replay_config.beta_end, replay_config.beta_anneal_updates, updates)


def cosine(start: float, end: float, duration: int, t: int) -> float:
    """`start` at t = 0, `end` from t = duration on, half a cosine in between (duration <= 0 means `start` always)."""
    if duration <= 0:
        return start
    if t >= duration:
        return end
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * max(t, 0) / duration))


def lr_at(learner_config, updates: int) -> float:
    """The learning rate after `updates` updates: `lr`, decayed along a cosine to `lr * lr_final_fraction` over
    `lr_decay_updates` updates (0: constant), then held."""
    c = learner_config
    return cosine(c.lr, c.lr * c.lr_final_fraction, c.lr_decay_updates, updates)
