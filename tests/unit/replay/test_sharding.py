"""Sharding maths: batch allocation across shards, global weights, and sharded == unsharded in distribution."""

import numpy as np
import pytest

from distdqn import spec
from distdqn.replay.prioritized import PrioritizedReplay
from distdqn.replay.sharding import allocate, global_weights

FIELDS = spec.transition_dtypes(100, 4)


def items(ids: np.ndarray) -> dict[str, np.ndarray]:
    batch = spec.empty_batch(100, 4, ids.size)
    batch[spec.RETURN][:] = ids  # the item id
    return batch


def test_allocate_is_proportional_and_skips_empty_shards():
    rng = np.random.default_rng(0)
    totals = np.array([1.0, 0.0, 3.0, np.nan])
    counts = np.stack([allocate(256, totals, rng) for _ in range(2000)])
    assert (counts.sum(axis=1) == 256).all()
    assert counts[:, 1].max() == 0 and counts[:, 3].max() == 0
    np.testing.assert_allclose(counts.mean(axis=0), [64, 0, 192, 0], atol=1.5)
    with pytest.raises(ValueError, match="positive"):
        allocate(8, np.zeros(3), rng)


def test_global_weights_formula():
    p = np.array([0.5, 1.0, 2.0])
    w = global_weights(p, total_sum=10.0, size_sum=7, min_p_alpha=0.25, beta=0.5)
    np.testing.assert_allclose(w, (p / 0.25) ** -0.5, rtol=1e-6)
    assert global_weights(np.array([0.25]), 10.0, 7, 0.25, 0.5)[0] == 1.0


def test_sharded_sampling_matches_one_unsharded_replay():
    rng = np.random.default_rng(3)
    n_items, num_shards, alpha, beta = 90, 3, 0.6, 0.4
    td = rng.random(n_items) * 4
    td[rng.integers(0, n_items, 10)] *= 5  # some heavy items
    ids = np.arange(n_items, dtype=np.float32)

    single = PrioritizedReplay(n_items, FIELDS, alpha, 1e-3, seed=1)
    single.add(items(ids), td)
    # uneven split: shard k gets ids with id % 3 == k, but shard 0 also takes every other id of shard 1
    owner = ids.astype(int) % num_shards
    owner[(owner == 1) & (ids.astype(int) % 2 == 0)] = 0
    shards = []
    for k in range(num_shards):
        replay = PrioritizedReplay(n_items, FIELDS, alpha, 1e-3, shard_id=k, seed=10 + k)
        replay.add(items(ids[owner == k]), td[owner == k])
        shards.append(replay)

    draws, batch_size = 60_000, 300
    single_counts, sharded_counts = np.zeros(n_items), np.zeros(n_items)
    weights_by_id = np.zeros(n_items)
    for _ in range(draws // batch_size):
        np.add.at(single_counts, single.sample(batch_size, beta)[spec.RETURN].astype(int), 1)
        counts = allocate(batch_size, np.array([s.total for s in shards]), rng)
        total = sum(s.total for s in shards)
        min_p = min(s.min_priority for s in shards)
        for shard, count in zip(shards, counts, strict=True):
            batch = shard.sample(int(count), beta)
            got = batch[spec.RETURN].astype(int)
            np.add.at(sharded_counts, got, 1)
            weights_by_id[got] = global_weights(batch[spec.PRIORITY], total, n_items, min_p, beta)

    p = (td + 1e-3) ** alpha
    expected = draws * p / p.sum()
    df = n_items - 1
    for counts in (single_counts, sharded_counts):
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < df + 6 * np.sqrt(2 * df), chi2
    # two-sample chi-square between the sharded and the unsharded frequencies
    two_sample = ((single_counts - sharded_counts) ** 2 / (single_counts + sharded_counts)).sum()
    assert two_sample < df + 6 * np.sqrt(2 * df), two_sample
    # the global weights equal the unsharded replay's weights for the same item
    single_batch = single.sample(2000, beta)
    single_w = np.zeros(n_items)
    single_w[single_batch[spec.RETURN].astype(int)] = single_batch[spec.WEIGHT]
    seen = (weights_by_id > 0) & (single_w > 0)
    np.testing.assert_allclose(weights_by_id[seen], single_w[seen], rtol=1e-5)
