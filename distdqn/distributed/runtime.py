"""The Ray runtime: starts (or joins) Ray, builds the Ape-X graph (`distdqn.distributed.topology`) and moves data
between the workers for the supervisor (`distdqn.supervisor`), through the `Runtime` protocol (`distdqn.runtime`).

Workers run in slices: `run(WORK_SLICE_S)` returns the worker's stats, and the runtime keeps QUEUED_SLICES calls
queued per worker so that a worker never waits while the supervisor evaluates, logs or writes a checkpoint. Workers
are single-threaded Ray actors (see actor_worker's docstring for why). Dead or hung workers are rebuilt (actors as a
new incarnation, shards and the learner from the latest checkpoint) within the restart limits
(`distdqn.distributed.restarts`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayTaskError

from distdqn.config import Config
from distdqn.distributed.actor_worker import REMOTE_FAILURES, TIMING_KEYS
from distdqn.distributed.launcher import init_ray
from distdqn.distributed.learner_worker import LEARNER_TIMING_KEYS
from distdqn.distributed.restarts import RestartPolicy
from distdqn.distributed.topology import (
    connect_components,
    cpus_needed,
    latest_learner_state,
    latest_shard_states,
    make_actor,
    make_learner,
    make_shard,
)
from distdqn.envs import task_shape
from distdqn.learner import NonFiniteWeightsError
from distdqn.replay.prioritized import load_state_dir, save_state_dir
from distdqn.runtime import ActorView, EpisodeRecord, Progress, RuntimeState, ScaleRefused, WorkerUnavailable

# A RayTaskError from the learner's NonFiniteWeightsError is an instance of both (Ray derives the class).
NON_FINITE = (NonFiniteWeightsError,)

# An actor's running totals (its stats) -> the Progress field each one's increments go to.
ACCOUNTED = {
    "env_steps": "env_steps",
    "transitions": "generated",
    "inserted": "inserted",
    "rejected": "rejected",
    "duplicates": "duplicates",
    "lost": "lost",
}

SHARD_PING_S = 2.0  # how often the runtime checks that every replay shard answers
WORK_SLICE_S = 0.5
QUEUED_SLICES = 2
CLOSE_WAIT_S = 10.0  # how long close() waits for killed workers to be gone (their resources free again)
LEARNER = "learner"  # the learner's key among the workers (actors are keyed by index)


def _describe(error: Exception) -> str:
    """One line naming a worker's failure; for an exception raised inside a worker method, the original one."""
    cause = getattr(error, "cause", None) if isinstance(error, RayTaskError) else None
    if isinstance(cause, BaseException):
        error = cause
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}"[:300] if first else type(error).__name__


class RayRuntime:
    """Starts (or joins) Ray and builds the topology; `advance` keeps every worker's slices queued and folds the
    stats they return."""

    def __init__(self, config: Config):
        self.config = config
        self.started_ray = init_ray(config.cluster, cpus_needed=cpus_needed(config)[0])
        self.topo = connect_components(config, task_shape(config.env))
        self.restarts = {"actor": 0, "learner": 0, "shard": 0}  # restarts this session, by worker kind
        self._slices: dict[int | str, deque] = {}  # worker key -> its queued run() calls, oldest first
        self._stopping = False
        self._seen: dict[tuple[int, int], dict[str, int]] = {}  # (actor, incarnation) -> totals already counted
        self._actors: dict[int, dict[str, Any]] = {}  # index -> latest stats of its current incarnation
        self._learner_stats: dict[str, Any] = {}
        self.timing = dict.fromkeys(TIMING_KEYS, 0.0)
        self.learner_timing = dict.fromkeys(LEARNER_TIMING_KEYS, 0.0)
        self._progress = Progress()
        self._retiring: set[int] = set()  # actors being scaled away: no new slices, then a flush, then killed
        self._flushing: set[int] = set()
        cc = config.cluster
        self.policy = RestartPolicy(cc.max_restarts, cc.restart_window_s, cc.restart_backoff_s)
        self._due: dict[int | str, tuple[float, str]] = {}  # worker key -> (restart time, its last error)
        self._answered: dict[int | str, float] = {}  # worker key -> when it last answered (hung-worker detection)
        self._placed: set[int] = set()  # actors (of their current incarnation) that answered at least once
        self._shard_pings: dict[int, tuple[Any, float]] = {}  # shard -> (ping in flight, when sent)
        self._shard_incarnations = [0] * config.replay.num_shards

    # ---- the Runtime protocol ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Wait until every worker is up (a constructor's error is raised here, a worker not up within the start
        timeout raises GetTimeoutError), then queue every worker's first slices."""
        topo = self.topo
        ray.get(
            [a.ping.remote() for a in topo.actors]
            + [topo.learner.ping.remote()]
            + [s.ping.remote() for s in topo.shards],
            timeout=max(self.config.cluster.call_timeout_s, 120),
        )
        self._placed.update(range(len(topo.actors)))
        for key in [LEARNER, *range(len(topo.actors))]:
            self._queue_slices(key)

    def advance(self, seconds: float, updates_left: int | None = None) -> Progress:
        """For up to `seconds`: take each finished slice's stats and queue the worker's next slice; replace dead
        actors; report a dead learner as the run's failure. (`updates_left` is not needed: the learner itself makes
        no update past `run.max_updates`.)"""
        self._pump(seconds)
        return self._report()

    def _pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._progress.failure:
            self._check_health()
            heads = {queue[0]: key for key, queue in self._slices.items() if queue}
            if self._due:  # wake up for the next restart
                left = max(min(left, min(due for due, _ in self._due.values()) - time.monotonic()), 0.0)
            if not heads:
                if not self._due:
                    break  # nothing queued and no restart pending: nothing to wait for
                time.sleep(left)
                continue
            ready, _ = ray.wait(list(heads), num_returns=1, timeout=left)
            if not ready:
                continue
            ready, _ = ray.wait(list(heads), num_returns=len(heads), timeout=0)
            for ref in ready:
                self._take(heads[ref], ref)

    def latest_weights(self) -> dict[str, np.ndarray] | None:
        timeout = self.config.cluster.call_timeout_s
        try:
            _, ref, _ = ray.get(self.topo.param_store.latest.remote(-1), timeout=timeout)
            return ray.get(ref[0], timeout=timeout) if ref else None
        except REMOTE_FAILURES:
            return None

    def state_dict(self) -> RuntimeState:
        """Read between two slices of each worker (they are single-threaded), never in the middle of an update.
        An actor that is down gives None (it starts fresh on resume); a learner that is down makes the checkpoint
        impossible (`WorkerUnavailable`)."""
        topo = self.topo
        timeout = max(self.config.cluster.call_timeout_s, 600)
        try:
            learner = ray.get(topo.learner.state_dict.remote(), timeout=timeout)
        except REMOTE_FAILURES as e:
            raise WorkerUnavailable(f"the learner is down ({_describe(e)})") from None
        refs = [a.state_dict.remote() if i in self._placed else None for i, a in enumerate(topo.actors)]
        asked = [ref for ref in refs if ref is not None]  # an actor still waiting for a node has no state yet
        ray.wait(asked, num_returns=len(asked), timeout=self.config.cluster.call_timeout_s)  # a hung one is None
        actors = []
        for ref in refs:
            try:
                actors.append(None if ref is None else ray.get(ref, timeout=0))
            except (*REMOTE_FAILURES, RayTaskError):
                actors.append(None)
        return RuntimeState(learner["learner"], learner["limiter"], actors)

    def write_replay(self, directory: Path) -> int:
        """Each shard's state comes to the driver through the object store and the driver writes it, so no node
        needs to see the run directory (only the driver's machine does)."""
        timeout = max(self.config.cluster.call_timeout_s, 600)
        for k, shard in enumerate(self.topo.shards):
            try:
                arrays, meta = ray.get(shard.export_state.remote(), timeout=timeout)
            except REMOTE_FAILURES as e:
                raise WorkerUnavailable(f"replay shard {k} is down ({_describe(e)})") from None
            save_state_dir(directory / f"shard_{k}", arrays, meta)
        return len(self.topo.shards)

    def load_state_dict(self, state: RuntimeState, replay_snapshots: list[Path]) -> tuple[int, list[str]]:
        """Shards first (old shard i's snapshot goes to new shard i mod K, so the shard count may change; the
        driver reads the files and sends their arrays), then the learner (its rate limiter restarts inside the
        band for the replay as restored), then the actors by index (actors beyond the saved ones start fresh; a
        restored actor continues as a new incarnation of its stream)."""
        topo = self.topo
        timeout = max(self.config.cluster.call_timeout_s, 600)
        problems: list[str] = []
        snapshots = []
        for path in replay_snapshots:
            try:
                snapshots.append(load_state_dir(path))
            except (OSError, ValueError, KeyError) as error:
                snapshots.append(None)
                problems.append(f"replay snapshot {path} unreadable ({_describe(error)}); continuing without it")
        k = len(topo.shards)
        reports = ray.get(
            [
                s.import_states.remote([st for i, st in enumerate(snapshots) if i % k == j and st is not None])
                for j, s in enumerate(topo.shards)
            ],
            timeout=timeout,
        )
        problems += [f"shard {r.get('shard')}: {r['error']}" for r in reports if r.get("error")]
        ray.get(
            topo.learner.load_state_dict.remote({"learner": state.learner, "limiter": state.limiter}), timeout=timeout
        )
        pairs = [(a, s) for a, s in zip(topo.actors, state.actors, strict=False) if s is not None]
        incarnations = ray.get([a.load_state_dict.remote(s) for a, s in pairs], timeout=timeout)
        for (actor, _), incarnation in zip(pairs, incarnations, strict=True):
            index = topo.actors.index(actor)
            topo.incarnations[index] = max(topo.incarnations[index], int(incarnation))
        return sum(r.get("size", 0) for r in reports), problems

    def scale(self, num_actors: int) -> bool:
        """Add actors (new indices, fresh incarnations) or retire the highest indices: a retiring actor gets no new
        slice, flushes its in-flight pushes, then is killed. Every actor moves to its rung of the ladder for the
        new count (and the rate limiter's estimate of global inserts uses it)."""
        topo = self.topo
        if self._retiring:
            return False
        current = len(topo.actors)
        if num_actors == current:
            return True
        self._check_room(num_actors, num_actors - current)
        topo.actor_setup = dataclasses.replace(topo.actor_setup, num_actors=num_actors)
        for i in range(min(current, num_actors)):
            topo.actors[i].set_num_actors.remote(num_actors)  # runs after the slices already queued
        for i in range(current, num_actors):
            topo.incarnations[i] = topo.incarnations.get(i, -1) + 1
            topo.actors.append(make_actor(topo.actor_setup, self.config, i, topo.incarnations[i]))
            self._placed.discard(i)
            self._queue_slices(i)
        self._retiring.update(range(num_actors, current))
        self._progress.messages.append(f"[supervisor] scaling from {current} to {num_actors} actors")
        return True

    def _check_room(self, num_actors: int, added: int) -> None:
        """`ScaleRefused` when the cluster's free CPUs cannot place `added` more actors now. Not checked on an
        autoscaling cluster (`cluster.wait_for_resources_s` > 0), where nodes may join for them."""
        cc = self.config.cluster
        if added <= 0 or cc.wait_for_resources_s > 0:
            return
        needed = added * cc.actor_num_cpus
        free, total = ray.available_resources().get("CPU", 0.0), ray.cluster_resources().get("CPU", 0.0)
        if needed <= free + 1e-9:
            return
        if self.started_ray:
            hint = (
                f"this run's embedded Ray instance has the {total:g} CPUs it started with: stop the run and resume it "
                f"with `--resume RUN_DIR --actors {num_actors}` (it starts with room for them), or start runs with "
                "cluster.num_cpus set higher"
            )
        else:
            hint = (
                "add nodes, lower cluster.actor_num_cpus, or set cluster.wait_for_resources_s on an autoscaling cluster"
            )
        raise ScaleRefused(
            f"{num_actors} actors need {needed:g} more CPU{'s' if needed != 1 else ''} ({added} x cluster.actor_num_cpus={cc.actor_num_cpus:g}) "
            f"but the Ray cluster has {free:g} free (of {total:g}); {hint}"
        )

    def _retire(self, key: int) -> None:
        """Flush a retiring actor once its queued slices are done; kill it once its flush answered."""
        queue = self._slices[key]
        if key in self._flushing:
            self._flushing.discard(key)
            self._retiring.discard(key)
            self._slices.pop(key, None)
            self._actors.pop(key, None)
            try:
                ray.kill(self.topo.actors[key], no_restart=True)
            except REMOTE_FAILURES:
                pass
            if not self._retiring:
                del self.topo.actors[self.topo.actor_setup.num_actors :]
        elif not queue:
            queue.append(self.topo.actors[key].flush.remote())
            self._flushing.add(key)

    def stop(self) -> Progress:
        """Let the queued slices finish (no new ones), then flush every worker's pushes and priority updates."""
        self._stopping = True
        timeout = self.config.cluster.call_timeout_s
        for index in range(len(self.topo.actors)):
            if index not in self._placed:  # still waiting for a node: nothing of its own to flush
                self._slices.pop(index, None)
        deadline = time.monotonic() + timeout
        while any(self._slices.values()) and time.monotonic() < deadline:
            self._pump(deadline - time.monotonic())
        keys = [LEARNER, *(i for i in range(len(self.topo.actors)) if i in self._placed)]
        refs = {self._worker(key).flush.remote(): key for key in keys}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        for ref in ready:
            try:
                self._fold(refs[ref], ray.get(ref))
            except REMOTE_FAILURES:
                pass
        for seen in self._seen.values():  # still unanswered now (a dead or restarting actor's pushes): lost
            self._progress.lost += seen.get("in_flight", 0)
            seen["in_flight"] = 0
        return self._report()

    def close(self) -> None:
        """Kill every worker this run started and wait (up to CLOSE_WAIT_S) until they are gone, so that their
        resources are free for the next run in this process (a resumed session, a sweep's next trial); then stop
        the Ray instance when this process started it."""
        topo = self.topo
        handles = [*topo.actors, topo.learner, *topo.shards, topo.param_store]
        for handle in handles:
            try:
                ray.kill(handle, no_restart=True)
            except REMOTE_FAILURES:
                pass
        if not self.started_ray:
            gone = [handle.__ray_ready__.remote() for handle in handles]  # each ends in an error once it is dead
            ray.wait(gone, num_returns=len(gone), timeout=CLOSE_WAIT_S)
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False

    # ---- slices -----------------------------------------------------------------------------------------------
    def _worker(self, key: int | str):
        return self.topo.learner if key == LEARNER else self.topo.actors[key]

    def _queue_slices(self, key: int | str) -> None:
        self._answered.setdefault(key, time.monotonic())
        queue = self._slices.setdefault(key, deque())
        while len(queue) < QUEUED_SLICES:
            queue.append(self._worker(key).run.remote(WORK_SLICE_S))

    def _take(self, key: int | str, ref: Any) -> None:
        """One finished slice: fold its stats and queue the next; a dead worker is restarted (or ends the run)."""
        self._slices[key].popleft()
        try:
            stats = ray.get(ref)
        except NON_FINITE as e:  # the learner refuses to publish NaN weights: restarting would not help
            self._progress.failure = f"the learner's weights became non-finite ({_describe(e)})"
            return
        except (*REMOTE_FAILURES, RayTaskError) as e:  # died, hung, or a method raised (e.g. a task's bug)
            self._slices[key].clear()
            if key in self._retiring:  # it was leaving anyway
                self._flushing.add(key)
                self._retire(key)
            elif not self._stopping:
                self._failed(key, _describe(e))
            return
        self._answered[key] = time.monotonic()
        if key != LEARNER:
            self._placed.add(key)
        self._fold(key, stats)
        limit = self.config.learner.max_consecutive_skips
        if key == LEARNER and stats.get("consecutive_skips", 0) >= limit:
            self._progress.failure = (
                f"{stats['consecutive_skips']} consecutive updates with a non-finite loss or gradient"
            )
            return
        if key in self._retiring:
            self._retire(key)
        elif not self._stopping:
            self._queue_slices(key)

    # ---- failures ---------------------------------------------------------------------------------------------
    def _check_health(self) -> None:
        """Start the restarts that are due; a worker that has not answered for `cluster.call_timeout_s` (stopped,
        or stuck) is killed and treated as dead."""
        now = time.monotonic()
        for key, (due, problem) in list(self._due.items()):
            if due <= now:
                del self._due[key]
                if key == LEARNER:
                    self._restart_learner(problem)
                elif isinstance(key, str):  # "shard k"
                    self._restart_shard(int(key.split()[1]), problem)
                else:
                    self.restart_actor(key, problem)
        timeout, wait_s = self.config.cluster.call_timeout_s, self.config.cluster.wait_for_resources_s
        self._check_shards(now, timeout)
        for key, queue in list(self._slices.items()):
            # an actor that never answered may be waiting for a node (an autoscaling cluster adds one)
            patience = timeout if key == LEARNER or key in self._placed else max(timeout, wait_s)
            if not queue or key in self._retiring or now - self._answered.get(key, now) <= patience:
                continue
            if ray.wait([queue[0]], timeout=0)[0]:  # it did answer; the driver was busy (a checkpoint) meanwhile
                self._answered[key] = now
            else:
                try:
                    ray.kill(self._worker(key), no_restart=True)
                except REMOTE_FAILURES:
                    pass
                queue.clear()
                self._failed(key, f"no answer for {timeout:g} s (hung?)")

    def _check_shards(self, now: float, timeout: float) -> None:
        """One ping per shard every SHARD_PING_S (never waited for); an error or no answer within `timeout`
        means the shard is dead: it is restarted."""
        for k, shard in enumerate(self.topo.shards):
            key = f"shard {k}"
            if key in self._due:
                continue
            ping = self._shard_pings.get(k)
            if ping is None:
                self._shard_pings[k] = (shard.ping.remote(), now)
                continue
            ref, sent = ping
            ready, _ = ray.wait([ref], timeout=0)
            if ready:
                try:
                    ray.get(ref)
                except (*REMOTE_FAILURES, RayTaskError) as e:
                    del self._shard_pings[k]
                    self._failed(key, _describe(e))
                    continue
                if now - sent >= SHARD_PING_S:
                    self._shard_pings[k] = (shard.ping.remote(), now)
            elif now - sent > timeout:
                del self._shard_pings[k]
                try:
                    ray.kill(shard, no_restart=True)
                except REMOTE_FAILURES:
                    pass
                self._failed(key, f"no answer for {timeout:g} s (hung?)")

    def _restart_shard(self, k: int, problem: str) -> None:
        """A new incarnation of shard `k`, restored from its part of the latest checkpoint when there is one (else
        empty: the run says so); the learner and the actors are told its new handle."""
        topo, c = self.topo, self.config
        try:
            ray.kill(topo.shards[k], no_restart=True)
        except REMOTE_FAILURES:
            pass
        self._shard_incarnations[k] += 1
        self.restarts["shard"] += 1
        shard = make_shard(topo.learner_setup.shape, c, k, self._shard_incarnations[k])
        states, source = latest_shard_states(c, k, len(topo.shards))
        try:
            report = ray.get(shard.import_states.remote(states), timeout=max(c.cluster.call_timeout_s, 600))
        except (*REMOTE_FAILURES, RayTaskError) as e:
            self._failed(f"shard {k}", _describe(e))
            return
        topo.shards[k] = shard
        topo.learner.replace_shard.remote(k, shard)
        for actor in topo.actors:
            actor.replace_shard.remote(k, shard)
        restored = f"{report.get('size', 0)} transitions from {source}" if states else "empty (no replay checkpoint)"
        self._progress.messages.append(
            f"[supervisor] shard {k} restarted ({problem}) as incarnation {self._shard_incarnations[k]}: {restored}"
        )

    def _failed(self, key: int | str, problem: str) -> None:
        """Schedule the restart of a dead worker after its back-off, or end the run past its restart cap."""
        name = "the learner" if key == LEARNER else key if isinstance(key, str) else f"actor {key}"
        delay = self.policy.delay(key)
        if delay is None:
            cc = self.config.cluster
            self._progress.failure = (
                f"{name} failed {cc.max_restarts + 1} times within {cc.restart_window_s:g} s; last error: {problem}"
            )
            return
        self._answered.pop(key, None)
        self._due[key] = (time.monotonic() + delay, problem)
        self._progress.messages.append(f"[supervisor] {name} failed ({problem}); restarting in {delay:.1f} s")

    def restart_actor(self, index: int, problem: str) -> None:
        """Replace actor `index` with a new incarnation (new seed stream, same epsilon, fresh sequence numbers)."""
        topo = self.topo
        try:
            ray.kill(topo.actors[index], no_restart=True)
        except REMOTE_FAILURES:
            pass
        dead = self._seen.get((index, topo.incarnations[index]))
        if dead and dead.get("in_flight"):
            self._progress.lost += dead["in_flight"]  # pushes the dead incarnation never saw answered
            dead["in_flight"] = 0
        topo.incarnations[index] += 1
        self.restarts["actor"] += 1
        self._progress.messages.append(f"[supervisor] actor {index}: starting incarnation {topo.incarnations[index]}")
        topo.actors[index] = make_actor(topo.actor_setup, self.config, index, topo.incarnations[index])
        self._placed.discard(index)
        self._actors.pop(index, None)
        self._slices[index] = deque()
        self._queue_slices(index)

    def _restart_learner(self, problem: str) -> None:
        """A new learner from the latest checkpoint (optimizer, counters, limiter), with the last published weights
        when they are newer; the message says what was lost."""
        topo = self.topo
        try:
            ray.kill(topo.learner, no_restart=True)
        except REMOTE_FAILURES:
            pass
        self.restarts["learner"] += 1
        topo.learner = make_learner(topo.learner_setup, self.config, topo.learner_gpus)
        state, source = latest_learner_state(self.config)
        version, weights = -1, None
        try:
            version, ref, _ = ray.get(topo.param_store.latest.remote(-1), timeout=self.config.cluster.call_timeout_s)
            weights = ray.get(ref[0], timeout=self.config.cluster.call_timeout_s) if ref else None
        except REMOTE_FAILURES:
            pass
        try:
            restored = ray.get(
                topo.learner.recover.remote(state, weights, version),
                timeout=max(self.config.cluster.call_timeout_s, 120),
            )
        except REMOTE_FAILURES as e:
            self._failed(LEARNER, _describe(e))
            return
        before = self._learner_stats.get("updates", 0)
        self._progress.messages.append(
            f"[supervisor] learner restarted ({problem}) from {source}"
            + (f" and the published weights v{version}" if restored["used_weights"] else "")
            + f": updates {before} -> {restored['updates']} ({max(before - restored['updates'], 0)} lost)"
        )
        self._slices[LEARNER] = deque()
        self._queue_slices(LEARNER)

    def _fold(self, key: int | str, s: dict[str, Any]) -> None:
        """Fold one worker's stats (totals, and its window since its previous stats) into the pending Progress."""
        if key == LEARNER:
            self._learner_stats = s
            for k in self.learner_timing:
                self.learner_timing[k] += s["window"][k]
            return
        p = self._progress
        seen = self._seen.setdefault((key, s["incarnation"]), dict.fromkeys(ACCOUNTED, 0))
        for name, field in ACCOUNTED.items():
            setattr(p, field, getattr(p, field) + s[name] - seen[name])
            seen[name] = s[name]
        seen["in_flight"] = s["in_flight"]
        self._actors[key] = s
        w = s["window"]
        if w["episodes"]:
            p.episodes.append(EpisodeRecord(w["episodes"], w["success_sum"], w["return_sum"], s["epsilon"]))
        for k in self.timing:
            self.timing[k] += w[k]

    def _report(self) -> Progress:
        """The pending Progress with the learner's totals, the actors' view and the metrics; a fresh one begins."""
        p, self._progress = self._progress, Progress()
        ls = self._learner_stats
        if ls:
            p.updates, p.sampled, p.version = ls["updates"], ls["sampled_here"], ls["version"]
        p.actors = {i: ActorView(s["epsilon"], s["version"], s.get("node")) for i, s in self._actors.items()}
        p.shard_sizes = list(ls.get("replay", {}).get("sizes", [])) if ls else []
        p.metrics = self._metrics()
        return p

    def _metrics(self) -> dict[str, Any]:
        actors = self._actors.values()
        m: dict[str, Any] = {
            **{f"{kind}.restarts": n for kind, n in self.restarts.items()},
            "actor.pushes": sum(s["pushes"] for s in actors),
            "actor.push_failures": sum(s["push_failures"] for s in actors),
            "actor.in_flight": sum(s["in_flight"] for s in actors),
            "actor.shards_alive_min": min((s["shards_alive"] for s in actors), default=None),
        }
        ls = self._learner_stats
        if ls:
            m.update({f"learner.{k}": v for k, v in ls.get("metrics", {}).items()})
            m["replay.size"] = ls.get("replay", {}).get("size")
            m["learner.target_syncs"] = ls.get("target_syncs")
        t = self.timing
        if t["t_total"]:
            m["actor.overhead_frac"] = (t["t_encode"] + t["t_push"] + t["t_wait"] + t["t_pull"]) / t["t_total"]
            m["actor.throttle_frac"] = t["t_throttle"] / t["t_total"]
        lt = self.learner_timing
        busy = lt["t_update"] + lt["t_wait"] + lt["t_publish"]
        if busy and lt["updates"]:
            # the learner's time split: updating (sample decode included), waiting for batches, publishing weights
            m["learner.update_frac"] = lt["t_update"] / busy
            m["learner.wait_frac"] = lt["t_wait"] / busy
            m["learner.update_ms"] = 1000.0 * lt["t_update"] / lt["updates"]
        return m
