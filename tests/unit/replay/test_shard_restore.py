"""A replay shard restores snapshots of a different shard count, and starts empty (saying why) from a bad one."""

import json

import numpy as np

from distdqn import spec, wire
from distdqn.config import ReplayConfig
from distdqn.distributed.replay_worker import ReplayShardWorker
from distdqn.envs import TaskShape

VOCAB, MAX_LEN = 50, 6
SHAPE = TaskShape(VOCAB, MAX_LEN, with_mask=False, token_values=np.full(VOCAB, np.nan, np.float32))


def shard(k: int, num_shards: int, capacity: int = 600, snapshot_path=None) -> ReplayShardWorker:
    config = ReplayConfig(capacity=capacity, num_shards=num_shards, min_size_to_sample=10, samples_per_insert=0.0)
    return ReplayShardWorker(k, shape=SHAPE, config=config, seed=k, snapshot_path=snapshot_path)


def push(worker: ReplayShardWorker, ids: np.ndarray, priorities: np.ndarray) -> None:
    batch = spec.empty_batch(VOCAB, MAX_LEN, ids.size)
    batch[spec.RETURN][:] = ids
    batch[spec.LEN_S][:], batch[spec.LEN_NEXT][:] = 1, 2  # in range: the shard checks
    worker.add(wire.encode_transitions(batch, priorities.astype(np.float32), actor=0, incarnation=0, seq=int(ids[0])))


def test_two_snapshots_merge_into_one_shard_with_their_priorities(tmp_path):
    old = [shard(0, 2), shard(1, 2)]
    push(old[0], np.arange(100), np.linspace(0.1, 1.0, 100))
    push(old[1], np.arange(100, 150), np.full(50, 2.0))
    for k, worker in enumerate(old):
        assert worker.snapshot(str(tmp_path / f"s{k}"))["saved"]
    new = shard(0, 1)
    report = new.restore_many([str(tmp_path / "s0"), str(tmp_path / "s1")])
    assert report == {"restored": True, spec.SHARD: 0, "size": 150, "exact": False, "error": None}
    expected_total = old[0].replay.total + old[1].replay.total
    assert np.isclose(new.replay.total, expected_total)
    returns = new.replay.sample(2000, beta=0.4)[spec.RETURN]
    assert (returns >= 100).mean() > 0.4  # the high-priority items of old shard 1 keep their weight


def test_unreadable_snapshot_starts_empty_and_says_so(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    worker = shard(0, 1, snapshot_path=str(bad))  # the constructor never raises (Ray would not restart it)
    assert len(worker.replay) == 0
    assert worker.stats()["restore"]["restored"] is False
    report = worker.restore_many([str(bad), str(tmp_path / "missing")])
    assert report["restored"] is False and report["size"] == 0
    assert "bad" in report["error"] and "missing" in report["error"]
    push(worker, np.arange(5), np.ones(5))  # and it keeps serving
    assert len(worker.replay) == 5


def test_own_snapshot_restores_exactly_with_counters_and_streams(tmp_path):
    old = shard(0, 1)
    push(old, np.arange(40), np.linspace(0.1, 1.0, 40))
    push(old, np.arange(40, 50), np.ones(10))
    old.sample(8, beta=0.4)
    assert old.snapshot(str(tmp_path / "s0"))["saved"]
    new = shard(0, 1, snapshot_path=str(tmp_path / "s0"))
    assert new.stats()["restore"] == {"restored": True, spec.SHARD: 0, "size": 50, "exact": True, "error": None}
    assert new.counters == old.counters and new.limiter.state_dict() == old.limiter.state_dict()
    push(new, np.arange(40, 50), np.ones(10))  # seq 40 was seen before the snapshot: a duplicate
    assert new.counters["duplicates"] == 1 and len(new.replay) == 50


def test_damaged_bookkeeping_keeps_the_items_and_says_so(tmp_path):
    old = shard(0, 1)
    push(old, np.arange(20), np.ones(20))
    old.snapshot(str(tmp_path / "s0"))
    meta_path = tmp_path / "s0" / "meta.json"
    index = json.loads(meta_path.read_text())
    del index["meta"]["worker"]["streams"]
    meta_path.write_text(json.dumps(index))
    new = shard(0, 1)
    report = new.restore_many([str(tmp_path / "s0")])
    assert report["exact"] and not report["restored"] and "streams" in report["error"]
    assert len(new.replay) == 20 and new.limiter.inserted == 20
