"""Chaos run: train while killing worker processes by PID, and compare with an undisturbed run on the same seed.

The disturbed run kills (SIGKILL) a random actor every `--actor-every` seconds, one replay shard once
(`--shard-at`) and the learner once (`--learner-at`), each optional, for at most `--max-seconds` of training; then
it prints (and `--json` writes) the restarts, the transition accounting (generated = inserted + rejected +
duplicates + lost) and the time to the held-out target, next to the undisturbed run.

    python scripts/chaos.py --json bench_results/chaos.json                 # keyword easy, target 0.95
    python scripts/chaos.py --quick                                          # 25 s each, no target
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COLUMNS = [
    ("run", "run", "s"),
    ("stop_reason", "stopped by", "s"),
    ("time_to_target_s", "s to target", ".1f"),
    ("final_success", "held-out", ".3f"),
    ("actor_kills", "actor kills", "d"),
    ("restarts", "restarts (actor/shard/learner)", "s"),
    ("generated", "generated", ",d"),
    ("inserted", "inserted", ",d"),
    ("lost", "lost", ",d"),
    ("rejected", "rejected", ",d"),
    ("duplicates", "duplicates", ",d"),
    ("balanced", "accounted", "s"),
]


def kill(ray, handle) -> None:
    try:
        os.kill(ray.get(handle.pid.remote(), timeout=30), signal.SIGKILL)
    except Exception as error:  # a worker already being restarted: skip this strike
        print(f"  (strike skipped: {type(error).__name__})", flush=True)


def run(args, disturbed: bool) -> dict:
    import ray

    from distdqn.config import load_config
    from distdqn.trainer import build_supervisor

    run_dir = Path(tempfile.mkdtemp(prefix="chaos-"))
    overrides = [
        f"run.seed={args.seed}",
        f"run.max_seconds={args.max_seconds}",
        f"run.target_success={args.target}",
        "checkpoint.interval_s=5",
        "checkpoint.include_replay=true",
        f"run.run_dir={run_dir}",
    ]
    config = load_config(REPO / "configs" / f"{args.config}.yaml", overrides)
    supervisor = build_supervisor(config, run_dir, "ray", quiet=True)
    runtime, done, kills = supervisor.runtime, threading.Event(), {"actor": 0}

    def chaos() -> None:
        rng, start = random.Random(args.seed), time.monotonic()
        strikes = {"shard": args.shard_at, "learner": args.learner_at}
        next_actor = args.actor_every
        while not done.wait(0.2):
            t = time.monotonic() - start
            if args.actor_every and t >= next_actor:
                kill(ray, rng.choice(runtime.topo.actors))
                kills["actor"] += 1
                next_actor += args.actor_every
            for kind, at in list(strikes.items()):
                if at is not None and t >= at:
                    kill(ray, runtime.topo.shards[0] if kind == "shard" else runtime.topo.learner)
                    del strikes[kind]

    if disturbed:
        threading.Thread(target=chaos, daemon=True).start()
    try:
        summary = supervisor.run()
    finally:
        done.set()
        supervisor.close()
    t = summary["transitions"]
    r = runtime.restarts
    return {
        "run": "disturbed" if disturbed else "undisturbed",
        "stop_reason": summary["stop_reason"],
        "time_to_target_s": summary["time_to_target_s"],
        "final_success": summary["final_success"],
        "actor_kills": kills["actor"] if disturbed else 0,
        "restarts": f"{r['actor']}/{r['shard']}/{r['learner']}",
        **t,
        "balanced": "yes" if t["generated"] == t["inserted"] + t["rejected"] + t["duplicates"] + t["lost"] else "NO",
    }


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="keyword_easy", help="a file in configs/ (without .yaml)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--max-seconds", type=float, default=180.0, help="training budget of each run")
    parser.add_argument("--actor-every", type=float, default=5.0, help="seconds between actor kills (0: none)")
    parser.add_argument("--shard-at", type=float, default=8.0, help="kill the shard once, at this second (-1: never)")
    parser.add_argument(
        "--learner-at", type=float, default=12.0, help="kill the learner once, at this second (-1: never)"
    )
    parser.add_argument("--quick", action="store_true", help="25 s each without a target (the accounting, restarts)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    args.shard_at = None if args.shard_at < 0 else args.shard_at
    args.learner_at = None if args.learner_at < 0 else args.learner_at
    if args.quick:
        args.max_seconds, args.target = 25.0, 0.0

    rows = [run(args, disturbed=False), run(args, disturbed=True)]
    print("| " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(fmt(row.get(key), spec) for key, _, spec in COLUMNS) + " |")
    calm, chaos = rows
    if calm["time_to_target_s"] and chaos["time_to_target_s"]:
        ratio = chaos["time_to_target_s"] / calm["time_to_target_s"]
        print(f"disturbed / undisturbed time to target: {ratio:.2f}x (target: <= 2x)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
