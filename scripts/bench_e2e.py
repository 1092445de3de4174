"""End-to-end benchmark: the distributed runtime against the local runtime, in the same process run.

Part 1 (time to target): for each easy task, wall-clock seconds and env steps until held-out success reaches the
task's target, with `configs/<task>_easy.yaml` when it exists, for both runtimes, once per `--seeds` seed (the
runtimes alternate, so drift in the machine's load hits each), then the median. "to target" is the run clock the
summaries report: training time, from the moment every component is up; "wall" counts from the runner's
construction to its shutdown (Ray's start, the workers' imports and Ray's shutdown included). `--local-overrides`
adds a peer, the local runtime with its own tuning (e.g. `actor.eps_base=0.1`); `--distributed-overrides` one of
the distributed runtime (e.g. `learner.impl=reference`: the learner's old path against the default).
Part 2 (throughput): env steps/s and learner sampled transitions/s for 1, 2 and 4 actors, with the share of actor
time lost to serialization and remote calls (encode + push + back-pressure wait + weight pulls) and to the
samples-per-insert throttle, for both runtimes.

    python scripts/bench_e2e.py [--quick] [--json PATH] [--tasks keyword,grammar] [--actors 1,2,4] [--seeds 0,1,2]
        [--local-overrides 'actor.eps_base=0.1'] [--distributed-overrides 'learner.impl=reference']
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from distdqn.config import load_config  # noqa: E402

TARGETS = {
    "keyword": 0.95,
    "grammar": 0.99,
    "arithmetic": 0.99,
    "shortest_path": 0.95,
    "sentiment": 0.9,
    "translation": 0.9,
    "wordle": 0.9,
}


def task_config(task: str, overrides: list[str]):
    path = REPO / "configs" / f"{task}_easy.yaml"
    base = [f"env.task={task}", "env.difficulty=easy"] if not path.is_file() else []
    return load_config(path if path.is_file() else None, [*base, *overrides])


def run_once(runtime: str, task: str, overrides: list[str]) -> dict:
    from distdqn.trainer import build_supervisor

    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{runtime}-{task}-"))
    config = task_config(task, [f"run.run_dir={tmp}", "checkpoint.interval_s=0", *overrides])
    start = time.monotonic()
    supervisor = build_supervisor(config, tmp, "local" if runtime == "local" else "ray", quiet=True)
    try:
        summary = supervisor.run()
        extras = supervisor._extras()
    finally:
        supervisor.close()
    summary["total_wall_s"] = time.monotonic() - start
    summary["actor_overhead_frac"] = extras.get("actor.overhead_frac")
    summary["actor_throttle_frac"] = extras.get("actor.throttle_frac")
    c = supervisor.tracker.counters
    summary["sampled"] = c.sampled
    return summary


def fmt(value, spec=".1f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="keyword time to target only, 20 s of training each (under a minute)"
    )
    parser.add_argument("--tasks", default="keyword,grammar,arithmetic,shortest_path")
    parser.add_argument("--actors", default="1,2,4")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="budget per time-to-target run")
    parser.add_argument("--throughput-seconds", type=float, default=30.0, help="length of each throughput run")
    parser.add_argument("--seeds", default="0", help="run.seed of each time-to-target run (the median is shown)")
    parser.add_argument(
        "--local-overrides",
        default="",
        help="dotted overrides (space-separated) for an extra peer, 'local*': the local runtime with its own tuning",
    )
    parser.add_argument(
        "--distributed-overrides",
        default="",
        help="dotted overrides (space-separated) for an extra peer, 'distributed*': the distributed runtime with them",
    )
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    tasks = ["keyword"] if args.quick else args.tasks.split(",")
    actor_counts = [] if args.quick else [int(n) for n in args.actors.split(",") if n]
    budget = 20.0 if args.quick else args.max_seconds
    tput_s = args.throughput_seconds
    rows = []

    print(
        f"{'part':10s} {'task':14s} {'runtime':12s} {'actors':>6s} {'to target s':>11s} {'steps to tgt':>12s} "
        f"{'wall s':>7s} {'success':>7s} {'steps/s':>9s} {'sampled/s':>9s} {'overhead':>8s} {'throttle':>8s}"
    )
    seeds = [int(x) for x in args.seeds.split(",")]
    peers = {"local": [], "distributed": []}
    if args.local_overrides:
        peers["local*"] = args.local_overrides.split()
        print(f"local* = the local runtime with {' '.join(peers['local*'])}")
    if args.distributed_overrides:
        peers["distributed*"] = args.distributed_overrides.split()
        print(f"distributed* = the distributed runtime with {' '.join(peers['distributed*'])}")
    for task in tasks:
        runs: dict[str, list[dict]] = {peer: [] for peer in peers}
        for seed in seeds:  # the runtimes alternate, so drift in the machine's load hits each of them
            for peer, extra in peers.items():
                runtime = "distributed" if peer.startswith("distributed") else "local"
                target = [f"run.target_success={TARGETS[task]}", f"run.max_seconds={budget}", f"run.seed={seed}"]
                row = make_row("target", task, peer, None, run_once(runtime, task, target + extra))
                runs[peer].append({**row, "seed": seed})
                print_row(runs[peer][-1])
        for repeats in runs.values():
            rows.extend(repeats)
            if len(seeds) > 1:
                rows.append(median_row(repeats))
                print_row(rows[-1])
    for n in actor_counts:
        for runtime in ("local", "distributed"):
            overrides = [
                f"actor.num_actors={n}",
                f"run.max_seconds={tput_s}",
                "run.eval_interval_s=1e9",
                "run.target_success=0",
            ]
            rows.append(make_row("throughput", "keyword", runtime, n, run_once(runtime, "keyword", overrides)))
            print_row(rows[-1])
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")


def make_row(part: str, task: str, runtime: str, actors: int | None, s: dict) -> dict:
    target = part == "target"
    return {
        "part": part,
        "task": task,
        "runtime": runtime,
        "actors": actors,
        "time_to_target_s": s["time_to_target_s"] if target else None,
        "env_steps_to_target": s["env_steps_to_target"] if target else None,
        "total_wall_s": s["total_wall_s"],
        "final_success": s["final_success"],
        "env_steps_per_s": s["env_steps"] / s["wall_s"],
        "sampled_per_s": s["sampled"] / s["wall_s"],
        "actor_overhead_frac": s["actor_overhead_frac"],
        "actor_throttle_frac": s["actor_throttle_frac"],
    }


def median_row(repeats: list[dict]) -> dict:
    """The median of each numeric column over repeated runs (a run that missed the target counts as +inf)."""
    row = {**repeats[0], "part": "median", "seed": None}
    for key, value in row.items():
        if key in ("part", "task", "runtime", "actors", "seed") or not isinstance(value, (int, float, type(None))):
            continue
        values = [r[key] for r in repeats]
        if key in ("time_to_target_s", "env_steps_to_target"):
            values = [math.inf if v is None else v for v in values]
        elif any(v is None for v in values):
            row[key] = None
            continue
        m = statistics.median(values)
        row[key] = None if math.isinf(m) else m
    return row


def print_row(r: dict) -> None:
    target = r["part"] in ("target", "median")
    tgt = fmt(r["time_to_target_s"]) if target else ""
    if target and r["time_to_target_s"] is None:
        tgt = "not reached"
    print(
        f"{r['part']:10s} {r['task']:14s} {r['runtime']:12s} {fmt(r['actors'], 'd') if r['actors'] else '':>6s} "
        f"{tgt:>11s} {fmt(r['env_steps_to_target'], ',.0f'):>12s} {r['total_wall_s']:7.1f} "
        f"{fmt(r['final_success'], '.3f'):>7s} {r['env_steps_per_s']:9,.0f} {r['sampled_per_s']:9,.0f} "
        f"{fmt(r['actor_overhead_frac'], '.1%'):>8s} {fmt(r['actor_throttle_frac'], '.1%'):>8s}",
        flush=True,
    )


if __name__ == "__main__":
    main()
