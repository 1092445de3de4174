"""Benchmark of the learning core on one CPU core: actor env steps/s and learner updates/s (no Ray, no replay).

Actor: `Actor.collect` on the synthetic task (tests/fakes.py) with the default GRU network: the batched env step,
the batched Q-forward (one GRU-cell step), epsilon-greedy, n-step assembly and initial priorities, all included.
Learner: `Learner.update` at batch 512 on CPU with transitions collected by that actor (sampled transitions/s =
updates/s * 512). Target: >= 50,000 actor env steps/s per core at B = 256 on the small vocabulary.

    .venv/bin/python scripts/bench_core.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distdqn import spec  # noqa: E402
from distdqn.actor import Actor  # noqa: E402
from distdqn.config import ActorConfig, EnvConfig, LearnerConfig, NetworkConfig  # noqa: E402
from distdqn.learner import Learner  # noqa: E402

TASK = "tests.fakes:SyntheticEnv"


def make_actor(batch: int, vocab: int) -> Actor:
    env = EnvConfig(task=TASK, envs_per_actor=batch, options={"vocab_size": vocab})
    return Actor(env, NetworkConfig(), ActorConfig(num_threads=1), actor_index=0, num_actors=4, seed=0)


def bench_actor(batch: int, vocab: int, seconds: float) -> dict:
    actor = make_actor(batch, vocab)
    actor.collect(5)
    steps, transitions, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        out = actor.collect(20)
        steps += out.env_steps
        transitions += len(out.priorities)
    elapsed = time.perf_counter() - start
    return {"B": batch, "vocab": vocab, "env_steps_per_s": steps / elapsed, "transitions_per_s": transitions / elapsed}


def bench_learner(vocab: int, seconds: float, batch_size: int = 512) -> dict:
    actor = make_actor(256, vocab)
    data = actor.collect(40).transitions
    rng = np.random.default_rng(0)
    config = LearnerConfig(device="cpu", batch_size=batch_size, num_threads=1)
    learner = Learner(NetworkConfig(), config, actor.vocab_size, actor.max_len, seed=0)

    def sample() -> dict:
        idx = rng.integers(0, len(data[spec.ACTION]), batch_size)
        batch = {k: v[idx] for k, v in data.items()}
        batch[spec.WEIGHT] = np.ones(batch_size, np.float32)
        return batch

    learner.update(sample())
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        learner.update(sample())
        updates += 1
    elapsed = time.perf_counter() - start
    return {
        "batch": batch_size,
        "vocab": vocab,
        "max_len": actor.max_len,
        "updates_per_s": updates / elapsed,
        "sampled_transitions_per_s": updates * batch_size / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (< 1 minute in all)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seconds = 1.0 if args.quick else 4.0
    actor_rows = [bench_actor(b, v, seconds) for v in (32, 2000) for b in (16, 64, 256)]
    learner_rows = [bench_learner(v, 2 * seconds) for v in (32, 2000)]

    print(f"actor (GRU {NetworkConfig().hidden_dim}, 1 thread)     env steps/s   transitions/s")
    for r in actor_rows:
        print(
            f"  B={r['B']:<4d} vocab={r['vocab']:<5d}            {r['env_steps_per_s']:>11,.0f}   "
            f"{r['transitions_per_s']:>13,.0f}"
        )
    print("learner (CPU, 1 thread)              updates/s   sampled transitions/s")
    for r in learner_rows:
        print(
            f"  batch={r['batch']} vocab={r['vocab']:<5d} L={r['max_len']:<3d}   {r['updates_per_s']:>9,.1f}   "
            f"{r['sampled_transitions_per_s']:>21,.0f}"
        )
    target = next(r for r in actor_rows if r["B"] == 256 and r["vocab"] == 32)["env_steps_per_s"]
    print(f"target >= 50,000 env steps/s at B=256, small vocab: {'met' if target >= 50_000 else 'NOT met'}")
    if args.json:
        rows = [{"part": "actor", **r} for r in actor_rows] + [{"part": "learner", **r} for r in learner_rows]
        args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
