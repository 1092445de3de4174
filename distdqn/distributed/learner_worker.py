"""The Ray shell around the core `Learner`: prefetched sampling across the replay shards, updates, fire-and-forget
priority updates, the samples-per-insert limit, and versioned weight publication through the object store.

Like the actors (see actor_worker), it trains in time slices, `run(seconds)`, which the driver keeps queued: one
thread, and `state_dict()` for a checkpoint runs between two updates."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from distdqn.config import LearnerConfig, NetworkConfig, ReplayConfig
from distdqn.demonstrations import DemoSource, demo_pretrain_batch
from distdqn.distributed.actor_worker import REMOTE_FAILURES
from distdqn.distributed.replay_client import ShardedReplayClient
from distdqn.envs import TaskShape
from distdqn.learner import Learner, metrics_to_floats
from distdqn.replay.rate_limiter import RateLimiter
from distdqn.schedules import beta_at

LEARNER_TIMING_KEYS = ("updates", "t_update", "t_wait", "t_publish")  # the stats() window the driver sums


@dataclass(frozen=True)
class LearnerSetup:
    """The learner's config sections, the task's shape and the peers it talks to."""

    network: NetworkConfig
    learner: LearnerConfig
    replay: ReplayConfig
    shape: TaskShape
    shards: list  # replay shard handles
    param_store: Any
    call_timeout_s: float = 60.0
    demos: DemoSource | None = None  # the oracle demonstrations it trains on too (learner.demo_*), if any
    max_updates: int = 0  # the run's update budget (run.max_updates, 0: none): no update past it


class LearnerWorker:
    """Hosts the Learner. `run(seconds)` trains for one slice and returns `stats()` (counters, the latest loss
    metrics, the time split since the last stats); `flush()` sends the priority updates still buffered."""

    def __init__(self, setup: LearnerSetup, seed: int):
        shape = setup.shape
        self.learner = Learner(
            setup.network, setup.learner, shape.vocab_size, shape.max_len, seed=seed, token_values=shape.token_values
        )
        self.config = setup.learner
        self.replay_config = setup.replay
        self.limiter = RateLimiter.from_config(setup.replay)
        self._sampled_mark = 0  # the limiter's count when this learner began sampling (it restarts on a restore)
        self.client = ShardedReplayClient(
            setup.shards, rate_limiter=self.limiter, seed=seed, call_timeout_s=setup.call_timeout_s
        )
        self.param_store = setup.param_store
        self.max_updates = setup.max_updates
        self.call_timeout_s = setup.call_timeout_s
        self._started = False
        self._metrics: dict[str, Any] = {}
        self._window = dict.fromkeys(LEARNER_TIMING_KEYS, 0.0)
        self._publish_ref: list = []
        self.demos = None if setup.demos is None else setup.demos.build()

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, seconds: float) -> dict[str, Any]:
        """Train for about `seconds`: keep `prefetch` batches requested ahead, `batches_per_request` per round of shard
        calls (the client's rate limiter decides whether one may be sent), update on each batch as it arrives, route
        new priorities back without waiting; idle once `max_updates` updates are made (so a run stops on its update
        budget exactly, as the local runtime does, not a slice or two past it)."""
        cfg = self.config
        deadline = time.monotonic() + seconds
        if not self._started:
            self.publish()
            self._started = True
        last_report = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - last_report > 0.1:  # actors throttle on these counts: report while idle too
                self._report()
                last_report = time.monotonic()
            if self.max_updates and self.learner.updates >= self.max_updates:
                time.sleep(0.01)  # the update budget is spent: the driver ends the run on its next look
                continue
            t0 = time.perf_counter()
            # shard sizes and insert counts arrive with every sample answer; poll them while starved, and while
            # pre-training on demonstrations (actors insert freely until the reported replay size is the minimum)
            self.client.refresh_if_stale(max_age_s=1.0 if self.client.in_flight else 0.05)
            if self.demos is not None and self.learner.updates < cfg.demo_pretrain_updates:
                self._pretrain_step(t0)
                continue
            while self.client.in_flight < cfg.prefetch:
                beta = beta_at(self.replay_config, self.learner.updates)
                if not self.client.request(cfg.batch_size, beta, batches=cfg.batches_per_request):
                    break
            batch = self.client.next_ready(timeout=0.05) if self.client.in_flight else None
            t1 = time.perf_counter()
            if batch is None:
                if not self.client.in_flight:
                    time.sleep(0.01)  # waiting for inserts (min size or the samples-per-insert band)
                self._window["t_wait"] += time.perf_counter() - t0
                continue
            before = self.learner.updates
            demo = self.demos.next(cfg.demo_batch_size) if self.demos is not None and cfg.demo_batch_size else None
            td_abs, metrics = self.learner.update(batch, demo)
            self.client.update_priorities(batch, td_abs)
            t2 = time.perf_counter()
            self._metrics = metrics  # read in stats(), once per slice: on a GPU each read is a host sync
            self._window["t_wait"] += t1 - t0
            self._after_update(before, t1, t2)
        self._report()
        return self.stats()

    def _pretrain_step(self, t0: float) -> None:
        """One update on demonstrations alone (`learner.demo_pretrain_updates`: no replay sampling meanwhile)."""
        before = self.learner.updates
        self._metrics = self.learner.demo_update(self.demos.next(demo_pretrain_batch(self.config)))
        self._after_update(before, t0, time.perf_counter())

    def _after_update(self, before: int, t_start: float, t_end: float) -> None:
        """Count the update's time; publish on the interval."""
        self._window["updates"] += 1
        self._window["t_update"] += t_end - t_start
        if self.learner.updates != before and self.learner.updates % self.config.publish_interval_updates == 0:
            self.publish()  # (a skipped non-finite update does not move `updates`: nothing new to publish)
            self._window["t_publish"] += time.perf_counter() - t_end

    def flush(self) -> dict[str, Any]:
        """Send the buffered priority updates (the end of a run); the stats."""
        self.client.flush()
        return self.stats()

    def publish(self) -> int:
        """One `ray.put` of the numpy weights per publication; the store keeps only the newest reference."""
        version, weights = self.learner.snapshot()
        ref = ray.put(weights)
        self._publish_ref = [ref]  # keep ours alive until the next publication
        try:
            ray.get(self.param_store.publish.remote(version, [ref], self._counters()), timeout=self.call_timeout_s)
        except REMOTE_FAILURES:
            pass  # the driver notices a dead parameter store through its health checks
        return version

    def _report(self) -> None:
        self.param_store.report.remote(self._counters())  # fire-and-forget

    def _counters(self) -> dict[str, Any]:
        return {
            "updates": self.learner.updates,
            "sampled": self.limiter.sampled,  # for the rate limit: counts against the replay as restored
            "sampled_here": self.limiter.sampled - self._sampled_mark,  # sampled by this learner, for the run count
            "version": self.learner.version,
            "target_syncs": self.learner.target_version,
            "replay_size": int(self.client.sizes.sum()),  # actors insert freely below replay.min_size_to_sample
            "consecutive_skips": self.learner.consecutive_skips,
            "skipped_updates": self.learner.skipped_updates,
        }

    # ---- control ----------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        window, self._window = self._window, dict.fromkeys(LEARNER_TIMING_KEYS, 0.0)
        metrics = metrics_to_floats(self._metrics)
        return {**self._counters(), "metrics": metrics, "window": window, "replay": self.client.stats()}

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "limiter": self.limiter.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the learner, after the shards restored theirs. The limiter restarts inside its band for the
        replay as restored (an empty replay after a resume without snapshots must not leave the learner owing
        samples to inserts that are gone)."""
        self.learner.load_state_dict(state["learner"])
        self.limiter.load_state_dict(state["limiter"])
        self.client.refresh()
        self.limiter.inserted = int(self.client.inserted.sum())
        self.limiter.sampled = self._sampled_mark = int(self.limiter.expected_samples())

    def replace_shard(self, k: int, handle: Any) -> None:
        """Sample from `handle` as shard `k` from now on (the runtime restarted it)."""
        self.client.replace_shard(k, handle)

    def recover(
        self, state: dict[str, Any] | None, weights: dict[str, np.ndarray] | None, published_version: int
    ) -> dict[str, Any]:
        """Continue after the previous learner died: its latest checkpoint `state` (optimizer, counters, limiter;
        None: start fresh), then the last published `weights` when they are newer than the checkpoint (online and
        target networks). The weights version continues above the published one, so actors take the next
        publication."""
        if state is not None:
            self.load_state_dict(state)
        used_weights = weights is not None and published_version > self.learner.version
        if used_weights:
            self.learner.load_weights(weights)
        self.learner.version = max(self.learner.version, published_version)
        return {"updates": self.learner.updates, "used_weights": used_weights}

    def pid(self) -> int:
        """This worker's process id (for operators and fault-injection tests)."""
        return os.getpid()

    def ping(self) -> bool:
        return True
