"""What clusters do to a run, on a real local Ray instance: a worker process killed with SIGKILL (an actor, a
replay shard, the learner) or stopped with SIGSTOP is replaced and the run still reaches its target; a worker that
keeps failing ends the run after its restart cap with one line and a final checkpoint; every transition is
accounted for."""

import os
import signal
import threading
import time

import pytest

from distdqn import checkpoint as ck
from distdqn.config import load_config
from distdqn.trainer import build_supervisor
from tests.fakes import COPY_RUN

pytestmark = pytest.mark.integration

BASE = [
    *COPY_RUN,
    "run.eval_interval_s=0.5",
    "run.log_interval_s=0.2",
    "run.target_success=0.95",
    "run.max_seconds=150",
    "checkpoint.interval_s=0",
    "checkpoint.interval_updates=20",
    "learner.lr=2e-4",  # slower than COPY_RUN: first checkpoint ~1.6 s, target ~7.5 s on 2 cores (1e-3: 1.9 s)
    "checkpoint.include_replay=true",
    "cluster.actor_num_cpus=0.5",
    "cluster.learner_num_cpus=0.5",
    "cluster.restart_backoff_s=0.2",
]


def run_with(ray, tmp_path, victim, *overrides, sig=signal.SIGKILL, after_updates=25, after_checkpoint=True):
    """Train with `victim(runtime)` -> a worker handle whose process gets `sig` once the run has made
    `after_updates` updates and (with `after_checkpoint`) written its first checkpoint; the summary and the
    runtime."""
    config = load_config(None, [*BASE, f"run.run_dir={tmp_path}", "actor.num_actors=2", *overrides])
    supervisor = build_supervisor(config, tmp_path, "ray", quiet=True)
    runtime = supervisor.runtime
    done = threading.Event()

    def strike():
        while not done.is_set() and (
            supervisor.tracker.counters.updates < after_updates or (after_checkpoint and not has_checkpoint(tmp_path))
        ):
            time.sleep(0.05)
        if not done.is_set():
            os.kill(ray.get(victim(runtime).pid.remote(), timeout=60), sig)

    threading.Thread(target=strike, daemon=True).start()
    try:
        summary = supervisor.run()
    finally:
        done.set()
        supervisor.close()
    return summary, runtime


def has_checkpoint(run_dir) -> bool:
    try:
        ck.find_checkpoint(run_dir)
        return True
    except (OSError, ck.CheckpointError):
        return False


def assert_accounted(summary):
    t = summary["transitions"]
    assert t["generated"] == t["inserted"] + t["rejected"] + t["duplicates"] + t["lost"], t
    assert t["inserted"] > 0 and t["rejected"] == 0


@pytest.mark.parametrize(
    ("kind", "victim", "after_checkpoint"),
    [
        ("actor", lambda runtime: runtime.topo.actors[0], True),
        ("shard", lambda runtime: runtime.topo.shards[0], True),  # restored from the checkpoint's replay
        # Before any checkpoint: the one shard restarts empty, and the actors' pushes while it was down are lost.
        # Those must not count as inserts in the actors' rate limiter, or actors and learner wait for each other.
        ("shard", lambda runtime: runtime.topo.shards[0], False),
        ("learner", lambda runtime: runtime.topo.learner, True),
    ],
    ids=["actor", "shard", "shard-before-any-checkpoint", "learner"],
)
def test_sigkill_of_a_worker_is_survived_and_the_target_reached(ray_cluster, tmp_path, kind, victim, after_checkpoint):
    summary, runtime = run_with(ray_cluster, tmp_path, victim, after_checkpoint=after_checkpoint)
    assert runtime.restarts[kind] >= 1, (runtime.restarts, summary)
    assert summary["stop_reason"].startswith("target reached"), summary
    assert_accounted(summary)


def test_stopped_worker_is_detected_as_hung_and_replaced(ray_cluster, tmp_path):
    summary, runtime = run_with(
        ray_cluster,
        tmp_path,
        lambda runtime: runtime.topo.actors[1],
        "cluster.call_timeout_s=5",
        "run.target_success=0",
        "run.max_seconds=25",
        sig=signal.SIGSTOP,
    )
    assert runtime.restarts["actor"] >= 1 and runtime.topo.incarnations[1] >= 1, (runtime.restarts, summary)
    assert summary["stop_reason"].startswith("time budget reached")  # training went on with the replacement


def test_a_worker_past_its_restart_cap_ends_the_run_with_one_line_and_a_checkpoint(ray_cluster, tmp_path):
    config = load_config(
        None,
        [
            *BASE,
            f"run.run_dir={tmp_path}",
            "env.task=tests.fakes:FlakyCopyEnv",
            "env.options={fail_after_steps: 60}",
            "actor.num_actors=1",
            "cluster.max_restarts=2",
            "run.target_success=0",
        ],
    )
    supervisor = build_supervisor(config, tmp_path, "ray", quiet=True)
    try:
        summary = supervisor.run()
    finally:
        supervisor.close()
    reason = summary["stop_reason"]
    assert reason.startswith("failed: actor 0 failed 3 times within"), reason
    assert "flaky task: step 61 fails on purpose" in reason and "\n" not in reason
    assert ck.load_counters(tmp_path).updates == summary["updates"]  # the final checkpoint was written
