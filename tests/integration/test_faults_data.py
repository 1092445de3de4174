"""Faults on the data path, on a real local Ray: a live shard fuzzed with thousands of malformed and out-of-range
messages (every one rejected, exact counts, still serving), made-up senders (a bounded stream table), shards killed
under the learner's client and an actor's pushes (no crash, re-routing, every transition accounted for, replaced
shards used again), and a resume that keeps every transition (no duplicates, replay growth equal to the inserts)."""

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from distdqn import spec, wire  # noqa: E402
from distdqn.config import ActorConfig, EnvConfig, NetworkConfig, ReplayConfig  # noqa: E402
from distdqn.distributed import actor_worker  # noqa: E402
from distdqn.distributed.actor_worker import OUTCOME_KEYS, ActorSetup, ActorWorker  # noqa: E402
from distdqn.distributed.param_store import ParameterStore  # noqa: E402
from distdqn.distributed.replay_client import ShardedReplayClient  # noqa: E402
from distdqn.distributed.replay_worker import ReplayShardWorker  # noqa: E402
from distdqn.envs import TaskShape, task_shape  # noqa: E402

pytestmark = pytest.mark.integration
REPO = str(Path(__file__).resolve().parents[2])

VOCAB, MAX_LEN = 300, 8  # uint16 token ids: ids >= VOCAB fit the dtype, the range check must catch them
SHAPE = TaskShape(VOCAB, MAX_LEN, with_mask=False, token_values=np.full(VOCAB, np.nan, np.float32))
SCHEMA = SHAPE.transition_dtypes()
CONFIG = ReplayConfig(capacity=20_000, num_shards=2, min_size_to_sample=10, samples_per_insert=0.0)


@pytest.fixture(scope="module")
def ray_local(ray_cluster):
    """The module's Ray instance (conftest's `ray_cluster`)."""
    return ray_cluster


def make_shard(k: int, shape=SHAPE, config=CONFIG, **kw):
    return ray.remote(ReplayShardWorker).options(num_cpus=0).remote(k, shape=shape, config=config, seed=k, **kw)


def valid_batch(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    batch = spec.empty_batch(VOCAB, MAX_LEN, n)
    batch[spec.TOKENS][:] = rng.integers(0, VOCAB, (n, MAX_LEN))
    batch[spec.LEN_S][:] = rng.integers(1, MAX_LEN, n)
    batch[spec.LEN_NEXT][:] = batch[spec.LEN_S] + 1
    batch[spec.ACTION][:] = rng.integers(0, VOCAB, n)
    batch[spec.RETURN][:] = rng.normal(size=n)
    batch[spec.DISCOUNT][:] = rng.uniform(0, 1, n)
    return batch


# One out-of-range value per field (on a random item of an otherwise valid batch), and the field it must be named by.
OUT_OF_RANGE = [
    (spec.TOKENS, lambda rng: rng.integers(VOCAB, 1 << 16)),
    (spec.ACTION, lambda rng: rng.integers(VOCAB, 1 << 16)),
    (spec.LEN_S, lambda rng: rng.choice([0, -1, MAX_LEN + 1, 1 << 14])),
    (spec.LEN_NEXT, lambda rng: rng.choice([0, -3, MAX_LEN + 1, 1 << 14])),
    (spec.RETURN, lambda rng: rng.choice([np.nan, np.inf, -np.inf])),
    (spec.DISCOUNT, lambda rng: rng.choice([np.nan, np.inf, -0.5, 1.5, -np.inf])),
]


def out_of_range_message(rng: np.random.Generator, seq: int) -> tuple[bytes, str]:
    field, value_of = OUT_OF_RANGE[seq % len(OUT_OF_RANGE)]
    batch = valid_batch(int(rng.integers(1, 20)), rng)
    row = int(rng.integers(len(batch[field])))
    if field == spec.TOKENS:
        batch[field][row, int(rng.integers(MAX_LEN))] = value_of(rng)
    else:
        batch[field][row] = value_of(rng)
    return wire.encode_transitions(batch, None, actor=7, incarnation=0, seq=seq), field


def test_fuzzed_live_shard_rejects_every_bad_message_counts_exactly_and_keeps_serving(ray_local):
    rng = np.random.default_rng(0)
    shard = make_shard(0)
    good = wire.encode_transitions(valid_batch(50, rng), np.ones(50, np.float32), actor=1, incarnation=0, seq=0)
    bad: list[bytes] = [rng.bytes(int(rng.integers(0, 400))) for _ in range(1000)]  # random bytes
    bad += [good[: int(rng.integers(0, len(good)))] for _ in range(1000)]  # truncated valid messages
    fields = []
    for seq in range(1200):  # valid envelopes, one value out of range in each field in turn
        data, field = out_of_range_message(rng, seq)
        bad.append(data)
        fields.append(field)
    bad.append(wire.encode_transitions(valid_batch(3, rng), None, actor=1, incarnation=0, seq=1)[:-1] + b"\x00")
    acks = ray.get([shard.add.remote(data) for data in bad], timeout=300)
    assert [a["status"] for a in acks] == ["rejected"] * len(bad)
    assert all(a["accepted"] == 0 for a in acks)
    for ack, field in zip(acks[2000:3200], fields, strict=True):
        assert ack["error"].startswith(f"{field}:"), ack["error"]
    # it keeps serving: valid adds, a duplicate, samples, priority updates
    assert ray.get(shard.add.remote(good), timeout=60)["status"] == "ok"
    assert ray.get(shard.add.remote(good), timeout=60)["status"] == "duplicate"
    more = wire.encode_transitions(valid_batch(30, rng), None, actor=1, incarnation=0, seq=1)
    assert ray.get(shard.add.remote(more), timeout=60)["accepted"] == 30
    sample = wire.decode_sample(ray.get(shard.sample.remote(64, 0.4), timeout=60), SCHEMA)
    spec.validate_transitions({k: sample.fields[k] for k in SCHEMA}, SHAPE)
    applied = ray.get(
        shard.update_priorities.remote(sample.fields[spec.SLOT], sample.fields[spec.GENERATION], np.ones(64)),
        timeout=60,
    )
    assert applied == 64
    stats = ray.get(shard.stats.remote(), timeout=60)
    expected = {"received": len(bad) + 3, "rejected": len(bad), "duplicates": 1, "size": 80, "inserted": 80}
    assert {k: stats[k] for k in expected} == expected
    assert stats["streams"] == 1 and stats["gaps"] == 0  # rejected messages open no stream, consume no seq
    assert stats["last_error"] == acks[-1]["error"]
    ray.kill(shard)


def test_made_up_senders_cannot_grow_the_stream_table(ray_local):
    rng = np.random.default_rng(1)
    shard = make_shard(0, max_streams=64)
    datas = [
        wire.encode_transitions(valid_batch(1, rng), None, int(a), int(i), int(q))
        for a, i, q in rng.integers(0, 1 << 62, (2000, 3))
    ]
    acks = ray.get([shard.add.remote(d) for d in datas], timeout=120)
    assert all(a["status"] == "ok" for a in acks)
    stats = ray.get(shard.stats.remote(), timeout=60)
    assert (stats["streams"], stats["streams_evicted"], stats["size"]) == (64, 2000 - 64, 2000)
    ray.kill(shard)


def wait_dead(handle, timeout_s: float = 30.0) -> None:
    ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(handle.ping.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.05)
    raise AssertionError("the killed shard still answers")


def test_the_client_samples_from_the_live_shards_and_waits_when_none_has_data(ray_local):
    rng = np.random.default_rng(2)
    shards = [make_shard(k) for k in range(2)]
    for k, shard in enumerate(shards):
        ray.get(shard.add.remote(wire.encode_transitions(valid_batch(100, rng), None, k, 0, 0)), timeout=60)
    client = ShardedReplayClient(shards, SCHEMA, seed=0, call_timeout_s=10)
    client.refresh()
    wait_dead(shards[0])
    assert client.request(32, 0.4) and client.request(32, 0.4)  # the client does not know yet: it asks shard 0
    for _ in range(2):
        batch = client.next_ready(timeout=10)  # its part of these batches is gone: smaller batches, no crash
        assert batch is None or set(batch[spec.SHARD].tolist()) <= {1}
    assert 0 in client.dead
    for _ in range(5):
        batch = client.sample(32, 0.4)
        assert len(batch[spec.SHARD]) == 32 and set(batch[spec.SHARD].tolist()) == {1}
        assert np.all(batch[spec.WEIGHT] <= 1.0) and np.all(batch[spec.WEIGHT] > 0)
        client.update_priorities(batch, np.ones(32))
    wait_dead(shards[1])
    assert client.request(32, 0.4)  # not known dead yet
    assert client.next_ready(timeout=10) is None  # every shard is dead: nothing, no exception
    assert client.sample(32, 0.4) is None and client.refresh() == {}
    client.flush()
    # a restarted shard (new, empty) replaces shard 0: nothing until it has data, then it is sampled
    inserted_before = int(client.inserted.sum())
    fresh = make_shard(0)
    client.replace_shard(0, fresh)
    client.refresh_if_stale()
    assert client.sample(32, 0.4) is None and 0 not in client.dead
    ray.get(fresh.add.remote(wire.encode_transitions(valid_batch(40, rng), None, 0, 1, 0)), timeout=60)
    client.refresh()
    batch = client.sample(32, 0.4)
    assert set(batch[spec.SHARD].tolist()) == {0} and np.allclose(batch[spec.PROB].sum(), 32 / 40)
    assert int(client.inserted.sum()) == inserted_before + 40  # the old incarnation's inserts still count
    assert client.stats()["replaced"] == 1
    ray.kill(fresh)


def copy_setup(shards, param_store, **actor_kw) -> ActorSetup:
    env = EnvConfig(task="tests.fakes:CopyEnv", envs_per_actor=8)
    actor = ActorConfig(push_interval_steps=2, max_pushes_in_flight=2, **actor_kw)
    replay = ReplayConfig(capacity=100_000, num_shards=len(shards), min_size_to_sample=10, samples_per_insert=0.0)
    return ActorSetup(env, NetworkConfig(embed_dim=8, hidden_dim=16), actor, replay, 2, shards, param_store, 10.0)


def copy_shard(k: int, num_shards: int = 2, **options):
    shape = task_shape(EnvConfig(task="tests.fakes:CopyEnv"))
    config = ReplayConfig(capacity=100_000, num_shards=num_shards, min_size_to_sample=10, samples_per_insert=0.0)
    return ray.remote(ReplayShardWorker).options(num_cpus=0, **options).remote(k, shape=shape, config=config, seed=k)


def assert_accounted(stats: dict) -> None:
    outcomes = sum(stats[k] for k in OUTCOME_KEYS) + stats["in_flight"]
    assert stats["transitions"] == outcomes, {k: stats[k] for k in ("transitions", "in_flight", *OUTCOME_KEYS)}


def shard_sizes(shards) -> list[int]:
    return [s["size"] for s in ray.get([h.stats.remote() for h in shards], timeout=60)]


def test_an_actor_reroutes_while_its_shard_is_down_and_every_transition_is_accounted_for(ray_local, monkeypatch):
    monkeypatch.setattr(actor_worker, "SHARD_RETRY_S", 0.3)
    shards = [copy_shard(0), copy_shard(1)]
    store = ray.remote(ParameterStore).options(num_cpus=0).remote()
    ray.get([h.ping.remote() for h in [*shards, store]], timeout=120)  # up before the first slice starts
    worker = ActorWorker(copy_setup(shards, store), index=0, incarnation=0, seed=0)  # in the driver: shards remote
    assert_accounted(worker.run(0.5))
    stats = worker.flush()
    assert stats["inserted"] == stats["transitions"] > 0 and stats["lost"] == stats["in_flight"] == 0
    on_shard_0 = stats["inserted"]
    assert shard_sizes(shards) == [on_shard_0, 0]  # actor 0 pushes to shard 0
    wait_dead(shards[0])
    assert_accounted(worker.run(1.0))  # probes of the dead shard fail quietly meanwhile
    stats = worker.flush()
    assert_accounted(stats)
    assert stats["lost"] > 0 and stats["push_failures"] >= 1 and stats["shards_alive"] == 1
    assert shard_sizes(shards[1:]) == [stats["inserted"] - on_shard_0]  # re-routed to shard 1, all of them
    # the runtime restarts shard 0 as a new actor and tells the actor: its pushes go there again
    fresh = copy_shard(0)
    ray.get(fresh.ping.remote(), timeout=120)
    worker.replace_shard(0, fresh)
    before = shard_sizes([fresh, shards[1]])
    worker.run(0.5)
    stats = worker.flush()
    assert_accounted(stats)
    assert stats["shards_alive"] == 2 and stats["rejected"] == stats["duplicates"] == 0
    after = shard_sizes([fresh, shards[1]])
    assert after[0] > before[0] == 0 and after[1] == before[1]
    for handle in [fresh, shards[1], store]:
        ray.kill(handle)


def test_with_fewer_actors_than_shards_an_actor_feeds_every_shard_of_its_own(ray_local):
    shards = [copy_shard(k, num_shards=3) for k in range(3)]
    store = ray.remote(ParameterStore).options(num_cpus=0).remote()
    ray.get([h.ping.remote() for h in [*shards, store]], timeout=120)
    setup = dataclasses.replace(copy_setup(shards, store), num_actors=2)  # actor 0 owns shards 0 and 2, actor 1 shard 1
    worker = ActorWorker(setup, index=0, incarnation=0, seed=0)
    worker.run(0.5)
    stats = worker.flush()
    assert_accounted(stats)
    sizes = shard_sizes(shards)
    assert sizes[0] > 0 and sizes[2] > 0 and sizes[1] == 0 and sum(sizes) == stats["inserted"] == stats["transitions"]
    for shard_stats in ray.get([h.stats.remote() for h in (shards[0], shards[2])], timeout=60):
        assert shard_stats["gaps"] == shard_stats["duplicates"] == 0  # each shard's stream is numbered on its own
    for handle in [*shards, store]:
        ray.kill(handle)


def test_a_resumed_actor_and_shard_keep_every_transition(ray_local, tmp_path):
    """The checkpoint path without a shared disk: the driver fetches the shard's state and writes it, the actor's
    state goes through JSON; on resume a new shard imports the state the driver read back, and a new actor worker
    continues as a new incarnation: no pushes dropped as duplicates, the replay grows by exactly the inserts."""
    import json

    from distdqn.replay import load_state_dir, save_state_dir

    shard = copy_shard(0, num_shards=1)
    store = ray.remote(ParameterStore).options(num_cpus=0).remote()
    ray.get([shard.ping.remote(), store.ping.remote()], timeout=120)
    first = ActorWorker(copy_setup([shard], store), index=0, incarnation=0, seed=0)
    first.run(0.5)
    saved_stats = first.flush()
    assert saved_stats["inserted"] == saved_stats["transitions"] > 0
    save_state_dir(tmp_path / "shard_0", *ray.get(shard.export_state.remote(), timeout=60))  # written by the driver
    actor_state = json.loads(json.dumps(first.state_dict()))
    assert actor_state["stream"] == {"incarnation": 0, "seq": saved_stats["seq"]}
    ray.kill(shard)

    resumed = copy_shard(0, num_shards=1)
    report = ray.get(resumed.import_states.remote([load_state_dir(tmp_path / "shard_0")]), timeout=60)
    assert report == {"restored": True, spec.SHARD: 0, "size": saved_stats["inserted"], "exact": True, "error": None}
    second = ActorWorker(copy_setup([resumed], store), index=0, incarnation=0, seed=0)  # as the runtime builds it
    assert second.load_state_dict(actor_state) == 1  # a new stream: the runtime's next restart must go above it
    second.run(0.5)
    stats = second.flush()
    assert_accounted(stats)
    assert stats["incarnation"] == 1 and stats["seq"] > saved_stats["seq"]
    assert stats["duplicates"] == stats["lost"] == stats["rejected"] == 0 and stats["inserted"] > 0
    shard_stats = ray.get(resumed.stats.remote(), timeout=60)
    assert shard_stats["duplicates"] == 0 and shard_stats["gaps"] == 0
    assert shard_stats["size"] == saved_stats["inserted"] + stats["inserted"]
    for handle in [resumed, store]:
        ray.kill(handle)
