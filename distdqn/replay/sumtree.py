"""A vectorised sum-tree plus min-tree over priorities: batch set, prefix-sum search and stratified sampling.

Layout: a wide tree. Every inner node has BRANCHING (16) children, stored level by level: level 0 holds the leaves,
level h + 1 holds one node per row of BRANCHING consecutive nodes of level h, so `rows(h)[j]` (a [BRANCHING] row of
the flat level-h array) are the children of node j of level h + 1. A row of 16 float64 is two cache lines, and a
1M-leaf tree is two levels deep below its roots instead of eight binary ones. Each level above the leaves has a sum
array and a min array; the leaves are their own sums and minima. An unused leaf holds 0: never sampled, and never
the minimum, which is the smallest *positive* priority (an item of priority 0 is never drawn, so it bounds no
importance weight). A subtree without a positive leaf has min +inf.

The top of the tree is cut off: the `num_roots` nodes of the highest kept level (at most MAX_ROOTS, the "roots")
and everything below them are kept up to date. Above them a flat cumulative sum over the roots does the work of
the upper levels: the total is its last entry, a query finds its root with one `np.searchsorted`, and an update
stops at the roots.

Numpy calls, not arithmetic, are the cost at these batch sizes, so every operation works on all requested items at
once, level by level, with a handful of calls per level and no Python loop per item:
- a query gathers each visited node's row of children ([n, 16]) and finds the child holding its mass from the
  row's prefix sums (one small matrix product with a triangular matrix of ones; the products only steer the
  search, the stored sums never come from them);
- an update gathers each changed node's row of children, transposes it ([16, m], so the reductions run along
  contiguous memory) and writes the parent's sum (added in one fixed order, so equal children always give
  bit-identical sums whichever write path produced them) and min.
Inner nodes are always recomputed from their children (never incremented), so float error does not accumulate
however many updates a run does.
"""

from __future__ import annotations

import numpy as np

BRANCHING = 16  # children per inner node; a power of two
_SHIFT = BRANCHING.bit_length() - 1
MAX_ROOTS = 4096
# row @ _BOUNDS = [mass before child 0 (= 0), before child 1, ..., before child BRANCHING - 1, 2 * sum]: column c + 1
# is where child c ends. The last end is doubled so that a u past the row's sum by rounding lands in the last child.
_BOUNDS = np.hstack([np.triu(np.ones((BRANCHING, BRANCHING)), 1), np.full((BRANCHING, 1), 2.0)])


class SumMinTree:
    """Sums and minima of `capacity` non-negative priorities, updated and searched in batches."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.levels = 0  # wide levels between the leaves and the roots
        self.num_roots = self.capacity
        while self.num_roots > MAX_ROOTS:
            self.num_roots = -(-self.num_roots // BRANCHING)
            self.levels += 1
        self.num_leaves = self.num_roots * BRANCHING**self.levels
        sizes = [self.num_roots * BRANCHING ** (self.levels - h) for h in range(self.levels + 1)]
        self._sums = [np.zeros(size) for size in sizes]  # [h] -> level h; [0] the leaves, [levels] the roots
        self._mins = [self._sums[0]] + [np.full(size, np.inf) for size in sizes[1:]]  # leaves: their own minima
        self._sum_rows = [level.reshape(-1, BRANCHING) for level in self._sums[:-1]]  # [h][j] = children of j at h+1
        self._min_rows = [level.reshape(-1, BRANCHING) for level in self._mins[:-1]]
        self._cumsum: np.ndarray | None = None  # cumulative sums over the roots, dropped by every write
        self._cached_min: float | None = None  # likewise
        self._strata_cache = np.zeros(0)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self._root_cumsum()[-1])

    @property
    def min(self) -> float:
        """Smallest positive priority (+inf when there is none)."""
        if self._cached_min is None:
            roots = self._mins[self.levels]
            if self.levels == 0:  # the roots are the leaves: unused ones hold 0
                roots = roots[roots > 0.0]
            self._cached_min = float(roots.min()) if roots.size else np.inf
        return self._cached_min

    @property
    def nbytes(self) -> int:
        return sum(level.nbytes for level in self._sums) + sum(level.nbytes for level in self._mins[1:])

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Priorities at leaf `indices`."""
        return self._sums[0].take(np.asarray(indices, dtype=np.int64))

    def leaves(self, count: int) -> np.ndarray:
        """A copy of the priorities of leaves [0, count)."""
        return self._sums[0][:count].copy()

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaf `indices` to `values` (any order; for a repeated index the last write wins) and propagate."""
        indices = np.asarray(indices, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if indices.shape != values.shape or indices.ndim != 1:
            raise ValueError(f"indices {indices.shape} and values {values.shape} must be equal 1-d shapes")
        if indices.size == 0:
            return
        nodes, values = _ascending_last_writes(indices, values)
        if nodes[0] < 0 or nodes[-1] >= self.capacity:
            raise IndexError(f"leaf index out of [0, {self.capacity})")
        self._sums[0][nodes] = values
        for h in range(1, self.levels + 1):
            # `nodes` stays ascending, so parents repeat in runs; writing the same value twice is harmless and
            # cheaper than removing the repeats at every level.
            nodes = nodes >> _SHIFT
            self._sums[h][nodes], self._mins[h][nodes] = self._reduce_rows(h, nodes)
        self._cumsum = self._cached_min = None

    def set_range(self, start: int, values: np.ndarray) -> None:
        """Set the contiguous leaves [start, start + len(values)) and propagate with slices (the insert path)."""
        values = np.asarray(values, dtype=np.float64)
        n = values.shape[0]
        if n == 0:
            return
        if start < 0 or start + n > self.capacity:
            raise IndexError(f"leaf range [{start}, {start + n}) out of [0, {self.capacity})")
        self._sums[0][start : start + n] = values
        self._propagate_range(start, start + n)

    def rebuild(self, values: np.ndarray) -> None:
        """Replace every leaf: `values` fills leaves [0, len(values)), the rest become unused; O(num_leaves)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.shape[0] > self.capacity:
            raise ValueError(f"expected at most {self.capacity} priorities, got shape {values.shape}")
        leaves = self._sums[0]
        leaves[:] = 0.0
        leaves[: values.shape[0]] = values
        self._propagate_range(0, self.num_leaves)

    def _propagate_range(self, lo: int, hi: int) -> None:
        """Recompute the ancestors of leaves [lo, hi) (hi exclusive) level by level with slices."""
        for h in range(1, self.levels + 1):
            lo, hi = lo >> _SHIFT, ((hi - 1) >> _SHIFT) + 1
            self._sums[h][lo:hi], self._mins[h][lo:hi] = self._reduce_rows(h, slice(lo, hi))
        self._cumsum = self._cached_min = None

    def _reduce_rows(self, h: int, nodes: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """(sums, minima) of the children of level-h `nodes`, from level h - 1."""
        # Transposed copies ([BRANCHING, m]): numpy reduces short rows slowly, but contiguous columns fast.
        kids = _columns(self._sum_rows[h - 1], nodes)
        m = kids.shape[1]
        if m == 1:
            # numpy adds the rows of a [BRANCHING, m >= 2] array one after another (the order of a plain loop), but a
            # lone column pairwise; doubled, a lone column is summed like any other, so equal children always give
            # bit-identical sums whichever path wrote them.
            kids = np.repeat(kids, 2, axis=1)
        sums = np.add.reduce(kids, axis=0)[:m]
        if h > 1:
            return sums, np.minimum.reduce(_columns(self._min_rows[h - 1], nodes), axis=0)
        mins = np.minimum.reduce(kids, axis=0)[:m]
        unused = mins == 0.0  # the children are leaves, where 0 marks an unused leaf, not a minimum
        if unused.any():  # rare once the tree is full: redo only those rows
            kids = kids[:, :m][:, unused]
            kids[kids == 0.0] = np.inf
            mins[unused] = np.minimum.reduce(kids, axis=0)
        return sums, mins

    def _root_cumsum(self) -> np.ndarray:
        if self._cumsum is None:
            cumsum = np.empty(self.num_roots + 1)
            cumsum[0] = 0.0
            np.cumsum(self._sums[self.levels], out=cumsum[1:])
            self._cumsum = cumsum
        return self._cumsum

    def _strata(self, n: int) -> np.ndarray:
        """arange(n) as float64, kept for the last n asked (a batch size rarely changes)."""
        if self._strata_cache.size != n:
            self._strata_cache = np.arange(n, dtype=np.float64)
        return self._strata_cache

    def find_prefix(self, mass: np.ndarray) -> np.ndarray:
        """For each `mass` u in [0, total), the leaf j with prefix(j) <= u < prefix(j) + p_j (all queries at once).

        Past a rounding edge (u at or beyond its subtree's sum) the search takes the last child, which may be an
        unused leaf; `sample_stratified` clamps such results.
        """
        u = np.array(mass, dtype=np.float64)  # a copy: descended in place
        cumsum = self._root_cumsum()  # [num_roots + 1], cumsum[r] = mass before root r, cumsum[r + 1] its end
        # The roots ending at or before u count up to u's root; the last end is left out so that a u at or past
        # the total (rounding) still lands in the last root.
        nodes = cumsum[1:-1].searchsorted(u, side="right")
        u -= cumsum.take(nodes)
        column = u[:, None]  # a view: follows the in-place updates of u
        row_start = np.arange(0, u.size * (BRANCHING + 1), BRANCHING + 1)
        for h in range(self.levels, 0, -1):
            bounds = self._sum_rows[h - 1].take(nodes, axis=0) @ _BOUNDS  # [n, BRANCHING + 1]
            child = (bounds[:, 1:] > column).argmax(axis=1)  # the first child whose end lies past u
            u -= bounds.ravel().take(row_start + child)  # minus the mass before that child
            nodes <<= _SHIFT
            nodes += child
        return nodes

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
        u = rng.random(n)
        u += self._strata(n)
        u *= total / n
        leaves = self.find_prefix(u)
        np.minimum(leaves, num_valid - 1, out=leaves)
        return leaves


def _columns(rows: np.ndarray, nodes: np.ndarray | slice) -> np.ndarray:
    """The `nodes` rows of `rows` ([m, BRANCHING]), transposed into a fresh [BRANCHING, m]."""
    rows = rows[nodes] if isinstance(nodes, slice) else rows.take(nodes, axis=0)
    return np.ascontiguousarray(rows.T)


def _ascending_last_writes(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique indices ascending, the value last written to each): the semantics of sequential writes.

    Sampled keys usually arrive in ascending order (stratified sampling returns leaves in order), with a repeat
    now and then when one item covers two slices: then each run's last entry is the last write, found without a
    sort. Only keys out of order take a stable argsort.
    """
    step = indices[1:] - indices[:-1]
    if step.min(initial=1) > 0:
        return indices, values
    if step.min() < 0:
        order = np.argsort(indices, kind="stable")  # stable: repeats stay in write order
        indices, values = indices[order], values[order]
        step = indices[1:] - indices[:-1]
    last = np.empty(indices.size, dtype=bool)
    np.not_equal(step, 0, out=last[:-1])
    last[-1] = True
    return indices[last], values[last]
