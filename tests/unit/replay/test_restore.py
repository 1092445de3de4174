"""restore_snapshots: exact load on a matching layout, re-insert with priorities otherwise, bad snapshots reported."""

from pathlib import Path

import numpy as np
import pytest

from distdqn import spec
from distdqn.replay import PrioritizedReplay, restore_snapshots, save_state_dir

VOCAB, MAX_LEN = 50, 6
FIELDS = spec.transition_dtypes(VOCAB, MAX_LEN)


def make_replay(capacity: int, fields=FIELDS, seed: int = 0) -> PrioritizedReplay:
    return PrioritizedReplay(capacity, fields, alpha=0.6, priority_eps=1e-3, seed=seed)


def saved(path: Path, ids: range, capacity: int = 64) -> PrioritizedReplay:
    """A replay holding items `ids` (their return is the id, their |TD| the id / 10), snapshotted to `path`."""
    replay = make_replay(capacity, seed=len(ids))
    batch = spec.empty_batch(VOCAB, MAX_LEN, len(ids))
    batch[spec.RETURN][:] = np.asarray(ids)
    replay.add(batch, np.asarray(ids, dtype=np.float64) / 10)
    save_state_dir(path, *replay.state_dict())
    return replay


def stored_returns(replay: PrioritizedReplay) -> list[int]:
    arrays, _ = replay.state_dict()
    return sorted(arrays[spec.SNAPSHOT_FIELD_PREFIX + spec.RETURN].astype(int).tolist())


def test_matching_layout_loads_exactly(tmp_path):
    old = saved(tmp_path / "s0", range(40))
    new = make_replay(64, seed=99)
    report = restore_snapshots(new, [tmp_path / "s0"])
    assert (report.size, report.exact, report.errors, report.ok) == (40, True, [], True)
    assert report.meta is not None and report.meta["inserted"] == 40
    assert new.inserted == old.inserted and new.max_priority == old.max_priority
    # the sampling RNG came back too: both draw the same items
    np.testing.assert_array_equal(new.sample(16, 0.4)[spec.SLOT], old.sample(16, 0.4)[spec.SLOT])


def test_other_capacity_reinserts_with_priorities(tmp_path):
    old = saved(tmp_path / "s0", range(40))
    new = make_replay(128)
    report = restore_snapshots(new, [str(tmp_path / "s0")])
    assert (report.size, report.exact, report.meta, report.errors) == (40, False, None, [])
    assert np.isclose(new.total, old.total)
    assert stored_returns(new) == list(range(40))


def test_a_nonempty_replay_is_appended_to_not_overwritten(tmp_path):
    saved(tmp_path / "s0", range(10))
    new = make_replay(64)
    new.add(spec.empty_batch(VOCAB, MAX_LEN, 5))
    report = restore_snapshots(new, [tmp_path / "s0"])
    assert (report.size, report.exact) == (15, False)


@pytest.mark.parametrize(
    ("capacity", "kept"),
    [
        (100, list(range(60))),  # everything fits: both snapshots' items
        (50, list(range(10, 60))),  # the ring keeps the last 50 inserted: snapshot order is insertion order
    ],
)
def test_several_snapshots_merge_in_order(tmp_path, capacity, kept):
    a = saved(tmp_path / "s0", range(40))
    b = saved(tmp_path / "s1", range(40, 60))
    new = make_replay(capacity)
    report = restore_snapshots(new, [tmp_path / "s0", tmp_path / "s1"])
    assert (report.size, report.exact, report.errors) == (len(kept), False, [])
    assert stored_returns(new) == kept
    if capacity >= 60:
        assert np.isclose(new.total, a.total + b.total)


def test_unreadable_snapshots_are_skipped_and_reported(tmp_path):
    saved(tmp_path / "s0", range(30))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    new = make_replay(64)
    report = restore_snapshots(new, [bad, tmp_path / "s0", tmp_path / "missing"])
    assert (report.size, report.exact, report.ok) == (30, False, False)
    assert len(report.errors) == 2
    assert str(bad) in report.errors[0] and "missing" in report.errors[1]
    assert stored_returns(new) == list(range(30))


def test_a_lone_unreadable_snapshot_leaves_the_replay_empty(tmp_path):
    new = make_replay(64)
    report = restore_snapshots(new, [tmp_path / "missing"])
    assert (report.size, report.exact, len(report.errors)) == (0, False, 1)
    assert len(new) == 0


def test_a_snapshot_of_another_layout_is_rejected(tmp_path):
    saved(tmp_path / "s0", range(10))
    masked = make_replay(64, fields=spec.transition_dtypes(VOCAB, MAX_LEN, with_mask=True))
    report = restore_snapshots(masked, [tmp_path / "s0"])
    assert (report.size, report.exact, len(report.errors)) == (0, False, 1)
    assert "mask_next" in report.errors[0]


def test_no_snapshots_is_an_empty_restore():
    report = restore_snapshots(make_replay(8), [])
    assert (report.size, report.exact, report.errors) == (0, False, [])


def test_restore_states_applies_the_same_rule_to_states_in_memory(tmp_path):
    from distdqn.replay import restore_states

    old = saved(tmp_path / "s0", range(40))
    exact = make_replay(64, seed=99)
    report = restore_states(exact, [old.state_dict()])
    assert (report.size, report.exact, report.errors) == (40, True, [])
    np.testing.assert_array_equal(exact.sample(16, 0.4)[spec.SLOT], old.sample(16, 0.4)[spec.SLOT])
    other = saved(tmp_path / "s1", range(40, 50))
    merged = make_replay(64)
    report = restore_states(merged, [old.state_dict(), ("not", "a state"), other.state_dict()], ["a", "b", "c"])
    assert (report.size, report.exact, len(report.errors)) == (50, False, 1)
    assert report.errors[0].startswith("b: TypeError")
    assert stored_returns(merged) == list(range(50))
    forced = make_replay(64)
    assert not restore_states(forced, [old.state_dict()], allow_exact=False).exact and len(forced) == 40
