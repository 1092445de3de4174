"""Checkpoint benchmark: write and restore time and size of a full run checkpoint with a replay snapshot.

A learner (default GRU network, Adam state) and one replay shard filled with N transitions of 64-token rows are
written with the same code as `distdqn train` (atomic directory, safetensors, .npy replay snapshot, fsync), then
read back and restored into a fresh learner and replay. The peer is the same checkpoint without the replay.

    python scripts/bench_checkpoint.py [--quick] [--transitions 1000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from distdqn import checkpoint as ck  # noqa: E402
from distdqn import spec  # noqa: E402
from distdqn.config import load_config  # noqa: E402
from distdqn.learner import Learner  # noqa: E402
from distdqn.replay.prioritized import PrioritizedReplay, load_state_dir, save_state_dir  # noqa: E402
from distdqn.run import Counters  # noqa: E402

VOCAB, MAX_LEN = 2000, 64


def filled_replay(n: int, seed: int = 0) -> PrioritizedReplay:
    rng = np.random.default_rng(seed)
    fields = spec.transition_dtypes(VOCAB, MAX_LEN)
    replay = PrioritizedReplay(n, fields, alpha=0.6, priority_eps=1e-3, seed=seed)
    chunk = 65536
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        batch = spec.empty_batch(VOCAB, MAX_LEN, m)
        batch[spec.TOKENS][:] = rng.integers(0, VOCAB, size=(m, MAX_LEN))
        batch[spec.LEN_S][:] = rng.integers(1, MAX_LEN - 1, size=m)
        batch[spec.LEN_NEXT][:] = batch[spec.LEN_S] + 1
        batch[spec.RETURN][:] = rng.random(m)
        batch[spec.DISCOUNT][:] = 0.99
        replay.add(batch, rng.random(m))
    return replay


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(n: int, include_replay: bool, root: Path) -> dict:
    config = load_config(
        None, [f"replay.capacity={max(n, 1000)}", "replay.min_size_to_sample=256", "checkpoint.keep_last=1"]
    )
    learner = Learner(config.network, config.learner, VOCAB, MAX_LEN, seed=0)
    replay = filled_replay(n) if include_replay else None
    counters = Counters(env_steps=n, updates=1)
    write_replay = (lambda d: (save_state_dir(d / "shard_0", *replay.state_dict()), 1)[1]) if replay else None
    run = root / ("with_replay" if include_replay else "no_replay")
    start = time.perf_counter()
    path = ck.save_run(run, config, counters, learner.state_dict(), [], {}, write_replay)
    write_s = time.perf_counter() - start
    size = dir_bytes(path)

    fresh = Learner(config.network, config.learner, VOCAB, MAX_LEN, seed=1)
    start = time.perf_counter()
    found = ck.find_checkpoint(run)
    fresh.load_state_dict(ck.load_learner_state(found))
    restored = 0
    for snapshot in ck.replay_snapshot_dirs(found):
        target = PrioritizedReplay(replay.capacity, replay.fields, alpha=0.6, priority_eps=1e-3)
        target.load_state_dict(*load_state_dir(snapshot))
        restored = len(target)
    restore_s = time.perf_counter() - start
    shutil.rmtree(run, ignore_errors=True)
    return {
        "checkpoint": "learner + replay" if include_replay else "learner only",
        "transitions": restored,
        "write_s": round(write_s, 3),
        "restore_s": round(restore_s, 3),
        "size_mb": round(size / 2**20, 1),
        "write_mb_per_s": round(size / 2**20 / write_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 transitions")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    n = 100_000 if args.quick else args.transitions
    root = Path(tempfile.mkdtemp(prefix="bench-ckpt-"))
    try:
        rows = [measure(n, False, root), measure(n, True, root)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{'checkpoint':18s} {'transitions':>11s} {'write s':>8s} {'restore s':>9s} {'size MB':>8s} {'write MB/s':>10s}"
    )
    for r in rows:
        print(
            f"{r['checkpoint']:18s} {r['transitions']:>11,d} {r['write_s']:8.2f} {r['restore_s']:9.2f} "
            f"{r['size_mb']:8.1f} {r['write_mb_per_s']:10.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
