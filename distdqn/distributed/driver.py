"""The distributed driver: wires the Ape-X topology on Ray in one function and supervises it (health, restarts,
budgets, held-out evaluation, metrics, checkpoints, clean shutdown)."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import ray

from distdqn import checkpoint as ck
from distdqn.config import Config
from distdqn.distributed.actor_worker import REMOTE_FAILURES, TIMING_KEYS, ActorWorker
from distdqn.distributed.launcher import check_resources, cluster_has_gpu, init_ray
from distdqn.distributed.learner_worker import LEARNER_TIMING_KEYS, LearnerWorker
from distdqn.distributed.param_store import ParameterStore
from distdqn.distributed.replay_worker import ReplayShardWorker
from distdqn.envs import TaskShape, task_shape
from distdqn.evaluation import evaluate
from distdqn.run import Counters, RunTracker

# Hundreds of small calls per second flow between the workers; Ray's per-task event reporting (for its state API
# and dashboard) would send each one to the GCS, which costs CPU the learner needs on a small machine.
WORKER_OPTIONS = {"enable_task_events": False}

# Actors and the learner work in slices: `run(WORK_SLICE_S)` returns the worker's stats, and the driver keeps
# QUEUED_SLICES calls queued per worker so that it never waits for the driver (which evaluates, logs and writes
# checkpoints between results). Workers are single-threaded Ray actors; see actor_worker's docstring for why.
WORK_SLICE_S = 0.5
QUEUED_SLICES = 2
LEARNER = "learner"  # the learner's key among the workers (actors are keyed by index)


@dataclasses.dataclass
class Topology:
    """Handles to every worker of a run."""

    param_store: Any
    shards: list
    learner: Any
    actors: list
    incarnations: list[int]


def actor_seed(config: Config, index: int, incarnation: int) -> int:
    return config.run.seed * 1000 + index + 100_000 * incarnation


def make_actor(config: Config, topo_shards: list, param_store, index: int, incarnation: int):
    c = config
    return (
        ray.remote(ActorWorker)
        .options(num_cpus=c.cluster.actor_num_cpus, **WORKER_OPTIONS)
        .remote(
            c.env,
            c.network,
            c.actor,
            c.replay,
            index,
            c.actor.num_actors,
            actor_seed(c, index, incarnation),
            incarnation,
            topo_shards,
            param_store,
            c.cluster.call_timeout_s,
        )
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
    gpus = c.cluster.learner_num_gpus
    num_gpus = 1 if gpus == "1" or (gpus == "auto" and cluster_has_gpu()) else 0
    cpus, breakdown = cpus_needed(c)
    check_resources(cpus, num_gpus, breakdown)
    param_store = ray.remote(ParameterStore).options(num_cpus=0, **WORKER_OPTIONS).remote()
    shards = [
        ray.remote(ReplayShardWorker)
        .options(num_cpus=c.cluster.shard_num_cpus, max_concurrency=1, **WORKER_OPTIONS)
        .remote(k, shape=shape, config=c.replay, seed=c.run.seed * 7919 + k)
        for k in range(c.replay.num_shards)
    ]
    learner_cfg = c.learner if num_gpus else dataclasses.replace(c.learner, device="cpu")
    learner = (
        ray.remote(LearnerWorker)
        .options(num_cpus=c.cluster.learner_num_cpus, num_gpus=num_gpus, **WORKER_OPTIONS)
        .remote(
            c.network,
            learner_cfg,
            c.replay,
            shape.vocab_size,
            shape.max_len,
            c.run.seed,
            shards,
            param_store,
            c.cluster.call_timeout_s,
            shape.token_values,
        )
    )
    actors = [make_actor(c, shards, param_store, i, 0) for i in range(c.actor.num_actors)]
    return Topology(param_store, shards, learner, actors, [0] * c.actor.num_actors)


class DistributedRunner:
    """Starts (or joins) Ray, builds the topology, and supervises training from the driver process."""

    def __init__(self, config: Config, directory: Path, counters: Counters | None = None, quiet: bool = False):
        self._setup_began = time.monotonic()
        self.config = config
        self.directory = directory
        self.started_ray = init_ray(config.cluster, cpus_needed=cpus_needed(config)[0])
        shape = task_shape(config.env)
        self.vocab_size, self.max_len, self.with_mask = shape.vocab_size, shape.max_len, shape.with_mask
        self.topo = connect_components(config, shape)
        self.tracker = RunTracker(config, directory, counters, quiet=quiet)
        self._base = dataclasses.replace(self.tracker.counters)  # counters at session start (resume)
        self._actor_totals: dict[tuple[int, int], dict[str, Any]] = {}  # (actor, incarnation) -> latest totals
        self._slices: dict[int | str, deque] = {}  # worker key -> its queued run() calls, oldest first
        self._stopping = False
        self._learner_stats: dict[str, Any] = {}
        self._window_episodes: list[tuple[float, float, float]] = []
        self.restarts = 0
        self.timing = dict.fromkeys(TIMING_KEYS, 0.0)
        self.learner_timing = dict.fromkeys(LEARNER_TIMING_KEYS, 0.0)

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        self._start_workers()
        reason = None
        try:
            while (reason := self.tracker.stop_reason()) is None:
                reason = self._supervise(self.config.run.log_interval_s)
                if reason:
                    break
                self._refresh()
                if self.tracker.eval_due():
                    self.evaluate()
                if self.tracker.checkpoint_due():
                    self.save_checkpoint()
        except KeyboardInterrupt:
            reason = "interrupted"
        self._stop_workers()
        self._refresh()
        if self.tracker.counters.last_success is None or not (reason or "").startswith("target reached"):
            self.evaluate()  # the final held-out success of the weights the run ends with
        return self.tracker.summary(reason)

    def _start_workers(self) -> None:
        """Wait until every worker is up (a constructor's error is raised here, a worker not up within the start
        timeout raises GetTimeoutError), then start the run clock and queue every worker's first slices."""
        topo = self.topo
        ray.get(
            [a.ping.remote() for a in topo.actors]
            + [topo.learner.ping.remote()]
            + [s.ping.remote() for s in topo.shards],
            timeout=max(self.config.cluster.call_timeout_s, 120),
        )
        self.tracker.start_clock(self._setup_began)
        for key in [LEARNER, *range(len(topo.actors))]:
            self._queue_slices(key)

    def _worker(self, key: int | str):
        return self.topo.learner if key == LEARNER else self.topo.actors[key]

    def _queue_slices(self, key: int | str) -> None:
        queue = self._slices.setdefault(key, deque())
        while len(queue) < QUEUED_SLICES:
            queue.append(self._worker(key).run.remote(WORK_SLICE_S))

    def _supervise(self, timeout_s: float) -> str | None:
        """For up to `timeout_s`: take each finished slice's stats and queue the worker's next slice; restart dead
        actors, fail on a dead learner."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            heads = {queue[0]: key for key, queue in self._slices.items() if queue}
            if not heads:
                return None
            ready, _ = ray.wait(list(heads), num_returns=1, timeout=left)
            if not ready:
                return None
            ready, _ = ray.wait(list(heads), num_returns=len(heads), timeout=0)
            for ref in ready:
                key = heads[ref]
                self._slices[key].popleft()
                try:
                    stats = ray.get(ref)
                except REMOTE_FAILURES as e:
                    if key == LEARNER:
                        return f"failed: the learner died ({type(e).__name__})"
                    self._slices[key].clear()
                    if not self._stopping:
                        self.restart_actor(key, type(e).__name__)
                    continue
                self._fold(key, stats)
                if not self._stopping:
                    self._queue_slices(key)
        return None

    def restart_actor(self, index: int, problem: str) -> None:
        """Replace actor `index` with a new incarnation (new seed stream, same epsilon, fresh sequence numbers)."""
        topo = self.topo
        old = topo.actors[index]
        try:
            ray.kill(old, no_restart=True)
        except REMOTE_FAILURES:
            pass
        topo.incarnations[index] += 1
        self.restarts += 1
        self.tracker.message(
            f"[supervisor] actor {index} failed ({problem}); starting incarnation {topo.incarnations[index]}"
        )
        topo.actors[index] = make_actor(self.config, topo.shards, topo.param_store, index, topo.incarnations[index])
        self._slices[index] = deque()
        self._queue_slices(index)

    def _fold(self, key: int | str, s: dict[str, Any]) -> None:
        """Fold one worker's stats (totals, and its window since its last stats) into the driver's view."""
        if key == LEARNER:
            self._learner_stats = s
            for k in self.learner_timing:
                self.learner_timing[k] += s["window"][k]
            return
        self._actor_totals[(key, s["incarnation"])] = {
            "env_steps": s["env_steps"],
            "transitions": s["transitions"],
            "episodes": s["episodes"],
            "epsilon": s["epsilon"],
            "version": s["version"],
        }
        w = s["window"]
        if w["episodes"]:
            self._window_episodes.append((w["success_sum"], w["episodes"], s["epsilon"]))
            self._window_episodes = self._window_episodes[-200:]
        for k in self.timing:
            self.timing[k] += w[k]

    def _refresh(self) -> None:
        """The run's counters from the workers' latest stats; a progress line / metrics record when one is due."""
        c = self.tracker.counters
        totals = self._actor_totals.values()
        c.env_steps = self._base.env_steps + sum(t["env_steps"] for t in totals)
        c.inserted = self._base.inserted + sum(t["transitions"] for t in totals)
        c.episodes = self._base.episodes + sum(t["episodes"] for t in totals)
        ls = self._learner_stats
        if ls:
            c.updates = ls["updates"]
            c.sampled = ls["sampled"]  # the learner's counters are restored on resume
            c.version = ls["version"]
        if self.tracker.log_due():
            self.tracker.log(self._extras())

    def _extras(self) -> dict[str, Any]:
        eps_success: dict[str, list[float]] = {}
        for succ, n, eps in self._window_episodes:
            eps_success.setdefault(f"{eps:.3g}", []).extend([succ, n])
        count = sum(n for _, n, _ in self._window_episodes)
        extras: dict[str, Any] = {
            "train.success": sum(s for s, _, _ in self._window_episodes) / count if count else None,
            "actor.epsilon_min": min((t["epsilon"] for t in self._actor_totals.values()), default=None),
            "version_lag": self.tracker.counters.version
            - min((t["version"] for t in self._actor_totals.values()), default=0),
            "actor.restarts": self.restarts,
        }
        for eps, vals in eps_success.items():
            s, n = sum(vals[0::2]), sum(vals[1::2])
            extras[f"train.success_by_eps.{eps}"] = s / n if n else None
        ls = self._learner_stats
        if ls:
            extras.update({f"learner.{k}": v for k, v in ls.get("metrics", {}).items()})
            replay = ls.get("replay", {})
            extras["replay.size"] = replay.get("size")
            extras["learner.target_syncs"] = ls.get("target_syncs")
        t = self.timing
        if t["t_total"]:
            extras["actor.overhead_frac"] = (t["t_encode"] + t["t_push"] + t["t_wait"] + t["t_pull"]) / t["t_total"]
            extras["actor.throttle_frac"] = t["t_throttle"] / t["t_total"]
        lt = self.learner_timing
        busy = lt["t_update"] + lt["t_wait"] + lt["t_publish"]
        if busy and lt["updates"]:
            # the learner's time split: updating (sample decode included), waiting for batches, publishing weights
            extras["learner.update_frac"] = lt["t_update"] / busy
            extras["learner.wait_frac"] = lt["t_wait"] / busy
            extras["learner.update_ms"] = 1000.0 * lt["t_update"] / lt["updates"]
        return extras

    # ---- evaluation -------------------------------------------------------------------------------------------
    def latest_weights(self) -> tuple[int, dict[str, np.ndarray]]:
        version, ref, _ = ray.get(self.topo.param_store.latest.remote(-1), timeout=self.config.cluster.call_timeout_s)
        return version, ray.get(ref[0], timeout=self.config.cluster.call_timeout_s)

    def evaluate(self, examples: int = 5) -> float:
        cfg = self.config
        try:
            _, weights = self.latest_weights()
        except REMOTE_FAILURES:
            return float("nan")
        result = evaluate(
            cfg.network,
            weights,
            cfg.env,
            episodes=cfg.run.eval_episodes,
            seed=cfg.run.seed + 12345,
            split="test",
            examples=examples,
        )
        self.tracker.record_eval(result.success, result.mean_return, result.examples)
        return result.success

    def show_examples(self, n: int) -> None:
        cfg = self.config
        _, weights = self.latest_weights()
        result = evaluate(cfg.network, weights, cfg.env, episodes=n, seed=cfg.run.seed + 999, split="test", examples=n)
        print("held-out generations (greedy):")
        for prompt, text, ok in result.examples:
            print(f"  {'+' if ok >= 1 else '-'} {prompt} -> {text}")

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def save_checkpoint(self, final: bool = False) -> Path:
        """Learner, actors and (with checkpoint.include_replay) every shard, written by the shard itself into the
        checkpoint's temporary directory (on a multi-node cluster the run directory must be shared storage)."""
        topo, c = self.topo, self.tracker.counters
        timeout = max(self.config.cluster.call_timeout_s, 600)
        learner = ray.get(topo.learner.state_dict.remote(), timeout=timeout)
        actors = ray.get([a.state_dict.remote() for a in topo.actors], timeout=timeout)
        c.wall_s = self.tracker.wall_s()
        write_replay = None
        if self.config.checkpoint.include_replay:

            def write_replay(directory: Path) -> int:
                refs = [s.snapshot.remote(str(directory / f"shard_{k}")) for k, s in enumerate(topo.shards)]
                for report in ray.get(refs, timeout=timeout):
                    if not report["saved"]:
                        raise OSError(f"replay snapshot failed: {report['error']}")
                return len(refs)

        path = ck.save_run(self.directory, self.config, c, learner["learner"], actors, learner["limiter"], write_replay)
        self.tracker.checkpoint_done(path)
        return path

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint. A different actor count works (actors beyond the saved ones start fresh);
        a different shard count too: old shard i's snapshot goes to new shard i mod K."""
        topo = self.topo
        checkpoint = ck.find_checkpoint(path)
        state = ck.read_state(checkpoint)
        timeout = max(self.config.cluster.call_timeout_s, 600)
        learner_state = ck.load_learner_state(checkpoint)
        snapshots = ck.replay_snapshot_dirs(checkpoint)
        k = len(topo.shards)
        reports = ray.get(
            [
                s.restore_many.remote([str(p) for i, p in enumerate(snapshots) if i % k == j])
                for j, s in enumerate(topo.shards)
            ],
            timeout=timeout,
        )
        for report in reports:
            if report.get("error"):
                self.tracker.message(f"[resume] shard {report.get('shard')}: {report['error']}; it starts empty")
        ray.get(
            topo.learner.load_state_dict.remote(
                {"learner": learner_state, "limiter": state["limiter"]},
                restored_replay=sum(r.get("size", 0) for r in reports),
            ),
            timeout=timeout,
        )
        ray.get(
            [a.load_state_dict.remote(s) for a, s in zip(topo.actors, state["actors"], strict=False)], timeout=timeout
        )
        self.tracker.message(
            f"[resume] {checkpoint}: env_steps={self.tracker.counters.env_steps} "
            f"updates={self.tracker.counters.updates} replay={sum(r.get('size', 0) for r in reports)}"
        )

    # ---- shutdown ---------------------------------------------------------------------------------------------
    def _stop_workers(self) -> None:
        """Let the queued slices finish (no new ones), then flush every worker's pushes and priority updates."""
        self._stopping = True
        timeout = self.config.cluster.call_timeout_s
        deadline = time.monotonic() + timeout
        while any(self._slices.values()) and time.monotonic() < deadline:
            self._supervise(deadline - time.monotonic())
        keys = [LEARNER, *range(len(self.topo.actors))]
        refs = {self._worker(key).flush.remote(): key for key in keys}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        for ref in ready:
            try:
                self._fold(refs[ref], ray.get(ref))
            except REMOTE_FAILURES:
                pass

    def close(self) -> None:
        """Kill every worker this run started, and the Ray instance when this process started it."""
        topo = self.topo
        for handle in [*topo.actors, topo.learner, *topo.shards, topo.param_store]:
            try:
                ray.kill(handle, no_restart=True)
            except REMOTE_FAILURES:
                pass
        self.tracker.close()
        if self.started_ray:
            ray.shutdown()
