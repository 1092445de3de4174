"""The Ray runtime on a real local Ray instance: data flows actor -> shard -> learner, priorities change, weight
versions reach the actors, the target syncs on schedule, dead actors are replaced, the run matches the local
runtime, and nothing is left running."""

import threading
import time

import pytest

from distdqn.config import load_config
from distdqn.trainer import build_supervisor
from tests.fakes import COPY_RUN

pytestmark = pytest.mark.integration

COPY = [
    *COPY_RUN,
    "learner.publish_interval_updates=10",
    "learner.target_sync_interval_updates=20",
    "run.eval_interval_s=1000",
    "run.log_interval_s=0.2",
    "checkpoint.interval_s=0",
    "cluster.actor_num_cpus=0.5",
    "cluster.learner_num_cpus=0.5",
]


def copy_config(tmp_path, *extra):
    return load_config(None, [*COPY, f"run.run_dir={tmp_path}", *extra])


def test_data_flows_versions_advance_target_syncs(ray_cluster, tmp_path):
    ray = ray_cluster
    config = copy_config(tmp_path, "actor.num_actors=2", "replay.num_shards=2", "run.max_updates=100")
    began = time.monotonic()
    supervisor = build_supervisor(config, tmp_path, "ray", quiet=True)
    try:
        summary = supervisor.run()
        elapsed = time.monotonic() - began
        topo = supervisor.runtime.topo
        learner = ray.get(topo.learner.stats.remote(), timeout=60)
        actors = ray.get([a.stats.remote() for a in topo.actors], timeout=60)
        shards = ray.get([s.stats.remote() for s in topo.shards], timeout=60)
    finally:
        supervisor.close()
    assert summary["updates"] >= 100
    # the run clock counts training only; the workers' start-up is reported beside it, not inside it
    assert summary["startup_s"] > 0 and summary["startup_s"] + summary["wall_s"] <= elapsed + 0.002  # both rounded
    assert learner["target_syncs"] == learner["updates"] // 20  # hard sync exactly every 20 updates
    assert learner["replay"]["updates_applied"] > 0  # priorities went back to the shards
    assert all(a["version"] >= 2 for a in actors)  # published weights reached every actor
    assert all(s["rejected"] == 0 for s in shards), [s["last_error"] for s in shards]
    # each actor pushes to its own shard; sampling follows priority totals, so on a loaded machine one shard may
    # not have been sampled yet within 100 updates: the samples are checked in total
    assert all(s["inserted"] > 0 for s in shards), shards
    assert sum(s["sampled"] for s in shards) > 0
    assert sum(s["inserted"] for s in shards) == sum(a["inserted"] for a in actors)  # every acked push is stored
    for a in actors:  # and every transition an actor made is accounted for
        assert a["transitions"] == a["inserted"] + a["rejected"] + a["duplicates"] + a["lost"] + a["in_flight"]
    # nothing left running: every worker of the run is gone
    for handle in [*topo.actors, topo.learner, *topo.shards, topo.param_store]:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(handle.ping.remote(), timeout=30)


def test_dead_actor_is_replaced_and_training_continues(ray_cluster, tmp_path):
    ray = ray_cluster
    config = copy_config(tmp_path, "actor.num_actors=2", "run.max_updates=150")
    supervisor = build_supervisor(config, tmp_path, "ray", quiet=True)
    runtime = supervisor.runtime
    killed = threading.Event()

    def kill_first_actor():
        while supervisor.tracker.counters.updates < 20 and not killed.is_set():
            threading.Event().wait(0.1)
        ray.kill(runtime.topo.actors[0], no_restart=True)
        killed.set()

    threading.Thread(target=kill_first_actor, daemon=True).start()
    try:
        summary = supervisor.run()
    finally:
        killed.set()
        supervisor.close()
    assert runtime.restarts["actor"] >= 1
    assert runtime.topo.incarnations[0] >= 1
    assert summary["updates"] >= 150


def test_one_actor_one_shard_matches_local_runtime(ray_cluster, tmp_path):
    extra = ["actor.num_actors=1", "replay.num_shards=1", "run.max_updates=300", "run.seed=3"]
    summaries = {}
    for runtime in ("local", "ray"):
        supervisor = build_supervisor(copy_config(tmp_path / runtime, *extra), tmp_path / runtime, runtime, quiet=True)
        try:
            summaries[runtime] = supervisor.run()
        finally:
            supervisor.close()
    local_summary, dist_summary = summaries["local"], summaries["ray"]
    assert local_summary["final_success"] >= 0.9
    assert dist_summary["final_success"] >= 0.9
    assert abs(local_summary["final_success"] - dist_summary["final_success"]) <= 0.1


@pytest.mark.parametrize("episodes", [False, True])
def test_the_learner_pretrains_on_demonstrations_while_actors_wait(ray_cluster, tmp_path, episodes):
    ray = ray_cluster
    config = copy_config(
        tmp_path,
        "learner.demo_pretrain_updates=100000",  # the whole run (the run stops at 300 updates)
        "run.max_updates=300",
        *(["learner.demo_episodes=true", "learner.demo_pretrain_batch_size=8"] if episodes else []),
    )
    supervisor = build_supervisor(config, tmp_path, "ray", quiet=True)
    try:
        summary = supervisor.run()
        topo = supervisor.runtime.topo
        learner = ray.get(topo.learner.stats.remote(), timeout=60)
        shards = ray.get([s.stats.remote() for s in topo.shards], timeout=60)
    finally:
        supervisor.close()
    assert summary["updates"] >= 300 and learner["sampled"] == 0  # demonstrations only, no replay batch yet
    assert learner["metrics"]["demo_accuracy"] >= 0.5  # CopyEnv's oracle moves, learned (1/9 by chance)
    # the actors saw the replay reach its minimum size and waited for the learner's samples: a few pushes (16 envs x
    # 8 steps) each past replay.min_size_to_sample (256), not the ~2,000 transitions a second they make unthrottled.
    # (~770 here, also with the 2 cores busy; when a stale size report let actors fill freely: up to 2,813)
    assert sum(s["inserted"] for s in shards) <= 256 + 5 * 16 * 8 * 2, shards
