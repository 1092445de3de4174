"""A replay shard (plain class, no Ray) under bad input: out-of-range values rejected by name and counted, a bounded
sender-stream table, and its state exported and imported in memory (checkpoints without a shared filesystem)."""

import numpy as np
import pytest

from distdqn import spec, wire
from distdqn.config import ReplayConfig
from distdqn.distributed.replay_worker import ReplayShardWorker
from distdqn.envs import TaskShape

VOCAB, MAX_LEN = 50, 6
SHAPE = TaskShape(VOCAB, MAX_LEN, with_mask=False, token_values=np.full(VOCAB, np.nan, np.float32))


def shard(k: int = 0, num_shards: int = 1, capacity: int = 600, **kw) -> ReplayShardWorker:
    config = ReplayConfig(capacity=capacity, num_shards=num_shards, min_size_to_sample=10, samples_per_insert=0.0)
    return ReplayShardWorker(k, shape=SHAPE, config=config, seed=k, **kw)


def batch(ids: np.ndarray) -> dict[str, np.ndarray]:
    out = spec.empty_batch(VOCAB, MAX_LEN, ids.size)
    out[spec.RETURN][:] = ids
    out[spec.LEN_S][:], out[spec.LEN_NEXT][:] = 1, 2
    return out


def push(worker, ids, actor=0, incarnation=0, seq=0, edit=None) -> dict:
    b = batch(np.asarray(ids))
    if edit:
        edit(b)
    priorities = np.ones(len(ids), np.float32)
    return worker.add(wire.encode_transitions(b, priorities, actor=actor, incarnation=incarnation, seq=seq))


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        (spec.TOKENS, lambda b: b[spec.TOKENS].__setitem__((0, 3), VOCAB)),
        (spec.ACTION, lambda b: b[spec.ACTION].__setitem__(1, 255)),
        (spec.LEN_NEXT, lambda b: b[spec.LEN_NEXT].__setitem__(2, 1)),
        (spec.RETURN, lambda b: b[spec.RETURN].__setitem__(0, np.nan)),
        (spec.DISCOUNT, lambda b: b[spec.DISCOUNT].__setitem__(0, 2.0)),
    ],
)
def test_out_of_range_messages_are_rejected_by_name_and_nothing_is_inserted(field, edit):
    worker = shard()
    ack = push(worker, np.arange(5), seq=0, edit=edit)
    assert ack["status"] == "rejected" and ack["accepted"] == 0 and ack["error"].startswith(f"{field}:")
    stats = worker.stats()
    assert (stats["rejected"], stats["size"], stats["last_error"]) == (1, 0, ack["error"])
    assert stats["streams"] == 0  # a rejected message opens no stream: its seq is not consumed
    assert push(worker, np.arange(5), seq=0)["status"] == "ok"  # keeps serving, the same seq is not a duplicate
    assert len(worker.replay) == 5 and worker.sample(4, 0.4) is not None


def test_the_stream_table_is_bounded_least_recently_heard_of_evicted_first():
    worker = shard(max_streams=4)
    push(worker, [0], actor=0, seq=0)
    for actor in range(1, 10):  # made-up senders
        push(worker, [actor], actor=actor, seq=0)
        push(worker, [0], actor=0, seq=actor)  # actor 0 keeps talking: never the least recent
    stats = worker.stats()
    assert (stats["streams"], stats["streams_evicted"], stats["duplicates"]) == (4, 6, 0)
    assert (0, 0) in worker.streams and (9, 0) in worker.streams and (1, 0) not in worker.streams
    assert push(worker, [0], actor=0, seq=3)["status"] == "duplicate"  # actor 0's stream kept its history


def test_export_then_import_is_exact_with_the_bookkeeping():
    old = shard()
    push(old, np.arange(40), seq=0)
    push(old, np.arange(40, 50), actor=1, seq=7)
    old.sample(8, beta=0.4)
    arrays, meta = old.export_state()
    assert meta["worker"]["streams"] == [[0, 0, 0], [1, 0, 7]]
    push(old, np.arange(50, 60), seq=1)  # the export is a copy: later inserts do not change it
    assert len(arrays[spec.SNAPSHOT_PRIORITIES]) == 50
    new = shard()
    report = new.import_states([(arrays, meta)])
    assert report == {"restored": True, spec.SHARD: 0, "size": 50, "exact": True, "error": None}
    assert new.counters["duplicates"] == 0 and new.limiter.inserted == 50
    assert push(new, np.arange(40, 50), actor=1, seq=7)["status"] == "duplicate"
    assert push(new, np.arange(40, 50), actor=1, seq=8)["status"] == "ok"


def test_import_of_several_states_reinserts_with_priorities_and_skips_bad_ones():
    parts = [shard(0, 2), shard(1, 2)]
    push(parts[0], np.arange(30))
    push(parts[1], np.arange(30, 50), actor=1)
    states = [p.export_state() for p in parts]
    new = shard(0, 1)
    report = new.import_states([states[0], ("junk", None), states[1], ({"priorities": np.ones(3)}, {})])
    assert (report["size"], report["exact"], report["restored"]) == (50, False, False)
    assert "state 1: TypeError" in report["error"] and "state 3: ValueError" in report["error"]
    assert np.isclose(new.replay.total, parts[0].replay.total + parts[1].replay.total)
    assert new.limiter.inserted == 50 and not new.streams  # fresh bookkeeping after a re-insert


def test_import_of_nothing_or_of_junk_starts_empty_and_keeps_serving():
    worker = shard()
    assert worker.import_states([])["size"] == 0
    report = worker.import_states([({}, {"version": 99})])
    assert report["size"] == 0 and not report["restored"]
    assert push(worker, np.arange(3))["status"] == "ok"


def test_snapshot_writes_what_export_state_returns(tmp_path):
    from distdqn.replay import load_state_dir

    worker = shard()
    push(worker, np.arange(12))
    assert worker.snapshot(str(tmp_path / "s0"))["saved"]
    on_disk, meta = load_state_dir(tmp_path / "s0")
    arrays, exported = worker.export_state()
    assert meta == exported and on_disk.keys() == arrays.keys()
    for name in arrays:
        np.testing.assert_array_equal(on_disk[name], arrays[name])
