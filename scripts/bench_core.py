"""Benchmark of the learning core on one CPU core (and a GPU): actor env steps/s and learner updates/s (no Ray, no replay).

Actor: `Actor.collect` on the synthetic task (tests/fakes.py) with the default GRU network: the batched env step,
the batched Q-forward (one GRU-cell step), epsilon-greedy, n-step assembly and initial priorities, all included.
Learner: `Learner.update` with transitions collected by that actor (sampled transitions/s = updates/s * batch), for
both implementations (`learner.impl`: fast and reference) side by side on the same batches, interleaved in short
rounds so a busy machine slows both alike: on CPU (one thread) at batch 64 and 512; with `--devices cuda` also on
the GPU at batch 512 and 2048, in float32 and with bf16 autocast (`learner.bf16`), the CPU rows being the peer in
the same process run (`--cpu-bf16`: the CPU rows under bf16 autocast too). Each update includes its one host sync (|td| back for the replay's priorities). Targets:
>= 50,000 actor env steps/s per core at B = 256 on the small vocabulary; the fast learner >= 3x the reference on
CPU, and >= 100,000 sampled transitions/s on a GPU (issue 16).

    .venv/bin/python scripts/bench_core.py [--quick] [--json PATH]
    python scripts/bench_core.py --devices cpu cuda --learner-only --json gpu.json   # on a machine with a GPU
    python scripts/bench_core.py --quick --learner-only --cpu-bf16   # bf16 autocast on this CPU beside float32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distdqn import spec  # noqa: E402
from distdqn.actor import Actor  # noqa: E402
from distdqn.config import ActorConfig, EnvConfig, LearnerConfig, NetworkConfig  # noqa: E402
from distdqn.learner import Learner  # noqa: E402

TASK = "tests.fakes:SyntheticEnv"
IMPLS = ("fast", "reference")  # learner.impl values, fast first


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


LEARNER_BATCHES = {"cpu": (64, 512), "cuda": (512, 2048)}
PRECISIONS = {"cpu": ("fp32",), "cuda": ("fp32", "bf16")}  # `--cpu-bf16` adds bf16 autocast on CPU
GPU_TARGET = 100_000  # sampled transitions/s, default network (issue 16)


def bench_learner(
    vocab: int, seconds: float, batch_size: int, device: str = "cpu", precision: str = "fp32"
) -> list[dict]:
    """Both learner implementations on the same pre-sampled batches, alternating rounds of `seconds / 4`."""
    actor = make_actor(256, vocab)
    data = actor.collect(40).transitions
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(16):
        idx = rng.integers(0, len(data[spec.ACTION]), batch_size)
        batch = {k: v[idx] for k, v in data.items()}
        batch[spec.WEIGHT] = np.ones(batch_size, np.float32)
        batches.append(batch)
    learners, updates, elapsed, flops = {}, {}, {}, {}
    for impl in IMPLS:
        config = LearnerConfig(device=device, batch_size=batch_size, num_threads=1, impl=impl, bf16=precision == "bf16")
        learners[impl] = Learner(NetworkConfig(), config, actor.vocab_size, actor.max_len, seed=0)
        for b in batches[:3]:  # first-call allocations (and CUDA's kernel selection) out of the timing
            learners[impl].update(b)
        with FlopCounterMode(display=False) as counter:  # matrix products, forward and backward, of one update
            learners[impl].update(batches[3])
        flops[impl] = counter.get_total_flops()
        updates[impl], elapsed[impl] = 0, 0.0
    for _ in range(4):
        for impl, learner in learners.items():
            start = time.perf_counter()
            while time.perf_counter() - start < seconds / 4:
                learner.update(batches[updates[impl] % len(batches)])  # returns |td| on the host: a sync each
                updates[impl] += 1
            elapsed[impl] += time.perf_counter() - start
    return [
        {
            "device": device,
            "precision": precision,
            "impl": impl,
            "batch": batch_size,
            "vocab": vocab,
            "max_len": actor.max_len,
            "updates_per_s": updates[impl] / elapsed[impl],
            "sampled_transitions_per_s": updates[impl] * batch_size / elapsed[impl],
            "mflop_per_update": flops[impl] / 1e6,
            "gflop_per_s": flops[impl] * updates[impl] / elapsed[impl] / 1e9,
        }
        for impl in IMPLS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (< 1 minute in all on CPU)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    parser.add_argument(
        "--devices", nargs="+", choices=sorted(LEARNER_BATCHES), default=["cpu"], help="the learner's devices"
    )
    parser.add_argument("--learner-only", action="store_true", help="skip the actor rows")
    parser.add_argument(
        "--cpu-bf16", action="store_true", help="also time the CPU learner under bf16 autocast (`learner.bf16`)"
    )
    args = parser.parse_args()
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices cuda: torch sees no CUDA device here (torch.cuda.is_available() is False)")
    torch.set_num_threads(1)
    seconds = 1.0 if args.quick else 4.0
    actor_rows = [] if args.learner_only else [bench_actor(b, v, seconds) for v in (32, 2000) for b in (16, 64, 256)]
    learner_rows = [
        r
        for device in args.devices
        for precision in (("fp32", "bf16") if device == "cpu" and args.cpu_bf16 else PRECISIONS[device])
        for v in (32, 2000)
        for b in LEARNER_BATCHES[device]
        for r in bench_learner(v, 2 * seconds, b, device, precision)
    ]
    if actor_rows:
        print(f"actor (GRU {NetworkConfig().hidden_dim}, 1 thread)     env steps/s   transitions/s")
        for r in actor_rows:
            print(
                f"  B={r['B']:<4d} vocab={r['vocab']:<5d}            {r['env_steps_per_s']:>11,.0f}   "
                f"{r['transitions_per_s']:>13,.0f}"
            )
        target = next(r for r in actor_rows if r["B"] == 256 and r["vocab"] == 32)["env_steps_per_s"]
        print(f"target >= 50,000 env steps/s at B=256, small vocab: {'met' if target >= 50_000 else 'NOT met'}")
    peak = cpu_matmul_peak() if "cpu" in args.devices else None
    if args.cpu_bf16:
        print(f"CPU bf16 matrix units (AVX-512 BF16 or AMX): {'yes' if cpu_has_bf16() else 'no'}")
    add_speedups(learner_rows)
    print_learner_rows(learner_rows, peak)
    if args.json:
        rows = [{"part": "actor", **r} for r in actor_rows] + [{"part": "learner", **r} for r in learner_rows]
        args.json.write_text(json.dumps({"rows": rows, "cpu_matmul_peak_gflops": peak}, indent=2) + "\n")


def add_speedups(rows: list[dict]) -> None:
    """`speedup_vs_reference` on each learner row: against the reference of the same device, precision, batch and
    vocabulary."""
    key = ("device", "precision", "batch", "vocab")
    for r in rows:
        ref = next(x for x in rows if x["impl"] == "reference" and all(x[k] == r[k] for k in key))
        r["speedup_vs_reference"] = r["sampled_transitions_per_s"] / ref["sampled_transitions_per_s"]


def print_learner_rows(rows: list[dict], cpu_peak_gflops: float | None = None) -> None:
    """The learner table (rows with `add_speedups`'s column). With the CPU's matrix-product peak, what 3x the
    reference would need in each CPU cell (the issue's CPU target)."""
    print(
        "learner (1 CPU thread)                                   updates/s   sampled transitions/s   "
        "MFLOP/update   GFLOP/s   fast / reference"
    )
    for r in rows:
        print(
            f"  {r['device']:<4s} {r['precision']:<4s} {r['impl']:<9s} batch={r['batch']:<4d} vocab={r['vocab']:<5d} "
            f"L={r['max_len']:<3d} {r['updates_per_s']:>9,.1f}   {r['sampled_transitions_per_s']:>21,.0f}   "
            f"{r['mflop_per_update']:>12,.0f}   {r['gflop_per_s']:>7.1f}   {r['speedup_vs_reference']:>15.2f}x"
        )
    if cpu_peak_gflops:
        print(f"this core's matrix-product peak: {cpu_peak_gflops:.1f} GFLOP/s (float32, one thread)")
        for r in rows:
            if r["device"] == "cpu" and r["precision"] == "fp32" and r["impl"] == "reference":
                print(
                    f"  3x the reference at batch {r['batch']}, vocab {r['vocab']}: {3 * r['gflop_per_s']:.1f} GFLOP/s "
                    f"at its FLOPs, {3 * r['gflop_per_s'] / cpu_peak_gflops:.0%} of the peak"
                )
    gpu = [r["sampled_transitions_per_s"] for r in rows if r["device"] == "cuda"]
    if gpu:
        verdict = "met" if max(gpu) >= GPU_TARGET else "NOT met"
        print(f"GPU target >= {GPU_TARGET:,} sampled transitions/s: best {max(gpu):,.0f}, {verdict}")


def cpu_has_bf16() -> bool:
    """Whether this CPU advertises bf16 matrix instructions (Linux's /proc/cpuinfo flags; False where unreadable)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_matmul_peak(seconds: float = 0.5) -> float:
    """GFLOP/s of float32 matrix products on one thread: the best of the GRU's shape at batch 512 ([512, 64] x
    [64, 192]) and a large square one, each timed for `seconds`."""
    best = 0.0
    for m, k, n in ((512, 64, 192), (1024, 1024, 1024)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
        best = max(best, 2 * m * k * n * count / (time.perf_counter() - start) / 1e9)
    return best


if __name__ == "__main__":
    main()
