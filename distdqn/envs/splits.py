"""Deterministic train/test splits: a seed-free hash of an integer key decides which split an item belongs to.

An item (an operand pair, a start-goal pair, an answer word) is encoded as a non-negative integer key; the key is
mixed with splitmix64 and mapped to u in [0, 1). The item is held out (split "test") iff u < test_fraction. The
split depends only on the key and the salt, never on the environment's seed, so every run, actor and difficulty
agrees on which items are held out.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def split_hash(keys: np.ndarray | int, salt: int = 0) -> np.ndarray:
    """u in [0, 1) per key (float64, same shape as `keys`): splitmix64(key + salt * golden), top 53 bits."""
    with np.errstate(over="ignore"):  # arithmetic mod 2^64 is the point of the mix
        x = np.asarray(keys).astype(np.uint64) + np.uint64(salt) * _GOLDEN + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def in_split(keys: np.ndarray | int, split: str, test_fraction: float, salt: int = 0) -> np.ndarray:
    """Bool mask: which keys belong to `split` ("train" or "test") when a `test_fraction` of all keys is held out."""
    held_out = split_hash(keys, salt) < test_fraction
    return held_out if split == "test" else ~held_out
