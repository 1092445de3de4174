"""Soak run: train with the replay at full capacity for a bounded time and record the memory of every worker
(resident set size, from /proc) and the Ray object store's use over time; memory must stay flat once the replay
has filled. Writes a PNG (with the `plot` extra: matplotlib) and JSON.

    python scripts/soak.py --seconds 600 --json bench_results/soak.json --png bench_results/soak.png
    python scripts/soak.py --quick                      # 40 s, a small replay: fills in seconds

The verdict compares each worker's RSS at the first sample after the replay filled with its last sample: growth
above `--tolerance-mb` (default 50 MB) is reported as a leak.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def object_store_mb(ray) -> float | None:
    try:
        total = ray.cluster_resources().get("object_store_memory", 0.0)
        free = ray.available_resources().get("object_store_memory", 0.0)
        return (total - free) / 2**20
    except Exception:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="keyword_easy")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--capacity", type=int, default=50_000, help="replay.capacity (the run fills it first)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between memory samples")
    parser.add_argument("--tolerance-mb", type=float, default=50.0)
    parser.add_argument("--quick", action="store_true", help="40 s with a 5,000-transition replay")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--png", metavar="PATH")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.capacity, args.every = 40.0, 5_000, 1.0

    import ray

    from distdqn.config import load_config
    from distdqn.trainer import build_supervisor

    run_dir = Path(tempfile.mkdtemp(prefix="soak-"))
    overrides = [
        f"run.max_seconds={args.seconds}",
        "run.target_success=0",
        "run.eval_interval_s=60",
        "checkpoint.interval_s=0",
        f"replay.capacity={args.capacity}",
        f"replay.min_size_to_sample={min(1000, args.capacity // 2)}",
        f"run.run_dir={run_dir}",
    ]
    config = load_config(REPO / "configs" / f"{args.config}.yaml", overrides)
    supervisor = build_supervisor(config, run_dir, "ray", quiet=True)
    topo = supervisor.runtime.topo
    handles = {f"actor {i}": a for i, a in enumerate(topo.actors)} | {"learner": topo.learner}
    handles |= {f"shard {k}": s for k, s in enumerate(topo.shards)}
    pids = dict(zip(handles, ray.get([h.pid.remote() for h in handles.values()], timeout=300), strict=True))
    samples: list[dict] = []
    done = threading.Event()
    began = time.monotonic()

    def sample() -> None:
        while not done.wait(args.every):
            samples.append(
                {
                    "t": round(time.monotonic() - began, 2),
                    "replay_size": sum(supervisor._shard_sizes),
                    "object_store_mb": object_store_mb(ray),
                    **{name: rss_mb(pid) for name, pid in pids.items()},
                }
            )

    threading.Thread(target=sample, daemon=True).start()
    try:
        summary = supervisor.run()
    finally:
        done.set()
        supervisor.close()

    full = next((i for i, s in enumerate(samples) if (s["replay_size"] or 0) >= args.capacity * 0.99), None)
    verdict = []
    if full is None:
        verdict.append(f"the replay never filled ({args.capacity:,} transitions): run longer")
    else:
        first, last = samples[full], samples[-1]
        for name in pids:
            if first[name] is not None and last[name] is not None:
                growth = last[name] - first[name]
                flag = "LEAK?" if growth > args.tolerance_mb else "flat"
                verdict.append(f"{name:10s} {first[name]:7.0f} MB -> {last[name]:7.0f} MB ({growth:+.0f} MB) {flag}")
        verdict.append(f"replay full from t={first['t']:.0f} s; env steps {summary['env_steps']:,}")
    print("\n".join(verdict))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": samples, "verdict": verdict}, indent=1) + "\n")
    if args.png:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("no PNG: install the plot extra (pip install -e .[plot])")
            return
        fig, ax = plt.subplots(figsize=(9, 5))
        t = [s["t"] for s in samples]
        for name in [*pids, "object_store_mb"]:
            ax.plot(t, [s[name] for s in samples], label=name.replace("_mb", ""))
        if full is not None:
            ax.axvline(samples[full]["t"], color="grey", linestyle="--", label="replay full")
        ax.set_xlabel("seconds")
        ax.set_ylabel("MB (RSS; object store: used)")
        ax.set_title(f"soak: {args.config}, replay {args.capacity:,}")
        ax.legend(fontsize=8)
        Path(args.png).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.png, dpi=100, bbox_inches="tight")


if __name__ == "__main__":
    main()
