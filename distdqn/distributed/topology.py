"""The component graph of a run on Ray: how each worker is built — resources and placement are requested here
and nowhere else — and what a rebuilt worker starts from (the run's latest checkpoint).

`connect_components` builds the whole graph in one place: the parameter store, K replay shards, the learner and N
actors. Actors are spread over the cluster's nodes (Ray's SPREAD strategy), the learner takes a GPU when the
cluster has one, shards go where their CPU request fits.

Inside a placement group (a sweep's trial: `distdqn.distributed.sweep` reserves `bundles(config)` after the trial's
own bundle), each worker goes into its own bundle: the group already holds the resources, so they are not checked
against the cluster's free ones, and no worker can take another's place in a bundle of a different size.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ray
from ray.util.placement_group import get_current_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from distdqn import checkpoint as ck
from distdqn.config import Config, run_dir
from distdqn.demonstrations import demo_source
from distdqn.distributed.actor_worker import ActorSetup, ActorWorker
from distdqn.distributed.launcher import check_resources, cluster_has_gpu
from distdqn.distributed.learner_worker import LearnerSetup, LearnerWorker
from distdqn.distributed.param_store import ParameterStore
from distdqn.distributed.replay_worker import ReplayShardWorker
from distdqn.envs import TaskShape
from distdqn.replay.prioritized import load_state_dir
from distdqn.runtime import actor_seed

# Hundreds of small calls per second flow between the workers; Ray's per-task event reporting (for its state API
# and dashboard) would send each one to the GCS, which costs CPU the learner needs on a small machine.
WORKER_OPTIONS = {"enable_task_events": False}


@dataclasses.dataclass
class Topology:
    """Handles to every worker of a run."""

    param_store: Any
    shards: list
    learner: Any
    actors: list  # by index: the live actors (scaling down removes the highest indices)
    incarnations: dict[int, int]  # actor index -> its latest incarnation (kept when scaled away: never reused)
    actor_setup: ActorSetup  # what a new actor incarnation is built from
    learner_setup: LearnerSetup  # what a restarted learner is built from
    learner_gpus: int


def learner_gpus(config: Config) -> int:
    """1 when the learner takes a GPU (asked for, or `auto` on a cluster that has one), else 0."""
    gpus = config.cluster.learner_num_gpus
    return 1 if gpus == "1" or (gpus == "auto" and cluster_has_gpu()) else 0


def bundles(config: Config) -> list[dict[str, float]]:
    """What each worker requests, in placement order: the learner, actor 0..N-1, shard 0..K-1 (an empty dict for a
    worker requesting nothing: it gets no bundle of its own). A placement group for the run reserves the non-empty
    ones, in this order, as its last bundles."""
    c = config.cluster
    learner = {"CPU": c.learner_num_cpus, "GPU": float(learner_gpus(config))}
    requests = [learner, *[{"CPU": c.actor_num_cpus}] * config.actor.num_actors]
    requests += [{"CPU": c.shard_num_cpus}] * config.replay.num_shards
    return [{k: v for k, v in r.items() if v > 0} for r in requests]


def placement(config: Config, worker: int | None, default: dict[str, Any]) -> dict[str, Any]:
    """Scheduling options of worker `worker` (its index in `bundles(config)`): `default` outside a placement group;
    inside one, that worker's own bundle, or any bundle of the group for a worker without one (None: the parameter
    store, an actor added by scaling; or one requesting nothing)."""
    group = get_current_placement_group()
    if group is None:
        return default
    wanted = bundles(config)
    if worker is None or not wanted[worker]:
        return {"scheduling_strategy": PlacementGroupSchedulingStrategy(group)}
    present = [i for i, request in enumerate(wanted) if request]
    index = len(group.bundle_specs) - len(present) + present.index(worker)
    return {"scheduling_strategy": PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)}


def make_actor(setup: ActorSetup, config: Config, index: int, incarnation: int):
    own = 1 + index if index < config.actor.num_actors else None
    where = placement(config, own, {"scheduling_strategy": "SPREAD"})
    return (
        ray.remote(ActorWorker)
        .options(num_cpus=config.cluster.actor_num_cpus, **where, **WORKER_OPTIONS)
        .remote(setup, index, incarnation, actor_seed(config.run.seed, index, incarnation))
    )


def make_shard(shape: TaskShape, config: Config, k: int, incarnation: int = 0):
    """Replay shard `k` (each incarnation samples with its own seed)."""
    where = placement(config, 1 + config.actor.num_actors + k, {})
    return (
        ray.remote(ReplayShardWorker)
        .options(num_cpus=config.cluster.shard_num_cpus, max_concurrency=1, **where, **WORKER_OPTIONS)
        .remote(k, shape=shape, config=config.replay, seed=config.run.seed * 7919 + k + 100_003 * incarnation)
    )


def make_learner(setup: LearnerSetup, config: Config, num_gpus: int):
    where = placement(config, 0, {})
    return (
        ray.remote(LearnerWorker)
        .options(num_cpus=config.cluster.learner_num_cpus, num_gpus=num_gpus, **where, **WORKER_OPTIONS)
        .remote(setup, config.run.seed)
    )


def cpus_needed(c: Config) -> tuple[float, str]:
    """CPUs the topology requests, and the arithmetic behind the number."""
    actors = c.actor.num_actors * c.cluster.actor_num_cpus
    shards = c.replay.num_shards * c.cluster.shard_num_cpus
    total = actors + shards + c.cluster.learner_num_cpus
    return total, (
        f"{c.actor.num_actors} actors x {c.cluster.actor_num_cpus:g} + {c.replay.num_shards} shards x "
        f"{c.cluster.shard_num_cpus:g} + learner {c.cluster.learner_num_cpus:g} = {total:g}"
    )


def connect_components(config: Config, shape: TaskShape) -> Topology:
    """The whole component graph in one place: parameter store, K replay shards, the learner, N actors.

    Resources are requested here and nowhere else: actors `cluster.actor_num_cpus` each, shards
    `cluster.shard_num_cpus`, the learner one GPU when the cluster has one (or when asked), else CPUs.
    """
    c = config
    num_gpus = learner_gpus(c)
    if get_current_placement_group() is None:  # inside one, the group holds the resources already
        cpus, breakdown = cpus_needed(c)
        check_resources(cpus, num_gpus, breakdown, wait_s=c.cluster.wait_for_resources_s)
    timeout = c.cluster.call_timeout_s
    in_group = placement(c, None, {})  # it requests no resources: any bundle of the group, if there is one
    param_store = ray.remote(ParameterStore).options(num_cpus=0, **in_group, **WORKER_OPTIONS).remote()
    shards = [make_shard(shape, c, k) for k in range(c.replay.num_shards)]
    learner_cfg = c.learner if num_gpus else dataclasses.replace(c.learner, device="cpu")
    learner_setup = LearnerSetup(
        c.network,
        learner_cfg,
        c.replay,
        shape,
        shards,
        param_store,
        timeout,
        demos=demo_source(c),
        max_updates=c.run.max_updates,
    )
    learner = make_learner(learner_setup, c, num_gpus)
    actor_setup = ActorSetup(c.env, c.network, c.actor, c.replay, c.actor.num_actors, shards, param_store, timeout)
    actors = [make_actor(actor_setup, c, i, 0) for i in range(c.actor.num_actors)]
    incarnations = dict.fromkeys(range(c.actor.num_actors), 0)
    return Topology(param_store, shards, learner, actors, incarnations, actor_setup, learner_setup, num_gpus)


def latest_learner_state(config: Config) -> tuple[dict[str, Any] | None, str]:
    """The learner state (+ limiter) of the run's latest checkpoint, and where it came from ('no checkpoint' when
    there is none: the learner restarts from scratch, or from the published weights)."""
    try:
        checkpoint = ck.find_checkpoint(run_dir(config))
        state = ck.read_state(checkpoint)
        return {"learner": ck.load_learner_state(checkpoint), "limiter": state["limiter"]}, f"checkpoint {checkpoint}"
    except (FileNotFoundError, ck.CheckpointError, KeyError):
        return None, "no checkpoint"


def latest_shard_states(config: Config, k: int, num_shards: int) -> tuple[list, str]:
    """Shard `k`'s part of the latest checkpoint's replay (old shard i goes to shard i mod K), and its source."""
    try:
        checkpoint = ck.find_checkpoint(run_dir(config))
        states = [load_state_dir(p) for i, p in enumerate(ck.replay_snapshot_dirs(checkpoint)) if i % num_shards == k]
        return states, f"checkpoint {checkpoint}"
    except (OSError, ValueError, KeyError):
        return [], "no checkpoint"
