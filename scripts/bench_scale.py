"""Scaling benchmark: env steps/s and inserts/s for 1, 2, 4, 8 actors on a real multi-node Ray cluster, and how the
workers share the machine's cores.

A head and one worker node start as separate `ray start` processes on loopback (`scripts/local_cluster.py`: private
temp dir, own token, stopped by PID); this process joins them as the driver (`cluster.address`), as `distdqn train
--address` does, and trains `configs/keyword_easy.yaml` for `--seconds` per actor count (no target, so every run
trains for the same time). For each count it reads every worker's CPU time from /proc before and after (all nodes
share this machine), so the table shows the cores actors, learner and shards used, and what one actor-core and
one learner-core produce — which is what predicts a real cluster, where each node brings its own cores:

    env steps/s of N actor cores  ~ N x (env steps per actor-core second), while the learner keeps up
    the learner keeps up while     inserts/s <= (sampled transitions per learner-core second) / samples_per_insert

    python scripts/bench_scale.py --json bench_results/scale.json      # 1, 2, 4, 8 actors, 20 s each
    python scripts/bench_scale.py --quick                              # 1 and 2 actors, 8 s each
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_spec = importlib.util.spec_from_file_location("local_cluster", REPO / "scripts" / "local_cluster.py")
local_cluster = sys.modules["local_cluster"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(local_cluster)

TICKS = os.sysconf("SC_CLK_TCK")
COLUMNS = [
    ("actors", "actors", "d"),
    ("nodes", "actor nodes", "d"),
    ("env_steps_per_s", "env steps/s", ",.0f"),
    ("inserts_per_s", "inserts/s", ",.0f"),
    ("updates_per_s", "updates/s", ".0f"),
    ("sampled_per_s", "sampled/s", ",.0f"),
    ("actor_cores", "actor cores", ".2f"),
    ("learner_cores", "learner cores", ".2f"),
    ("shard_cores", "shard cores", ".2f"),
    ("actor_throttle_frac", "actor throttled", ".0%"),
    ("env_steps_per_actor_core_s", "env steps / actor-core-s", ",.0f"),
    ("sampled_per_learner_core_s", "sampled / learner-core-s", ",.0f"),
]


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def run_once(address: str, actors: int, seconds: float, seed: int) -> dict:
    import ray

    from distdqn.config import load_config
    from distdqn.trainer import build_supervisor

    run_dir = Path(tempfile.mkdtemp(prefix=f"bench-scale-{actors}-"))
    config = load_config(
        REPO / "configs" / "keyword_easy.yaml",
        [
            f"cluster.address={address}",
            f"actor.num_actors={actors}",
            "cluster.actor_num_cpus=0.25",  # scheduling tokens: 8 actors + learner + shard fit the 4 logical CPUs
            "cluster.learner_num_cpus=1",
            f"run.max_seconds={seconds}",
            "run.target_success=0",
            "run.eval_interval_s=1000",
            "checkpoint.interval_s=0",
            f"run.seed={seed}",
            f"run.run_dir={run_dir}",
        ],
    )
    supervisor = build_supervisor(config, run_dir, "ray", quiet=True)
    topo = supervisor.runtime.topo
    roles = {"actor": topo.actors, "learner": [topo.learner], "shard": topo.shards}
    pids = {role: ray.get([h.pid.remote() for h in handles], timeout=300) for role, handles in roles.items()}
    before = {role: sum(cpu_seconds(p) for p in ps) for role, ps in pids.items()}
    began = time.monotonic()
    try:
        summary = supervisor.run()
        extras = supervisor._extras()
        nodes = {view.node for view in supervisor._actors.values() if view.node}
    finally:
        elapsed = time.monotonic() - began
        used = {role: sum(cpu_seconds(p) for p in ps) - before[role] for role, ps in pids.items()}
        supervisor.close()
    wall = summary["wall_s"]
    c = supervisor.tracker.counters
    return {
        "actors": actors,
        "nodes": len(nodes),
        "wall_s": round(wall, 2),
        "env_steps_per_s": c.env_steps / wall,
        "inserts_per_s": c.inserted / wall,
        "updates_per_s": c.updates / wall,
        "sampled_per_s": c.sampled / wall,
        "actor_cores": used["actor"] / elapsed,
        "learner_cores": used["learner"] / elapsed,
        "shard_cores": used["shard"] / elapsed,
        "actor_throttle_frac": extras.get("actor.throttle_frac"),
        "env_steps_per_actor_core_s": c.env_steps / used["actor"] if used["actor"] else None,
        "sampled_per_learner_core_s": c.sampled / used["learner"] if used["learner"] else None,
    }


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", default="1,2,4,8", help="comma-separated actor counts")
    parser.add_argument("--seconds", type=float, default=20.0, help="training seconds per actor count")
    parser.add_argument("--quick", action="store_true", help="1 and 2 actors, 8 s each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="write {'rows': [...]} here")
    args = parser.parse_args()
    counts = [1, 2] if args.quick else [int(n) for n in args.actors.split(",")]
    seconds = 8.0 if args.quick else args.seconds

    rows = []
    node_env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with local_cluster.LocalCluster(workers=1, num_cpus=2, env=node_env) as cluster:
        os.environ.update(cluster.env)  # this driver joins with the cluster's own token, never ~/.ray
        print(
            f"cluster: head + 1 worker node, 2 logical CPUs each, at {cluster.address} (machine: {os.cpu_count()} cores)"
        )
        for n in counts:
            try:
                row = run_once(cluster.address, n, seconds, args.seed)
            except Exception as error:  # e.g. 2 cores too loaded for Ray's control plane: say so, keep the rest
                print(f"  {n} actors: failed ({type(error).__name__}: {str(error).splitlines()[0][:200]})", flush=True)
                rows.append({"actors": n, "error": f"{type(error).__name__}"})
                continue
            rows.append(row)
            print(f"  {n} actors: {row['env_steps_per_s']:,.0f} env steps/s", flush=True)
            if args.json:  # after every row: a later failure keeps what was measured
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print("| " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(fmt(row.get(key), spec) for key, _, spec in COLUMNS) + " |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
