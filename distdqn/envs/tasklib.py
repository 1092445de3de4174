"""Shared pieces of the built-in tasks: deterministic train/test splits, padded prompt tables, per-slot plans."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from distdqn.envs.base import Vocab

SPLIT_SALT = 20240917  # fixed: the split must not depend on the run's seed


def split_items(items: Sequence[tuple], test_fraction: float, salt: int = SPLIT_SALT) -> tuple[list, list]:
    """Deterministically split combinations (tuples of atoms) into (train, test), independent of any run seed.

    About `test_fraction` of the items go to test, but an item moves to test only while every atom it contains
    still occurs in some train item, so the held-out split tests unseen *combinations* of seen atoms."""
    items = sorted(set(items))
    order = np.random.RandomState(salt).permutation(len(items))
    count: dict[Hashable, int] = {}
    for it in items:
        for a in set(it):
            count[a] = count.get(a, 0) + 1
    want = int(round(test_fraction * len(items)))
    test_ids: set[int] = set()
    for i in order:
        if len(test_ids) >= want:
            break
        atoms = set(items[i])
        if all(count[a] > 1 for a in atoms):
            test_ids.add(int(i))
            for a in atoms:
                count[a] -= 1
    train = [it for i, it in enumerate(items) if i not in test_ids]
    test = [it for i, it in enumerate(items) if i in test_ids]
    if not train or not test:
        raise ValueError(
            f"cannot split {len(items)} items into non-empty train/test sets (test_fraction={test_fraction})"
        )
    return train, test


def pad_rows(rows: Sequence[Sequence[int]], width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ragged int rows -> (padded [N, W] int32 with 0 = pad, lengths [N] int32)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int32)
    w = int(lengths.max(initial=0)) if width is None else width
    out = np.zeros((len(rows), max(w, 1)), dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths


class PromptTable:
    """Prompts of one split as a padded array, so resetting k slots is one fancy-indexed copy."""

    def __init__(self, vocab: Vocab, prompts: Sequence[Sequence[str]]):
        if not prompts:
            raise ValueError("a prompt split is empty")
        self.tokens, self.lengths = pad_rows([vocab.encode(p) for p in prompts])
        self.texts = [" ".join(p) for p in prompts]

    def __len__(self) -> int:
        return len(self.lengths)

    def write(
        self, env_tokens: np.ndarray, env_length: np.ndarray, idx: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw one prompt per slot in idx, write it into env_tokens/env_length; returns the prompt ids [k]."""
        pid = rng.integers(0, len(self.lengths), size=len(idx))
        env_tokens[idx, : self.tokens.shape[1]] = self.tokens[pid]
        env_length[idx] = self.lengths[pid]
        return pid


def row_hash(tokens: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A 64-bit hash of tokens[i, start[i]:end[i]] per row (vectorised; multiplications wrap mod 2^64)."""
    cols = np.arange(tokens.shape[1])
    inside = (cols[None, :] >= start[:, None]) & (cols[None, :] < end[:, None])
    rel = np.clip(cols[None, :] - start[:, None], 0, None).astype(np.uint64)
    mult = (rel * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    vals = (tokens.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019)) * mult
    with np.errstate(over="ignore"):
        return np.bitwise_xor.reduce(np.where(inside, vals * np.uint64(0xBF58476D1CE4E5B9), 0), axis=1) ^ (
            (end - start).astype(np.uint64) * np.uint64(0x94D049BB133111EB)
        )
