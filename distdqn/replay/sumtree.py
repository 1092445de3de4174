"""A vectorised sum-tree plus min-tree over priorities: batch set, prefix-sum search and stratified sampling.

Layout: `num_leaves` (a power of two) leaves under a complete binary tree stored heap-style: node n has children 2n
and 2n+1, leaf j is node num_leaves + j. Each node holds the pair (sum, min) of its subtree's priorities, stored
side by side in one float64 array `_pairs[node] = (sum, min)`; an unused leaf holds (0, +inf), so it is never
sampled and never the minimum. Keeping the pair together lets one numpy gather fetch both children of a node with
both their sums and minima (a 32-byte record view), and one scatter write a node's new pair: an update costs about
five numpy calls per level instead of twelve. Numpy calls, not arithmetic, are the cost at these batch sizes.

The top of the tree is cut off: only the `num_roots` nodes of one level (at most MAX_ROOTS, the "roots") and
everything below them are kept up to date. Above them a flat cumulative sum over the roots does the work of the
upper levels: the total is its last entry, a query finds its root with one `np.searchsorted`, and an update stops
at the roots. For a 1M-leaf tree that cuts the levels an update or a query walks from 20 to 8.

Every operation works on all requested items at once, level by level: no Python loop per item. Inner nodes are
always recomputed from their children (never incremented), so float error does not accumulate however many updates
a run does.
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
        self._pairs = np.empty((2 * self.num_leaves, 2), dtype=np.float64)  # [node] -> (sum, min)
        self._pairs[:, 0] = 0.0
        self._pairs[:, 1] = np.inf
        self._sum = self._pairs[:, 0]  # strided views
        self._min = self._pairs[:, 1]
        self._as_complex = self._pairs.view(np.complex128)[:, 0]  # [node] -> one (sum, min) record
        self._children = self._pairs.reshape(-1, 4)  # [node] -> (sum_2n, min_2n, sum_2n+1, min_2n+1)
        self._children_rec = self._pairs.reshape(-1).view("V32")  # the same rows as opaque records: fast gathers
        self._cumsum: np.ndarray | None = None  # cumulative sums over the roots, dropped by every write
        self._cached_min: float | None = None  # likewise

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self._root_cumsum()[-1])

    @property
    def min(self) -> float:
        """Smallest priority set so far (+inf when none is set)."""
        if self._cached_min is None:
            self._cached_min = float(self._min[self.num_roots : 2 * self.num_roots].min())
        return self._cached_min

    @property
    def nbytes(self) -> int:
        return self._pairs.nbytes

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
        nodes, values = _sorted_last_writes(indices, values)
        pairs = np.empty((nodes.size, 2), dtype=np.float64)
        pairs[:, 0] = pairs[:, 1] = values
        nodes += self.num_leaves
        as_complex, children = self._as_complex, self._children_rec
        records = pairs.view(np.complex128)[:, 0]
        pair_sum, pair_min = pairs[:, 0], pairs[:, 1]
        as_complex[nodes] = records
        for _ in range(self.levels):
            # `nodes` stays sorted, so parents repeat in runs; writing the same value twice is harmless and cheaper
            # than removing the repeats at every level.
            nodes >>= 1
            kids = children.take(nodes).view(np.float64).reshape(-1, 4)
            np.add(kids[:, 0], kids[:, 2], out=pair_sum)
            np.minimum(kids[:, 1], kids[:, 3], out=pair_min)
            as_complex[nodes] = records
        self._cumsum = self._cached_min = None

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
        self._sum[lo:hi] = values
        self._min[lo:hi] = values
        children = self._children
        for _ in range(self.levels):
            lo >>= 1
            hi = (hi + 1) >> 1
            kids = children[lo:hi]
            np.add(kids[:, 0], kids[:, 2], out=self._sum[lo:hi])
            np.minimum(kids[:, 1], kids[:, 3], out=self._min[lo:hi])
        self._cumsum = self._cached_min = None

    def rebuild(self, values: np.ndarray) -> None:
        """Replace every leaf: `values` fills leaves [0, len(values)), the rest become unused; O(num_leaves)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.shape[0] > self.capacity:
            raise ValueError(f"expected at most {self.capacity} priorities, got shape {values.shape}")
        width = self.num_leaves
        self._sum[width:] = 0.0
        self._min[width:] = np.inf
        self._sum[width : width + values.shape[0]] = values
        self._min[width : width + values.shape[0]] = values
        while width > self.num_roots:
            width >>= 1
            kids = self._children[width : 2 * width]
            np.add(kids[:, 0], kids[:, 2], out=self._sum[width : 2 * width])
            np.minimum(kids[:, 1], kids[:, 3], out=self._min[width : 2 * width])
        self._cumsum = self._cached_min = None

    def _root_cumsum(self) -> np.ndarray:
        if self._cumsum is None:
            cumsum = np.empty(self.num_roots + 1)
            cumsum[0] = 0.0
            np.cumsum(self._sum[self.num_roots : 2 * self.num_roots], out=cumsum[1:])
            self._cumsum = cumsum
        return self._cumsum

    def find_prefix(self, mass: np.ndarray) -> np.ndarray:
        """For each `mass` u in [0, total), the leaf j with prefix(j) <= u < prefix(j) + p_j (all queries at once)."""
        u = np.array(mass, dtype=np.float64)  # a copy: descended in place
        cumsum = self._root_cumsum()  # [num_roots + 1], cumsum[r] = mass before root r
        root = cumsum.searchsorted(u, side="right")  # >= 1 since cumsum[0] = 0 <= u
        root -= 1
        np.minimum(root, self.num_roots - 1, out=root)  # u >= total after rounding
        u -= cumsum[root]
        nodes = root + self.num_roots
        left_sums = self._children[:, 0]  # [n] -> sum of node 2n
        for _ in range(self.levels):
            left = left_sums[nodes]  # fancy indexing: .take would copy this strided view first
            go_right = u >= left
            u -= np.where(go_right, left, 0.0)
            nodes <<= 1
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


def _sorted_last_writes(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique indices ascending, the value last written to each): the semantics of sequential writes.

    Sampled keys usually arrive sorted and distinct (stratified sampling returns leaves in order), so that case is
    checked first and costs two comparisons instead of a sort.
    """
    distinct_ascending = indices[1:] > indices[:-1]
    if distinct_ascending.all():
        return indices.copy(), values
    order = np.argsort(indices, kind="stable")  # stable: repeats stay in write order
    nodes = indices[order]
    last = np.empty(nodes.size, dtype=bool)
    np.not_equal(nodes[1:], nodes[:-1], out=last[:-1])
    last[-1] = True
    return nodes[last], values[order[last]]
