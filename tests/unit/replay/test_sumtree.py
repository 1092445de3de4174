"""Sum/min tree invariants: totals and minima after batch writes, last-write-wins, prefix search, sampling."""

import numpy as np
import pytest

from distdqn.replay.sumtree import SumMinTree


def check_invariants(tree: SumMinTree, leaves: np.ndarray) -> None:
    np.testing.assert_allclose(tree.total, leaves.sum(), rtol=1e-12)
    used = leaves[leaves > 0]
    assert tree.min == (used.min() if used.size else np.inf)
    np.testing.assert_array_equal(tree.get(np.arange(leaves.size)), leaves)


@pytest.mark.parametrize("capacity", [1, 2, 3, 7, 8, 1000, 5000, 10_000])
def test_set_keeps_sums_and_minima(capacity):
    rng = np.random.default_rng(capacity)
    tree = SumMinTree(capacity)
    leaves = np.zeros(capacity)
    for _ in range(20):
        idx = rng.integers(0, capacity, size=rng.integers(1, 64))
        values = rng.random(idx.size) + 0.01
        tree.set(idx, values)
        for i, v in zip(idx, values, strict=True):  # reference: sequential writes, last one wins
            leaves[i] = v
        check_invariants(tree, leaves)


def test_duplicate_indices_last_write_wins():
    tree = SumMinTree(16)
    tree.set(np.array([3, 5, 3, 3, 5]), np.array([1.0, 2.0, 3.0, 4.0, 0.5]))
    assert tree.get(np.array([3, 5])).tolist() == [4.0, 0.5]
    assert tree.total == 4.5 and tree.min == 0.5


@pytest.mark.parametrize("capacity,start,n", [(10, 0, 10), (10, 3, 4), (5000, 4095, 2), (9000, 100, 8900)])
def test_set_range_matches_set(capacity, start, n):
    rng = np.random.default_rng(0)
    values = rng.random(n) + 0.1
    a, b = SumMinTree(capacity), SumMinTree(capacity)
    a.set_range(start, values)
    b.set(np.arange(start, start + n), values)
    leaves = np.zeros(capacity)
    leaves[start : start + n] = values
    check_invariants(a, leaves)
    assert a.total == b.total and a.min == b.min


@pytest.mark.parametrize("capacity", [4096 * 16 + 5, 1 << 17])
def test_equal_leaves_give_bit_identical_sums_whatever_the_write_path(capacity):
    rng = np.random.default_rng(7)
    values = rng.random(capacity) * 10.0 ** rng.uniform(-3, 3, capacity)
    whole, by_range, one_by_one = SumMinTree(capacity), SumMinTree(capacity), SumMinTree(capacity)
    whole.rebuild(values)
    for start in range(0, capacity, 1000):
        by_range.set_range(start, values[start : start + 1000])
    one_by_one.rebuild(values)
    idx = rng.choice(capacity, 300, replace=False)
    one_by_one.set(idx, np.zeros(idx.size))
    for i in idx:  # lone writes: one node per level
        one_by_one.set(np.array([i]), values[[i]])
    for level in range(whole.levels + 1):  # every inner node, not just the total (which rounds small ones away)
        np.testing.assert_array_equal(whole._sums[level], by_range._sums[level])
        np.testing.assert_array_equal(whole._sums[level], one_by_one._sums[level])
    assert whole.total == by_range.total == one_by_one.total
    assert whole.min == by_range.min == one_by_one.min == values.min()


def test_rebuild_and_find_prefix():
    tree = SumMinTree(6)
    tree.rebuild(np.array([1.0, 0.0, 2.0, 3.0]))
    assert tree.total == 6.0 and tree.min == 1.0  # the smallest positive priority: 0 marks an unused leaf
    found = tree.find_prefix(np.array([0.0, 0.999, 1.0, 2.5, 3.0, 5.99]))
    assert found.tolist() == [0, 0, 2, 2, 3, 3]


@pytest.mark.parametrize("capacity", [5, 4096, 4097, 70_000, 1 << 17])  # 0, 1 and 2 wide levels below the roots
def test_find_prefix_matches_a_flat_cumsum(capacity):
    rng = np.random.default_rng(capacity)
    tree = SumMinTree(capacity)
    leaves = rng.random(capacity) * (rng.random(capacity) > 0.3)  # some unused (zero) leaves
    tree.rebuild(leaves)
    idx = rng.integers(0, capacity, 300)
    leaves[idx] = rng.random(300) + 0.5
    tree.set(idx, leaves[idx])
    check_invariants(tree, leaves)
    cumsum = np.cumsum(leaves)
    mass = np.sort(rng.random(2000)) * cumsum[-1]
    expected = cumsum.searchsorted(mass, side="right")
    found = tree.find_prefix(mass)
    # equal except where the mass sits within rounding of a leaf edge (the tree sums in another order)
    bounds = np.concatenate([[0.0], cumsum])
    gap = np.minimum(np.abs(bounds[expected] - mass), np.abs(bounds[np.minimum(expected + 1, capacity)] - mass))
    edge = gap < 1e-9 * cumsum[-1]
    assert np.all((found == expected) | edge), np.flatnonzero(found != expected)
    assert np.all(leaves[found] > 0)


def test_sampling_frequencies_follow_priorities():
    rng = np.random.default_rng(1)
    capacity = 50
    tree = SumMinTree(capacity)
    p = rng.random(capacity) + 0.05
    tree.rebuild(p)
    counts = np.zeros(capacity)
    for _ in range(200):
        np.add.at(counts, tree.sample_stratified(500, rng, capacity), 1)
    expected = counts.sum() * p / p.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum()
    df = capacity - 1
    assert chi2 < df + 6 * np.sqrt(2 * df), chi2


def test_sampling_never_returns_unused_leaves():
    rng = np.random.default_rng(2)
    tree = SumMinTree(1000)
    tree.set_range(0, np.full(3, 1e-3))
    leaves = tree.sample_stratified(10_000, rng, num_valid=3)
    assert leaves.min() >= 0 and leaves.max() <= 2


def test_rejects_bad_input():
    tree = SumMinTree(4)
    with pytest.raises(IndexError):
        tree.set(np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError):
        tree.sample_stratified(3, np.random.default_rng(), 1)  # total is 0
    with pytest.raises(ValueError):
        SumMinTree(0)
