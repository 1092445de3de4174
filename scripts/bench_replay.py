"""Benchmark of prioritized replay: our core vs cpprb side by side, plus one Ray shard end to end (bytes in, batch out).

Workload: transitions of 64 int32 tokens + scalars, insert chunks of 256 with priorities until the replay is full,
then repeatedly sample 512 (alpha 0.6, beta 0.4) and update those 512 priorities. Reported: inserts/s, sampled
transitions/s, priority updates/s, sample+update transitions/s, and memory per transition (RSS growth over the fill
divided by the capacity) against the raw payload. numpy threads are pinned to 1 for fairness.

Usage: python scripts/bench_replay.py [--quick] [--json PATH] [--no-ray]
Goals: sample+update >= 2x cpprb, insert >= 1x cpprb, memory per transition <= 1.2x the raw payload.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from distdqn import spec, wire  # noqa: E402
from distdqn.replay import PrioritizedReplay  # noqa: E402

VOCAB, MAX_LEN = 70_000, 64  # vocab > 65536: int32 tokens and actions
INSERT_CHUNK, SAMPLE_BATCH, ALPHA, BETA, EPS = 256, 512, 0.6, 0.4, 1e-3
FIELDS = spec.transition_dtypes(VOCAB, MAX_LEN)
RAW_BYTES = sum(dt.itemsize * int(np.prod(shape)) for dt, shape in FIELDS.values())


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def chunks(count: int = 32) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """A pool of random insert chunks (cycled, so the RNG stays out of the timings)."""
    rng = np.random.default_rng(0)
    pool = []
    for _ in range(count):
        batch = spec.empty_batch(VOCAB, MAX_LEN, INSERT_CHUNK)
        batch[spec.TOKENS][:] = rng.integers(0, VOCAB, batch[spec.TOKENS].shape)
        batch[spec.ACTION][:] = rng.integers(0, VOCAB, INSERT_CHUNK)
        batch[spec.RETURN][:] = rng.normal(size=INSERT_CHUNK)
        pool.append((batch, rng.random(INSERT_CHUNK)))
    return pool


Ops = tuple[Callable[[dict, np.ndarray], None], Callable[[], np.ndarray], Callable[[np.ndarray, np.ndarray], None]]


class Subject:
    """One replay under test: created and filled on construction (memory = RSS growth from before creation; the
    first fill is timed too, page faults included), then timed in blocks that `compare` interleaves with the
    other subjects' blocks, so load from other processes on the machine hits every subject alike."""

    def __init__(self, name: str, capacity: int, create: Callable[[], Ops]):
        self.name, self.capacity, self.pool = name, capacity, chunks()
        rss0 = rss_bytes()
        self.insert, self.sample, self.update = create()
        start = time.perf_counter()
        self.fill_chunks = capacity // INSERT_CHUNK
        for i in range(self.fill_chunks):
            self.insert(*self.pool[i % len(self.pool)])
        self.fill_s = time.perf_counter() - start
        self.memory = rss_bytes() - rss0
        self.td = np.random.default_rng(1).random((16, SAMPLE_BATCH)) * 2
        self.rounds = 0
        self.insert_rates: list[float] = []  # per timed block, so the report can take medians
        self.sample_times: list[tuple[float, float]] = []  # (sample_s, update_s) per block

    def insert_block(self) -> None:
        """Steady state: inserts into the full ring (each evicts the oldest items)."""
        start = time.perf_counter()
        for batch, priorities in self.pool:
            self.insert(batch, priorities)
        self.insert_rates.append(len(self.pool) * INSERT_CHUNK / (time.perf_counter() - start))

    def sample_block(self, rounds: int = 20) -> None:
        sample_s = update_s = 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            keys = self.sample()
            t1 = time.perf_counter()
            self.update(keys, self.td[self.rounds % 16])
            sample_s += t1 - t0
            update_s += time.perf_counter() - t1
            self.rounds += 1
        self.sample_times.append((sample_s / rounds, update_s / rounds))

    def result(self) -> dict:
        """Medians over the timed blocks: robust to preemption by other processes without picking the best run."""
        sample_s, update_s = (float(np.median(column)) for column in zip(*self.sample_times, strict=True))
        both_s = float(np.median([s + u for s, u in self.sample_times]))
        return {
            "name": self.name,
            "capacity": self.capacity,
            "fill_inserts_per_s": self.fill_chunks * INSERT_CHUNK / self.fill_s,
            "inserts_per_s": float(np.median(self.insert_rates)),
            "sampled_per_s": SAMPLE_BATCH / sample_s,
            "updates_per_s": SAMPLE_BATCH / update_s,
            "sample_update_per_s": SAMPLE_BATCH / both_s,
            "bytes_per_transition": self.memory / self.capacity,
            "memory_vs_raw": self.memory / self.capacity / RAW_BYTES,
        }


def compare(subjects: list[Subject], seconds: float) -> None:
    """Alternate short timed blocks of every subject for about `seconds` per subject and phase."""
    for phase in ("insert_block", "sample_block"):
        deadline = time.perf_counter() + seconds * len(subjects)
        while time.perf_counter() < deadline:
            for subject in subjects:
                getattr(subject, phase)()


def ours(capacity: int) -> Subject:
    made: dict = {}

    def create() -> Ops:
        replay = made["replay"] = PrioritizedReplay(capacity, FIELDS, ALPHA, EPS, seed=0)

        def sample() -> np.ndarray:
            batch = replay.sample(SAMPLE_BATCH, BETA)
            made["generation"] = batch[spec.GENERATION]
            return batch[spec.SLOT]

        return (
            lambda batch, p: replay.add(batch, p),
            sample,
            lambda slots, td: replay.update_priorities(slots, made["generation"], td),
        )

    return Subject("distdqn PrioritizedReplay", capacity, create)


def cpprb_subject(capacity: int) -> Subject | None:
    try:
        import cpprb
    except ImportError:
        return None
    env = {k: {"shape": shape or 1, "dtype": dt} for k, (dt, shape) in FIELDS.items()}

    def create() -> Ops:
        buffer = cpprb.PrioritizedReplayBuffer(capacity, env, alpha=ALPHA, eps=EPS)
        return (
            lambda batch, p: buffer.add(**batch, priorities=p),
            lambda: buffer.sample(SAMPLE_BATCH, BETA)["indexes"],
            lambda idx, td: buffer.update_priorities(idx, td),
        )

    return Subject("cpprb PrioritizedReplayBuffer", capacity, create)


def bench_ray_shard(capacity: int, seconds: float) -> dict:
    """One ReplayShardWorker actor: encoded pushes (16 in flight), then prefetched samples (4 in flight) + updates."""
    import ray

    from distdqn.config import ReplayConfig
    from distdqn.distributed.replay_client import ShardedReplayClient
    from distdqn.distributed.replay_worker import ReplayShardWorker
    from distdqn.envs import TaskShape

    ray_tmp = os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rb-", dir="/tmp")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = ReplayConfig(capacity=capacity, num_shards=1, alpha=ALPHA, priority_eps=EPS, min_size_to_sample=512,
                              samples_per_insert=0.0)  # fmt: skip
        shape = TaskShape(VOCAB, MAX_LEN, with_mask=False, token_values=np.full(VOCAB, np.nan, np.float32))
        shard = ray.remote(ReplayShardWorker).options(num_cpus=0).remote(0, shape=shape, config=config)
        ray.get(shard.ping.remote())
        pool = chunks()
        in_flight = []
        start = time.perf_counter()
        for seq in range(capacity // INSERT_CHUNK):
            batch, priorities = pool[seq % len(pool)]
            in_flight.append(shard.add.remote(wire.encode_transitions(batch, priorities, 0, 0, seq)))
            if len(in_flight) >= 16:
                _, in_flight = ray.wait(in_flight, num_returns=len(in_flight) - 8)
        ray.get(in_flight)
        insert_s = time.perf_counter() - start
        client = ShardedReplayClient([shard], FIELDS, seed=0)
        client.refresh()
        td = np.random.default_rng(1).random(SAMPLE_BATCH)
        rounds, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            while client.in_flight < 4:
                client.request(SAMPLE_BATCH, BETA)
            batch = client.next_ready(timeout=60)
            client.update_priorities(batch, td[: len(batch[spec.SLOT])])
            rounds += 1
        client.flush()
        elapsed = time.perf_counter() - start
        stats = ray.get(shard.stats.remote())
        ray.kill(shard)
    finally:
        ray.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return {
        "name": "Ray shard end to end",
        "capacity": capacity,
        "fill_inserts_per_s": stats["inserted"] / insert_s,
        "inserts_per_s": None,
        "sampled_per_s": None,
        "updates_per_s": None,
        "sample_update_per_s": rounds * SAMPLE_BATCH / elapsed,
        "bytes_per_transition": None,
        "memory_vs_raw": None,
    }


def fmt(value: float | None, spec_: str) -> str:
    return "-" if value is None else format(value, spec_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="capacity 100k and short timings (< 1 minute)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray shard measurement")
    args = parser.parse_args()
    capacity, seconds = (100_000, 1.0) if args.quick else (1_000_000, 5.0)

    subjects = [ours(capacity)]
    peer = cpprb_subject(capacity)
    if peer:
        subjects.append(peer)
    compare(subjects, seconds)
    rows = [subject.result() for subject in subjects]
    del subjects, peer
    gc.collect()
    if not args.no_ray:
        rows.append(bench_ray_shard(capacity, seconds))

    print(f"capacity {capacity:,}; {MAX_LEN} int32 tokens + scalars = {RAW_BYTES} raw bytes per transition;")
    print(
        f"insert chunks of {INSERT_CHUNK} (fill: first pass; inserts: steady state, ring full), sample {SAMPLE_BATCH} + update {SAMPLE_BATCH}, alpha {ALPHA}, beta {BETA}"
    )
    print(
        f"{'':32} {'fill ins/s':>12} {'inserts/s':>12} {'sampled/s':>12} {'updates/s':>12} {'smp+upd/s':>12} {'B/item':>8} {'x raw':>6}"
    )
    for r in rows:
        print(
            f"{r['name']:32} {fmt(r['fill_inserts_per_s'], '12,.0f')} {fmt(r['inserts_per_s'], '12,.0f')} {fmt(r['sampled_per_s'], '12,.0f')} "
            f"{fmt(r['updates_per_s'], '12,.0f')} {fmt(r['sample_update_per_s'], '12,.0f')} "
            f"{fmt(r['bytes_per_transition'], '8.0f')} {fmt(r['memory_vs_raw'], '6.2f')}"
        )
    goals = {"memory_vs_raw <= 1.2": rows[0]["memory_vs_raw"] <= 1.2}
    if len(rows) > 1 and rows[1]["name"].startswith("cpprb"):
        mine, cpprb_row = rows[0], rows[1]
        speedups = {
            "insert": mine["inserts_per_s"] / cpprb_row["inserts_per_s"],
            "sample+update": mine["sample_update_per_s"] / cpprb_row["sample_update_per_s"],
        }
        goals["insert >= 1x cpprb"] = speedups["insert"] >= 1.0
        goals["sample+update >= 2x cpprb"] = speedups["sample+update"] >= 2.0
        print("vs cpprb: " + ", ".join(f"{k} {v:.2f}x" for k, v in speedups.items()))
    print("goals: " + ", ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in goals.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "raw_bytes_per_transition": RAW_BYTES, "goals": goals}, f, indent=2)


if __name__ == "__main__":
    main()
