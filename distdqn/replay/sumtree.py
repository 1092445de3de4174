"""A vectorised sum-tree plus min-tree over priorities: batch set, prefix-sum search and stratified sampling.

Layout: `num_leaves` (a power of two) leaves under a complete binary tree stored heap-style in one float64 array of
length 2 * num_leaves: node n has children 2n and 2n+1, leaf j lives at node num_leaves + j. The sum tree holds sums
of priorities, the min tree minima; an unused leaf holds 0 in the sum tree and +inf in the min tree, so it is never
sampled and never the minimum.

The top of the tree is cut off: only the `num_roots` nodes of one level (at most 4096, the "roots") and everything
below them are kept. Above them a flat cumulative sum over the roots does the work of the upper levels: the total is
its last entry, a query finds its root with one `np.searchsorted`, and an update stops at the roots. For a 1M-leaf
tree this halves the levels an update walks (20 -> 8) at the cost of one 4096-long cumsum per sample.

Every operation works on all requested items at once, level by level (a handful of numpy calls per level): no Python
loop per item. Inner nodes are always recomputed from their children (never incremented), so float error does not
accumulate however many updates a run does.
"""

from __future__ import annotations

import numpy as np

MAX_ROOTS = 4096


class SumMinTree:
    """Sums and minima of `capacity` non-negative priorities, updated and searched in batches."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.num_leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self.num_roots = min(self.num_leaves, MAX_ROOTS)
        self.levels = (self.num_leaves // self.num_roots).bit_length() - 1  # binary levels from roots to leaves
        self._sum = np.zeros(2 * self.num_leaves, dtype=np.float64)
        self._min = np.full(2 * self.num_leaves, np.inf, dtype=np.float64)
        self._cumsum: np.ndarray | None = None  # cache over the roots, dropped by every write

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self._root_cumsum()[-1])

    @property
    def min(self) -> float:
        """Smallest priority set so far (+inf when none is set)."""
        return float(self._min[self.num_roots : 2 * self.num_roots].min())

    @property
    def nbytes(self) -> int:
        return self._sum.nbytes + self._min.nbytes

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Priorities at leaf `indices`."""
        return self._sum[self.num_leaves + np.asarray(indices, dtype=np.int64)]

    def leaves(self, count: int) -> np.ndarray:
        """A copy of the priorities of leaves [0, count)."""
        return self._sum[self.num_leaves : self.num_leaves + count].copy()

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaf `indices` to `values` (any order; for a repeated index the last write wins) and propagate."""
        indices = np.asarray(indices, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if indices.shape != values.shape or indices.ndim != 1:
            raise ValueError(f"indices {indices.shape} and values {values.shape} must be equal 1-d shapes")
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"leaf index out of [0, {self.capacity})")
        # Last write wins: np.unique on the reversed array returns each index's first (= last original) position.
        nodes, first = np.unique(indices[::-1], return_index=True)
        leaf_values = values[::-1][first]
        nodes += self.num_leaves
        s, m = self._sum, self._min
        s[nodes] = leaf_values
        m[nodes] = leaf_values
        for _ in range(self.levels):
            # `nodes` stays sorted, so parents repeat in runs; writing the same value twice is harmless and cheaper
            # than removing the repeats at every level.
            nodes >>= 1
            left = nodes << 1
            right = left | 1
            s[nodes] = s[left] + s[right]
            m[nodes] = np.minimum(m[left], m[right])
        self._cumsum = None

    def set_range(self, start: int, values: np.ndarray) -> None:
        """Set the contiguous leaves [start, start + len(values)) and propagate with slices (the insert path)."""
        values = np.asarray(values, dtype=np.float64)
        n = values.shape[0]
        if n == 0:
            return
        if start < 0 or start + n > self.capacity:
            raise IndexError(f"leaf range [{start}, {start + n}) out of [0, {self.capacity})")
        lo = start + self.num_leaves
        hi = lo + n  # exclusive
        s, m = self._sum, self._min
        s[lo:hi] = values
        m[lo:hi] = values
        for _ in range(self.levels):
            lo >>= 1
            hi = (hi + 1) >> 1
            np.add(s[2 * lo : 2 * hi : 2], s[2 * lo + 1 : 2 * hi : 2], out=s[lo:hi])
            np.minimum(m[2 * lo : 2 * hi : 2], m[2 * lo + 1 : 2 * hi : 2], out=m[lo:hi])
        self._cumsum = None

    def rebuild(self, values: np.ndarray) -> None:
        """Replace every leaf: `values` fills leaves [0, len(values)), the rest become unused; O(num_leaves)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.shape[0] > self.capacity:
            raise ValueError(f"expected at most {self.capacity} priorities, got shape {values.shape}")
        s, m, width = self._sum, self._min, self.num_leaves
        s[width:] = 0.0
        m[width:] = np.inf
        s[width : width + values.shape[0]] = values
        m[width : width + values.shape[0]] = values
        while width > self.num_roots:
            width >>= 1
            s[width : 2 * width] = s[2 * width : 4 * width].reshape(-1, 2).sum(axis=1)
            m[width : 2 * width] = m[2 * width : 4 * width].reshape(-1, 2).min(axis=1)
        self._cumsum = None

    def _root_cumsum(self) -> np.ndarray:
        if self._cumsum is None:
            self._cumsum = np.concatenate(([0.0], np.cumsum(self._sum[self.num_roots : 2 * self.num_roots])))
        return self._cumsum

    def find_prefix(self, mass: np.ndarray) -> np.ndarray:
        """For each `mass` u in [0, total), the leaf j with prefix(j) <= u < prefix(j) + p_j (all queries at once)."""
        u = np.array(mass, dtype=np.float64)  # a copy: descended in place
        cumsum = self._root_cumsum()  # [num_roots + 1], cumsum[r] = mass before root r
        root = np.searchsorted(cumsum, u, side="right") - 1
        np.clip(root, 0, self.num_roots - 1, out=root)
        u -= cumsum[root]
        nodes = root + self.num_roots
        s = self._sum
        for _ in range(self.levels):
            nodes <<= 1  # left child
            left = s[nodes]
            go_right = u >= left
            np.subtract(u, left, out=u, where=go_right)
            nodes += go_right
        return nodes - self.num_leaves

    def sample_stratified(self, n: int, rng: np.random.Generator, num_valid: int) -> np.ndarray:
        """`n` leaves drawn proportionally to priority, one uniform draw in each of n equal slices of the total mass.

        `num_valid` (leaves [0, num_valid) are in use) bounds the result: float rounding at a slice edge can step
        past the last used leaf onto an unused one (priority 0), which is clamped back onto the last used leaf.
        """
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        total = self._root_cumsum()[-1]
        if not total > 0.0:
            raise ValueError("cannot sample: the total priority is 0")
        u = (np.arange(n, dtype=np.float64) + rng.random(n)) * (total / n)
        leaves = self.find_prefix(u)
        np.minimum(leaves, num_valid - 1, out=leaves)
        return leaves
