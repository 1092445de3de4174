"""Replay shards on a real local Ray: bytes in, batches out across shards, bad input, duplicates, priorities,
snapshots, a dead shard, and nothing left running afterwards."""

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from distdqn import spec, wire  # noqa: E402
from distdqn.config import ReplayConfig  # noqa: E402
from distdqn.distributed.replay_client import ShardedReplayClient  # noqa: E402
from distdqn.distributed.replay_worker import ReplayShardWorker  # noqa: E402
from distdqn.envs import TaskShape  # noqa: E402
from distdqn.replay import RateLimiter  # noqa: E402

pytestmark = pytest.mark.integration

VOCAB, MAX_LEN = 300, 8
SHAPE = TaskShape(VOCAB, MAX_LEN, with_mask=False, token_values=np.full(VOCAB, np.nan, np.float32))
SCHEMA = SHAPE.transition_dtypes()
CONFIG = ReplayConfig(capacity=3000, num_shards=3, min_size_to_sample=10, samples_per_insert=0.0)


@pytest.fixture(scope="module")
def ray_local(ray_cluster):
    """The module's Ray instance (conftest's `ray_cluster`)."""
    return ray_cluster


def make_shard(k: int, config: ReplayConfig = CONFIG, snapshot_path: str | None = None):
    return (
        ray.remote(ReplayShardWorker)
        .options(num_cpus=0)
        .remote(k, shape=SHAPE, config=config, seed=k, snapshot_path=snapshot_path)
    )


def transitions(ids: np.ndarray) -> dict[str, np.ndarray]:
    batch = spec.empty_batch(VOCAB, MAX_LEN, ids.size)
    batch[spec.RETURN][:] = ids  # identifies the item
    batch[spec.TOKENS][:] = (ids[:, None] + np.arange(MAX_LEN)) % VOCAB
    batch[spec.LEN_S][:] = 1
    batch[spec.LEN_NEXT][:] = 2
    return batch


def push(shard, ids, actor=0, incarnation=0, seq=0, priorities=None) -> dict:
    data = wire.encode_transitions(transitions(np.asarray(ids)), priorities, actor, incarnation, seq)
    return ray.get(shard.add.remote(data), timeout=60)


def test_bytes_in_batch_out_across_shards(ray_local):
    shards = [make_shard(k) for k in range(3)]
    for k, shard in enumerate(shards):
        assert push(shard, np.arange(100) + 1000 * k, actor=k)["accepted"] == 100
    client = ShardedReplayClient(shards, seed=0)  # schema learned from the shards
    stats = client.refresh()
    assert sorted(stats) == [0, 1, 2] and client.schema == SCHEMA
    for _ in range(3):  # prefetch: several requests in flight at once
        assert client.request(96, beta=0.4)
    assert client.in_flight == 3
    batches = [client.next_ready(timeout=30) for _ in range(3)]
    for batch in batches:
        assert batch is not None and len(batch[spec.RETURN]) == 96
        ids = batch[spec.RETURN].astype(int)
        np.testing.assert_array_equal(batch[spec.SHARD], ids // 1000)  # items come from the shard that holds them
        np.testing.assert_array_equal(batch[spec.TOKENS][:, 0], ids % VOCAB)
        np.testing.assert_array_equal(batch[spec.SLOT], ids % 1000)
        assert batch[spec.WEIGHT].dtype == np.float32 and batch[spec.WEIGHT].max() <= 1.0
    assert set(np.concatenate([b[spec.SHARD] for b in batches]).tolist()) == {0, 1, 2}
    for shard in shards:
        ray.kill(shard)


def test_one_request_draws_several_batches(ray_local):
    shards = [make_shard(k) for k in range(3)]
    for k, shard in enumerate(shards):
        push(shard, np.arange(100) + 1000 * k, actor=k)
    limiter = RateLimiter(min_size_to_sample=10, samples_per_insert=0.0, tolerance=0.0)
    client = ShardedReplayClient(shards, rate_limiter=limiter, seed=1)
    client.refresh()
    assert client.request(64, beta=0.4, batches=4)
    assert client.in_flight == 4 and limiter.sampled == 256  # the limiter is asked for all four at once
    batches = [client.next_ready(timeout=30) for _ in range(4)]
    assert client.in_flight == 0 and client.next_ready(timeout=0) is None
    for batch in batches:
        assert len(batch[spec.RETURN]) == 64
        ids = batch[spec.RETURN].astype(int)
        np.testing.assert_array_equal(batch[spec.SHARD], ids // 1000)  # columns stay aligned after the shuffle
        np.testing.assert_array_equal(batch[spec.SLOT], ids % 1000)
        assert batch[spec.WEIGHT].max() <= 1.0
        assert len(set(batch[spec.SHARD].tolist())) > 1  # dealt, not one shard's answer per batch
    # update_priorities takes the dealt batches like any other
    for batch in batches:
        client.update_priorities(batch, np.ones(64))
    client.flush()
    assert client.updates_applied == 4 * 64
    for shard in shards:
        ray.kill(shard)


def test_a_short_answer_is_dealt_into_fewer_batches_never_an_empty_one():
    client = ShardedReplayClient([], seed=0)  # dealing needs no shard
    merged = {spec.SHARD: np.zeros(3, np.int32), spec.SLOT: np.arange(3)}  # a timed-out shard left 3 items for 4
    parts = client._deal(merged, batches=4)
    assert [len(part[spec.SLOT]) for part in parts] == [1, 1, 1]
    assert sorted(np.concatenate([part[spec.SLOT] for part in parts]).tolist()) == [0, 1, 2]


def test_malformed_message_is_counted_and_the_shard_keeps_serving(ray_local):
    shard = make_shard(0)
    answer = ray.get(shard.add.remote(b"\x93\x01\x02"), timeout=60)
    assert answer["status"] == "rejected" and "message" in answer["error"]
    bad = wire.encode_transitions(transitions(np.arange(3)), None, 0, 0, 0)
    bad = bad.replace(b"<f4", b"<f8")  # the return_n / discount_n dtypes no longer match
    assert ray.get(shard.add.remote(bad), timeout=60)["status"] == "rejected"
    assert push(shard, np.arange(5))["status"] == "ok"
    stats = ray.get(shard.stats.remote(), timeout=60)
    assert (stats["received"], stats["rejected"], stats["size"]) == (3, 2, 5)
    assert stats["last_error"].startswith(("discount_n", "return_n"))
    assert ray.get(shard.sample.remote(4, 0.4), timeout=60) is not None
    ray.kill(shard)


def test_duplicates_dropped_and_gaps_counted(ray_local):
    shard = make_shard(0)
    statuses = [push(shard, [seq], actor=7, seq=seq)["status"] for seq in (0, 1, 1, 4, 0)]
    assert statuses == ["ok", "ok", "duplicate", "ok", "duplicate"]
    stats = ray.get(shard.stats.remote(), timeout=60)
    assert (stats["size"], stats["duplicates"], stats["gaps"]) == (3, 2, 2)
    assert push(shard, [2], actor=7, seq=2)["status"] == "ok"  # a late arrival fills a gap
    assert push(shard, [0], actor=7, incarnation=1, seq=0)["status"] == "ok"  # a restarted actor starts over
    stats = ray.get(shard.stats.remote(), timeout=60)
    assert (stats["size"], stats["duplicates"], stats["gaps"], stats["late"]) == (5, 2, 0, 1)
    ray.kill(shard)


def test_priority_updates_change_the_sampling_distribution(ray_local):
    shards = [make_shard(k) for k in range(2)]
    for k, shard in enumerate(shards):
        push(shard, np.arange(50) + 1000 * k, priorities=np.ones(50))
    client = ShardedReplayClient(shards, SCHEMA, seed=1)
    client.refresh()
    batch = client.sample(100, beta=0.4)
    hot = batch[spec.RETURN] == 1007  # make one item of shard 1 dominate
    td = np.where(hot, 1e6, 0.0)
    assert hot.any()
    client.update_priorities(batch, td)
    client.flush()
    assert client.updates_applied == len(td)
    client.refresh()
    assert client.totals[1] > 10 * client.totals[0]
    counts = np.zeros(2)
    share_hot = []
    for _ in range(5):
        batch = client.sample(200, beta=0.4)
        share_hot.append(np.mean(batch[spec.RETURN] == 1007))
        np.add.at(counts, batch[spec.SHARD], 1)
    assert np.mean(share_hot) > 0.5 and counts[1] > 5 * counts[0]
    hot_weight = batch[spec.WEIGHT][batch[spec.RETURN] == 1007]
    assert hot_weight.max() < batch[spec.WEIGHT].max()  # the frequent item is down-weighted
    for shard in shards:
        ray.kill(shard)


def test_snapshot_restore_round_trip_and_unreadable_snapshot(ray_local, tmp_path):
    shard = make_shard(0)
    push(shard, np.arange(40), actor=3, seq=5, priorities=np.linspace(0, 4, 40))
    report = ray.get(shard.snapshot.remote(str(tmp_path / "shard0")), timeout=60)
    assert report["saved"] and report["size"] == 40
    before = ray.get(shard.stats.remote(), timeout=60)

    restored = make_shard(0, snapshot_path=str(tmp_path / "shard0"))
    after = ray.get(restored.stats.remote(), timeout=60)
    assert after["restore"]["restored"] and after["size"] == 40
    assert after["total"] == pytest.approx(before["total"]) and after["inserted"] == before["inserted"]
    assert push(restored, [0], actor=3, seq=5)["status"] == "duplicate"  # stream state survived too
    answer = ray.get(restored.sample.remote(8, 0.4), timeout=60)
    assert len(wire.decode_sample(answer, SCHEMA)) == 8

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{not json")
    empty = make_shard(1, snapshot_path=str(tmp_path / "broken"))
    stats = ray.get(empty.stats.remote(), timeout=60)
    assert stats["restore"]["restored"] is False and stats["size"] == 0 and stats["restore"]["error"]
    assert ray.get(empty.sample.remote(4, 0.4), timeout=60) is None
    assert push(empty, [1])["status"] == "ok"  # and serves normally
    for handle in (shard, restored, empty):
        ray.kill(handle)


def test_dead_shard_is_skipped_and_reported(ray_local):
    shards = [make_shard(k) for k in range(2)]
    for k, shard in enumerate(shards):
        push(shard, np.arange(30) + 1000 * k)
    client = ShardedReplayClient(shards, SCHEMA, seed=2, call_timeout_s=20)
    client.refresh()
    ray.kill(shards[1], no_restart=True)
    batches = [client.sample(64, beta=0.4) for _ in range(3)]
    assert 1 in client.dead and "Error" in client.dead[1]
    last = batches[-1]
    assert last is not None and len(last[spec.RETURN]) == 64 and set(last[spec.SHARD].tolist()) == {0}
    client.update_priorities(last, np.ones(64))
    client.flush()
    ray.kill(shards[0])
