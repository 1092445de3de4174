"""PrioritizedReplay: FIFO keys, proportional sampling (chi-square), weights, stale updates, snapshots."""

import json

import numpy as np
import pytest

from distdqn import spec
from distdqn.replay.prioritized import PrioritizedReplay, load_state_dir, save_state_dir

VOCAB, MAX_LEN = 300, 6
FIELDS = spec.transition_dtypes(VOCAB, MAX_LEN)


def make_batch(start: int, n: int) -> dict[str, np.ndarray]:
    batch = spec.empty_batch(VOCAB, MAX_LEN, n)
    batch[spec.ACTION][:] = np.arange(start, start + n) % VOCAB  # identifies the item
    batch[spec.RETURN][:] = np.arange(start, start + n)
    return batch


def make_replay(capacity: int = 64, alpha: float = 0.6, seed: int = 0) -> PrioritizedReplay:
    return PrioritizedReplay(capacity, FIELDS, alpha=alpha, priority_eps=1e-3, shard_id=2, seed=seed)


def chi_square(replay: PrioritizedReplay, draws: int = 100_000) -> tuple[float, int]:
    """Chi-square statistic of sampled item counts against P(i) = p_i / sum p, and its degrees of freedom."""
    size = len(replay)
    counts = np.zeros(replay.capacity)
    for _ in range(draws // 1000):
        np.add.at(counts, replay.sample(1000, beta=0.4)[spec.SLOT], 1)
    p = replay._tree.get(np.arange(size))
    expected = draws * p / p.sum()
    assert counts[size:].sum() == 0
    return float(((counts[:size] - expected) ** 2 / expected).sum()), size - 1


def assert_matches_priorities(replay: PrioritizedReplay) -> None:
    chi2, df = chi_square(replay)
    assert chi2 < df + 6 * np.sqrt(2 * df), f"chi2 {chi2:.1f} with {df} degrees of freedom"


def test_add_returns_fifo_keys_and_wraps():
    replay = make_replay(capacity=10)
    slots, gens = replay.add(make_batch(0, 7), None)
    assert slots.tolist() == list(range(7)) and gens.tolist() == list(range(7))
    slots, gens = replay.add(make_batch(7, 6), None)
    assert slots.tolist() == [7, 8, 9, 0, 1, 2] and gens.tolist() == list(range(7, 13))
    assert len(replay) == 10 and replay.inserted == 13
    batch = replay.sample(200, beta=0.4)
    # slot s holds the item with generation g (g % 10 == s) and return_n == g
    np.testing.assert_array_equal(batch[spec.SLOT], batch[spec.GENERATION] % 10)
    np.testing.assert_array_equal(batch[spec.RETURN], batch[spec.GENERATION])


@pytest.mark.parametrize("inserted", [0, 3, 9, 10, 11, 25, 1000])
def test_generation_of_is_the_latest_generation_in_each_slot(inserted):
    replay = make_replay(capacity=10)
    replay.inserted = inserted  # the generation is derived from the insert counter alone
    slots = np.arange(10)
    last = inserted - 1
    np.testing.assert_array_equal(replay.generation_of(slots), last - (last - slots) % 10)


def test_batch_larger_than_capacity_keeps_the_newest():
    replay = make_replay(capacity=4)
    slots, gens = replay.add(make_batch(0, 10), np.arange(10.0))
    assert gens.tolist() == [6, 7, 8, 9] and sorted(slots.tolist()) == [0, 1, 2, 3]
    assert set(replay.sample(100, 0.4)[spec.RETURN].tolist()) <= {6.0, 7.0, 8.0, 9.0}


def test_sample_columns_and_weights():
    replay = make_replay(alpha=0.5)
    td = np.array([0.0, 1.0, 3.0, 8.0])
    replay.add(make_batch(0, 4), td)
    batch = replay.sample(64, beta=0.4)
    p = (td + 1e-3) ** 0.5
    n = 4
    prob = p / p.sum()
    expected_w = (n * prob) ** -0.4 / (n * prob.min()) ** -0.4
    np.testing.assert_allclose(batch[spec.WEIGHT], expected_w[batch[spec.SLOT]], rtol=1e-6)
    np.testing.assert_allclose(batch[spec.PROB], prob[batch[spec.SLOT]])
    assert batch[spec.SHARD].dtype == np.int32 and set(batch[spec.SHARD].tolist()) == {2}
    assert batch[spec.TOKENS].shape == (64, MAX_LEN) and batch[spec.TOKENS].dtype == FIELDS[spec.TOKENS][0]
    assert batch[spec.WEIGHT].max() <= 1.0


def test_new_items_get_the_running_max_priority():
    replay = make_replay()
    replay.add(make_batch(0, 2), np.array([0.5, 4.0]))
    replay.add(make_batch(2, 1), None)
    assert replay._tree.get(np.array([2]))[0] == pytest.approx((4.0 + 1e-3) ** 0.6)


def test_sampling_frequencies_match_priorities_after_updates_and_evictions():
    rng = np.random.default_rng(5)
    replay = make_replay(capacity=60)
    replay.add(make_batch(0, 40), rng.random(40) * 5)
    assert_matches_priorities(replay)
    batch = replay.sample(30, beta=0.4)
    replay.update_priorities(batch[spec.SLOT], batch[spec.GENERATION], rng.random(30) * 10)
    assert_matches_priorities(replay)
    replay.add(make_batch(40, 50), rng.random(50))  # wraps: evicts the 30 oldest
    assert_matches_priorities(replay)


def test_update_for_an_overwritten_item_is_ignored():
    replay = make_replay(capacity=4)
    replay.add(make_batch(0, 4), np.ones(4))
    batch = replay.sample(8, beta=0.4)
    stale_slots, stale_gens = batch[spec.SLOT].copy(), batch[spec.GENERATION].copy()
    replay.add(make_batch(4, 4), np.ones(4))  # overwrites every slot
    before = replay._tree.get(np.arange(4)).copy()
    applied = replay.update_priorities(stale_slots, stale_gens, np.full(stale_slots.size, 100.0))
    assert applied == 0
    np.testing.assert_array_equal(replay._tree.get(np.arange(4)), before)
    fresh = replay.sample(8, beta=0.4)
    assert replay.update_priorities(fresh[spec.SLOT], fresh[spec.GENERATION], np.full(8, 100.0)) == 8


def test_update_skips_out_of_range_and_non_finite():
    replay = make_replay(capacity=8)
    replay.add(make_batch(0, 3), None)
    applied = replay.update_priorities(np.array([0, 1, 5, -1]), np.array([0, 1, 5, -1]), np.array([1, np.nan, 1, 1]))
    assert applied == 1 and replay.skipped_nonfinite == 1
    assert np.isfinite(replay.total)


def test_add_rejects_bad_batches():
    replay = make_replay()
    bad = make_batch(0, 3)
    del bad[spec.LEN_S]
    with pytest.raises(ValueError, match="missing"):
        replay.add(bad, None)
    bad = make_batch(0, 3)
    bad[spec.TOKENS] = bad[spec.TOKENS][:, :2]
    with pytest.raises(ValueError, match="tokens"):
        replay.add(bad, None)
    with pytest.raises(ValueError):
        replay.add(make_batch(0, 3), np.array([1.0, np.inf, 1.0]))
    with pytest.raises(ValueError, match="empty"):
        make_replay().sample(1, 0.4)


def test_state_dict_round_trip_through_a_directory(tmp_path):
    replay = make_replay(capacity=32, seed=3)
    replay.add(make_batch(0, 50), np.random.default_rng(0).random(50))
    batch = replay.sample(10, 0.4)
    replay.update_priorities(batch[spec.SLOT], batch[spec.GENERATION], np.arange(10.0))
    arrays, meta = replay.state_dict()
    json.dumps(meta)  # JSON-able
    save_state_dir(tmp_path / "snap", arrays, meta)
    save_state_dir(tmp_path / "snap", arrays, meta)  # overwriting an existing snapshot works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]  # no temp dirs left behind

    restored = make_replay(capacity=32, seed=99)
    restored.load_state_dict(*load_state_dir(tmp_path / "snap"))
    assert len(restored) == len(replay) and restored.inserted == replay.inserted
    assert restored.total == pytest.approx(replay.total) and restored.min_priority == replay.min_priority
    a, b = replay.sample(16, 0.4), restored.sample(16, 0.4)  # same RNG state -> same draws
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_load_state_dict_rejects_a_different_layout_and_stays_unchanged(tmp_path):
    replay = make_replay(capacity=32)
    replay.add(make_batch(0, 5), None)
    arrays, meta = replay.state_dict()
    other = make_replay(capacity=16)
    with pytest.raises(ValueError, match="capacity"):
        other.load_state_dict(arrays, meta)
    arrays = {**arrays, spec.SNAPSHOT_PRIORITIES: arrays[spec.SNAPSHOT_PRIORITIES][:2]}
    target = make_replay(capacity=32)
    with pytest.raises(ValueError, match="priorities"):
        target.load_state_dict(arrays, meta)
    assert len(target) == 0


def test_load_state_dir_refuses_pickled_arrays(tmp_path):
    replay = make_replay(capacity=8)
    replay.add(make_batch(0, 2), None)
    arrays, meta = replay.state_dict()
    save_state_dir(tmp_path / "snap", arrays, meta)
    np.save(tmp_path / "snap" / "priorities.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        load_state_dir(tmp_path / "snap")
