"""Benchmark: environment steps per second on one core for every built-in task, under a random policy.

For each task and batch size B the env steps B slots at once; one "env step" is one slot stepped, so
steps/s = B * batched steps / seconds. Actions are drawn with `env.random_actions` before the timed loop (for tasks
with action masks they follow the masks of the first observation, so later ones may be illegal: the env still pays
for scoring and resetting them), so the measure is the environment alone, including its auto-resets.

    .venv/bin/python scripts/bench_envs.py [--quick] [--difficulty easy] [--json out.json]

Target: > 1,000,000 steps/s per core at B=1024 for grammar, keyword, arithmetic, shortest_path and wordle.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # one core: set before numpy loads
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from distdqn.envs.registry import BUILTIN_TASKS, make_env  # noqa: E402

COLUMNS = ("task", "difficulty", "batch", "steps_per_s", "note")
TARGET_STEPS_PER_S = 1_000_000
TARGET_TASKS = ("grammar", "keyword", "arithmetic", "shortest_path", "wordle")
NUM_ACTION_ARRAYS = 64


def bench_one(task: str, difficulty: str, batch: int, min_time_s: float, repeats: int = 1, seed: int = 0) -> float:
    """Env steps per second (slots x batched steps / s) of `task` at batch size `batch`: the best of `repeats`
    timings of at least `min_time_s` each (the best, because other processes on the core only ever slow it)."""
    env = make_env(task, num_envs=batch, seed=seed, difficulty=difficulty)
    env.reset()
    rng = np.random.default_rng(seed)
    actions = [env.random_actions(rng) for _ in range(NUM_ACTION_ARRAYS)]
    for a in actions[:8]:  # warm-up (first-touch allocations, lazy tables)
        env.step(a)
    n, elapsed = 8, 0.0
    while elapsed < min_time_s:
        n *= 2
        start = time.perf_counter()
        for i in range(n):
            env.step(actions[i % NUM_ACTION_ARRAYS])
        elapsed = time.perf_counter() - start
    best = elapsed
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for i in range(n):
            env.step(actions[i % NUM_ACTION_ARRAYS])
        best = min(best, time.perf_counter() - start)
    return n * batch / best


def run(tasks: list[str], difficulty: str, batches: list[int], min_time_s: float, repeats: int) -> list[dict]:
    rows = []
    for task in tasks:
        for batch in batches:
            row = {"task": task, "difficulty": difficulty, "batch": batch, "steps_per_s": None, "note": ""}
            try:
                row["steps_per_s"] = round(bench_one(task, difficulty, batch, min_time_s, repeats))
                if task in TARGET_TASKS and batch == 1024 and row["steps_per_s"] < TARGET_STEPS_PER_S:
                    row["note"] = f"below the {TARGET_STEPS_PER_S:,} target"
            except ModuleNotFoundError as e:
                row["note"] = f"skipped: module missing ({e.name})"
            except Exception as e:  # one broken task must not hide the others' numbers
                row["note"] = f"error: {type(e).__name__}: {e}"
            rows.append(row)
            print(format_row(row), flush=True)
            if row["steps_per_s"] is None:
                break  # the other batch sizes would fail the same way
    return rows


def format_row(row: dict) -> str:
    rate = "-" if row["steps_per_s"] is None else f"{row['steps_per_s']:,}"
    return f"{row['task']:<14} {row['difficulty']:<7} {row['batch']:>6} {rate:>13}  {row['note']}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (the whole table within a minute)")
    parser.add_argument("--difficulty", default="easy", choices=["easy", "medium", "hard"])
    parser.add_argument("--tasks", nargs="*", default=list(BUILTIN_TASKS), help="task names (default: all built-in)")
    parser.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 64, 1024])
    parser.add_argument("--json", type=Path, help="also write {'rows': [...]} to this path")
    args = parser.parse_args(argv)

    print(f"{'task':<14} {'level':<7} {'batch':>6} {'steps/s':>13}  note")
    min_time_s, repeats = (0.15, 1) if args.quick else (0.5, 3)
    rows = run(args.tasks, args.difficulty, args.batch_sizes, min_time_s, repeats)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"columns": list(COLUMNS), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
