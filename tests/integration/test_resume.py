"""Checkpoints and resume on the Ray runtime: exact learner and replay state after a resume, a different
actor and shard count, a run resumed twice still learning, and a killed training process resumed from disk."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from distdqn import checkpoint as ck
from distdqn.config import load_config
from distdqn.replay.prioritized import load_state_dir
from distdqn.trainer import build_supervisor

from .test_runtime import COPY

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def config_for(run_dir, *extra):
    return load_config(None, [*COPY, f"run.run_dir={run_dir}", "checkpoint.include_replay=true", *extra])


def assert_tensors_equal(a, b, path=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a.cpu(), b.cpu()), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_tensors_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_tensors_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def test_resume_restores_learner_and_replay_exactly(ray_cluster, tmp_path):
    ray = ray_cluster
    run = tmp_path / "run"
    config = config_for(run, "actor.num_actors=2", "replay.num_shards=2", "run.max_updates=60")
    first = build_supervisor(config, run, "ray", quiet=True)
    try:
        first.run()  # ends with a final checkpoint
        saved_at = ck.find_checkpoint(run)
        saved_learner = ray.get(first.runtime.topo.learner.state_dict.remote(), timeout=60)["learner"]
    finally:
        first.close()

    second = build_supervisor(config, run, "ray", counters=ck.load_counters(run), quiet=True)
    try:
        second.restore(run)
        restored = ray.get(second.runtime.topo.learner.state_dict.remote(), timeout=60)["learner"]
        assert_tensors_equal(saved_learner, restored)
        for k, shard in enumerate(second.runtime.topo.shards):
            ray.get(shard.snapshot.remote(str(tmp_path / f"again_{k}")), timeout=60)
            before, _ = load_state_dir(saved_at / "replay" / f"shard_{k}")
            after, _ = load_state_dir(tmp_path / f"again_{k}")
            assert before.keys() == after.keys()
            for name in before:
                np.testing.assert_array_equal(before[name], after[name], err_msg=name)
        assert second.tracker.counters.updates == ck.load_counters(run).updates >= 60
    finally:
        second.close()


def test_resume_with_other_actor_and_shard_counts_keeps_learning(ray_cluster, tmp_path):
    run = tmp_path / "run"
    budgets = [("2", "2", 100), ("3", "1", 200), ("1", "3", 300)]  # (actors, shards, max_updates) per session
    summary = None
    for i, (actors, shards, updates) in enumerate(budgets):
        config = config_for(
            run, f"actor.num_actors={actors}", f"replay.num_shards={shards}", f"run.max_updates={updates}", "run.seed=5"
        )
        supervisor = build_supervisor(config, run, "ray", counters=ck.load_counters(run) if i else None, quiet=True)
        try:
            if i:
                supervisor.restore(run)
                shards = supervisor.runtime.topo.shards
                size = sum(s["size"] for s in ray_cluster.get([s.stats.remote() for s in shards]))
                assert size > 0  # the old shards' items were redistributed over the new shard count
            summary = supervisor.run()  # ends with a final checkpoint
        finally:
            supervisor.close()
    assert summary["updates"] >= 300
    assert summary["final_success"] >= 0.9  # resumed twice, still reaches its target
    # the run's sampled count continues across the resumes (the rate limiter's own restarts with the replay): a
    # batch per update, plus what each session's prefetch drew ahead and did not train on
    counters, batch = ck.load_counters(run), config.learner.batch_size
    ahead = config.learner.prefetch * config.learner.batches_per_request * batch
    assert counters.updates * batch <= counters.sampled <= counters.updates * batch + len(budgets) * ahead


def test_killed_training_process_resumes_from_its_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [
        sys.executable,
        "-m",
        "distdqn",
        "train",
        "--local",
        "--quiet",
        "--run-dir",
        str(run),
        *COPY,
        "checkpoint.interval_updates=40",
        "checkpoint.interval_s=0",
        "run.max_updates=100000",
    ]
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(ck.list_checkpoints(run / "checkpoints")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    saved_updates = ck.load_counters(run).updates  # the latest complete checkpoint survived the kill
    assert saved_updates >= 40
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "distdqn",
            "train",
            "--local",
            "--quiet",
            "--resume",
            str(run),
            f"run.max_updates={saved_updates + 60}",
            "--json",
            str(tmp_path / "s.json"),
            "--examples",
            "0",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["updates"] >= saved_updates + 60
