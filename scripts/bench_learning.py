"""Learning benchmark: env steps and wall-clock seconds to each task's held-out target.

For every task and difficulty it loads `configs/<task>_<difficulty>.yaml` when that file exists (else, or with
`--defaults`, the defaults) plus `--set` overrides, runs the local runtime (`distdqn train --local`; `--runtime ray`
for the distributed one on an embedded Ray) on each `--seeds` seed until held-out success reaches the target or
`--max-seconds` passes, and prints one table row per run:

    task  difficulty  target  reached  env_steps  updates  wall_s  best  final

Targets: grammar 0.99 (validity), arithmetic 0.99 (exact match), keyword and shortest_path 0.95, every other task
0.9 (`--target` overrides all). Rows are also written as JSON with `--json PATH`, together with every run's
held-out learning curve, and (with the plot extra, matplotlib) one PNG per task and level next to it,
`<PATH stem>_<task>_<level>.png`: held-out success against env steps and against wall seconds, one line per seed.

    .venv/bin/python scripts/bench_learning.py --quick                     # keyword easy only, short budget
    .venv/bin/python scripts/bench_learning.py --levels easy --max-seconds 180 --json easy.json
    .venv/bin/python scripts/bench_learning.py --tasks grammar arithmetic --levels easy medium hard
    .venv/bin/python scripts/bench_learning.py --tasks copy reverse sort --levels easy --runtime ray --defaults
    .venv/bin/python scripts/bench_learning.py --tasks sort --levels hard --config-level medium --runtime ray
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distdqn.config import load_config  # noqa: E402
from distdqn.plot import X_AXES, read_records  # noqa: E402
from distdqn.trainer import build_supervisor  # noqa: E402

TASKS = ["grammar", "keyword", "arithmetic", "shortest_path", "sentiment", "translation", "wordle"]
SEQUENCE_TASKS = ["copy", "reverse", "sort"]  # no config was tuned on these: they check that the defaults generalise
LEVELS = ["easy", "medium", "hard"]
TARGETS = {"grammar": 0.99, "arithmetic": 0.99, "keyword": 0.95, "shortest_path": 0.95}
DEFAULT_TARGET = 0.9


def config_path(task: str, level: str, defaults: bool) -> Path | None:
    path = ROOT / "configs" / f"{task}_{level}.yaml"
    return path if path.exists() and not defaults else None


def run_one(task: str, level: str, args: argparse.Namespace, seed: int) -> dict:
    path = config_path(task, args.config_level or level, args.defaults)
    max_seconds, target = args.max_seconds, args.target
    goal = target if target is not None else TARGETS.get(task, DEFAULT_TARGET)
    overrides = [
        f"env.task={task}",
        f"env.difficulty={level}",
        f"run.seed={seed}",
        f"run.max_seconds={max_seconds}",
        f"run.target_success={goal}",
        "checkpoint.interval_s=0",
        *args.set,
    ]
    config = load_config(path, overrides)
    with tempfile.TemporaryDirectory(prefix=f"bench_{task}_{level}_") as tmp:
        start = time.perf_counter()
        supervisor = build_supervisor(config, Path(tmp), args.runtime, quiet=True)
        try:
            summary = supervisor.run()
        finally:
            supervisor.close()
        wall = time.perf_counter() - start
        records = read_records(Path(tmp))
    reached = summary.get("time_to_target_s") is not None
    evals = [r for r in records if all(isinstance(r.get(k), (int, float)) for k in ("eval.success", *X_AXES))]
    return {
        "task": task,
        "difficulty": level,
        "config": str(path.relative_to(ROOT)) if path else "defaults",
        "target": goal,
        "reached": reached,
        "env_steps_to_target": summary.get("env_steps_to_target"),
        "time_to_target_s": summary.get("time_to_target_s"),
        "env_steps": summary.get("env_steps"),
        "updates": summary.get("updates"),
        "wall_s": round(wall, 1),
        "best_success": summary.get("best_success"),
        "final_success": summary.get("final_success"),
        "max_seconds": max_seconds,
        "seed": seed,
        "runtime": args.runtime,
        "overrides": args.set,
        "curve": {key: [r[key] for r in evals] for key in (*X_AXES, "eval.success")},
    }


def row_text(r: dict) -> str:
    if r["reached"]:
        result = f"{r['env_steps_to_target']:>9,d} steps {r['time_to_target_s']:>6.0f} s"
    else:
        best = r["best_success"] if r["best_success"] is not None else float("nan")
        result = f"not reached in {r['max_seconds']:.0f} s, best {best:.3f}"
    return f"{r['task']:<14} {r['difficulty']:<7} {r['seed']:<4} {r['target']:<6} {result}"


def plot_curves(rows: list[dict], json_path: Path) -> list[Path]:
    """One PNG per (task, level) of `rows` next to `json_path`: held-out success against env steps and wall
    seconds, one line per seed (or per row's `label`, when rows gathered from several runs carry one), the target
    dashed. Nothing (and a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(learning-curve PNGs need matplotlib: pip install -e '.[plot]')", file=sys.stderr)
        return []
    written = []
    for task, level in dict.fromkeys((r["task"], r["difficulty"]) for r in rows):
        runs = [r for r in rows if (r["task"], r["difficulty"]) == (task, level)]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
        for ax, x, label in zip(axes, ("env_steps", "wall_s"), ("env steps", "wall seconds (run clock)"), strict=True):
            for r in runs:
                ax.plot(r["curve"][x], r["curve"]["eval.success"], label=r.get("label") or f"seed {r['seed']}")
            ax.axhline(runs[0]["target"], color="gray", linestyle="--", linewidth=1)
            ax.set_xlabel(label)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("held-out success")
        axes[0].set_ylim(-0.02, 1.02)
        axes[1].legend(loc="lower right", fontsize=8)
        fig.suptitle(f"{task} {level} ({runs[0]['config']}, {runs[0]['runtime']} runtime)")
        fig.tight_layout()
        out = json_path.with_name(f"{json_path.stem}_{task}_{level}.png")
        fig.savefig(out, dpi=90)
        plt.close(fig)
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=TASKS + SEQUENCE_TASKS, help="tasks (default: every built-in task)")
    p.add_argument("--levels", nargs="+", default=LEVELS, choices=LEVELS, help="difficulties to run")
    p.add_argument("--max-seconds", type=float, default=180.0, help="wall-clock budget per run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed")
    p.add_argument("--runtime", choices=["local", "ray"], default="local", help="local, or distributed on Ray")
    p.add_argument("--defaults", action="store_true", help="the default config even where configs/ has a file")
    p.add_argument(
        "--config-level",
        choices=LEVELS,
        help="take configs/<task>_<this level>.yaml for every level run (e.g. the medium files at the hard level)",
    )
    p.add_argument("--target", type=float, help="one held-out success target for every run")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted overrides for every run")
    p.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    p.add_argument("--quick", action="store_true", help="keyword easy only, 150 s budget")
    args = p.parse_args(argv)
    if args.quick:
        args.tasks, args.levels, args.max_seconds = ["keyword"], ["easy"], min(args.max_seconds, 150.0)
    rows = []
    print(f"{'task':<14} {'level':<7} {'seed':<4} {'target':<6} result ({args.runtime} runtime)", flush=True)
    for level in args.levels:
        for task in args.tasks:
            for seed in args.seeds:
                row = run_one(task, level, args, seed)
                rows.append(row)
                print(row_text(row), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    if args.json:
        for png in plot_curves(rows, Path(args.json)):
            print(f"learning curves: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
