"""The local runtime: N actors, one in-process prioritized replay and the learner in one process, by direct calls.

It is the debugging mode (`distdqn train --local`) and the reference the Ray runtime is tested against: for a seed
it is deterministic (actors are stepped round-robin, the learner trains whenever the rate limiter allows). The
supervisor (`distdqn.supervisor`) drives it through the `Runtime` protocol, as it drives the Ray runtime.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from distdqn import spec
from distdqn.actor import Actor
from distdqn.config import Config
from distdqn.demonstrations import demo_pretrain_batch, demo_source
from distdqn.envs import task_shape
from distdqn.learner import Learner, metrics_to_floats
from distdqn.replay import PrioritizedReplay, restore_snapshots
from distdqn.replay.prioritized import save_state_dir
from distdqn.replay.rate_limiter import RateLimiter
from distdqn.runtime import ActorView, EpisodeRecord, Progress, RuntimeState, actor_seed
from distdqn.schedules import beta_at


class LocalRuntime:
    """Every component in this process; `advance` alternates acting and learning (see the module docstring)."""

    def __init__(self, config: Config):
        torch.manual_seed(config.run.seed)
        self.config = config
        shape = task_shape(config.env)
        n = config.actor.num_actors
        self.actors = [
            Actor(
                config.env,
                config.network,
                config.actor,
                actor_index=i,
                num_actors=n,
                seed=actor_seed(config.run.seed, i),
            )
            for i in range(n)
        ]
        rc = config.replay
        self.replay = PrioritizedReplay(
            rc.capacity, shape.transition_dtypes(), alpha=rc.alpha, priority_eps=rc.priority_eps, seed=config.run.seed
        )
        self.limiter = RateLimiter.from_config(rc)
        self._sampled_mark = 0  # the limiter's count at a restore (Progress.sampled counts from there)
        self.learner = Learner(
            config.network,
            config.learner,
            shape.vocab_size,
            shape.max_len,
            seed=config.run.seed,
            token_values=shape.token_values,
        )
        source = demo_source(config)
        self.demos = None if source is None else source.build()  # the learner's oracle demonstrations, if any
        self._metrics: dict = {}
        self._failure: str | None = None

    # ---- the Runtime protocol ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.publish()

    def advance(self, seconds: float, updates_left: int | None = None) -> Progress:
        """Rounds of acting (as far as the rate limiter lets actors insert) and learning (as far as it lets the
        learner sample) for about `seconds`; stops early once `updates_left` updates were made."""
        deadline = time.monotonic() + seconds
        stop_at = None if updates_left is None else self.learner.updates + max(updates_left, 0)
        progress = Progress()
        while True:
            progressed = self._act(progress)
            progressed |= self._learn(stop_at)
            if self._failure:
                progress.failure = self._failure
                break
            if not progressed:  # neither side may move: insert anyway so the run can never stall
                self._act(progress, force=True)
            if time.monotonic() >= deadline or (stop_at is not None and self.learner.updates >= stop_at):
                break
        return self._totals(progress)

    def latest_weights(self) -> dict[str, np.ndarray]:
        return self.learner.weights()

    def state_dict(self) -> RuntimeState:
        return RuntimeState(self.learner.state_dict(), self.limiter.state_dict(), [a.state_dict() for a in self.actors])

    def write_replay(self, directory: Path) -> int:
        save_state_dir(directory / "shard_0", *self.replay.state_dict())
        return 1

    def load_state_dict(self, state: RuntimeState, replay_snapshots: list[Path]) -> tuple[int, list[str]]:
        """Learner, actors by index (extra actors start fresh), limiter, then every replay snapshot."""
        self.learner.load_state_dict(state.learner)
        for actor, actor_state in zip(self.actors, state.actors, strict=False):
            if actor_state is not None:
                actor.load_state_dict(actor_state)
        self.limiter.load_state_dict(state.limiter)
        self._sampled_mark = self.limiter.sampled
        report = restore_snapshots(self.replay, replay_snapshots)
        self.publish()
        return report.size, report.errors

    def scale(self, num_actors: int) -> bool:
        cfg = self.config
        while len(self.actors) > num_actors:
            self.actors.pop()  # nothing in flight: its transitions are in the replay already
        for i in range(len(self.actors), num_actors):
            actor = Actor(
                cfg.env, cfg.network, cfg.actor, actor_index=i, num_actors=num_actors, seed=actor_seed(cfg.run.seed, i)
            )
            actor.load_weights(self.learner.version, self.learner.weights())
            self.actors.append(actor)
        for actor in self.actors:
            actor.set_num_actors(num_actors)
        return True

    def stop(self) -> Progress:
        return self._totals(Progress())  # nothing is in flight in one process

    def close(self) -> None:
        pass

    # ---- acting and learning ----------------------------------------------------------------------------------
    def _act(self, progress: Progress, force: bool = False) -> bool:
        cfg = self.config
        progressed = False
        expected = cfg.env.envs_per_actor * cfg.actor.push_interval_steps
        for actor in self.actors:
            if not force and not self.limiter.can_insert(expected):
                break
            out = actor.collect(cfg.actor.push_interval_steps)
            n = len(out.priorities)
            progress.generated += n
            if n:
                self.replay.add(out.transitions, out.priorities)
                self.limiter.on_insert(n)
            progress.inserted += n
            progress.env_steps += out.env_steps
            e = out.episodes
            if e.count:
                progress.episodes.append(
                    EpisodeRecord(e.count, e.mean_success * e.count, e.mean_return * e.count, actor.epsilon)
                )
            progressed = True
            force = False
        return progressed

    def _learn(self, stop_at: int | None) -> bool:
        lc = self.config.learner
        bs = lc.batch_size
        if self.demos is not None and self.learner.updates < lc.demo_pretrain_updates:
            return self._pretrain(stop_at)
        progressed = False
        while self.limiter.can_sample(bs, len(self.replay)) and (stop_at is None or self.learner.updates < stop_at):
            batch = self.replay.sample(bs, beta_at(self.config.replay, self.learner.updates))
            demo = self.demos.next(lc.demo_batch_size) if self.demos is not None and lc.demo_batch_size else None
            before = self.learner.updates
            td_abs, self._metrics = self.learner.update(batch, demo)
            self.replay.update_priorities(batch[spec.SLOT], batch[spec.GENERATION], td_abs)
            self.limiter.on_sample(bs)
            progressed = True
            if not self._after_update(before):
                break
        return progressed

    def _pretrain(self, stop_at: int | None) -> bool:
        """Up to one publication interval of updates on demonstrations alone (`learner.demo_pretrain_updates`), so
        acting and the run's clock checks interleave with a long pre-training phase."""
        lc = self.config.learner
        end = min(lc.demo_pretrain_updates, self.learner.updates + lc.publish_interval_updates)
        if stop_at is not None:
            end = min(end, stop_at)
        while self.learner.updates < end:
            before = self.learner.updates
            self._metrics = self.learner.demo_update(self.demos.next(demo_pretrain_batch(lc)))
            if not self._after_update(before):
                break
        return True

    def _after_update(self, before: int) -> bool:
        """Publish on the interval; False (and `_failure` set) after too many non-finite updates in a row."""
        lc = self.config.learner
        if self.learner.consecutive_skips >= lc.max_consecutive_skips:
            self._failure = f"{self.learner.consecutive_skips} consecutive updates with a non-finite loss or gradient"
            return False
        if self.learner.updates != before and self.learner.updates % lc.publish_interval_updates == 0:
            self.publish()  # (a skipped non-finite update does not move `updates`: nothing new to publish)
        return True

    def publish(self) -> None:
        version, weights = self.learner.snapshot()
        for actor in self.actors:
            actor.load_weights(version, weights)

    def _totals(self, progress: Progress) -> Progress:
        """Fill in the learner's totals, the actors' view and the metrics (read here, not at every update: on a
        GPU each read of a metric is a host sync)."""
        progress.updates = self.learner.updates
        progress.sampled = self.limiter.sampled - self._sampled_mark
        progress.version = self.learner.version
        progress.actors = {i: ActorView(a.epsilon, a.weights_version) for i, a in enumerate(self.actors)}
        progress.shard_sizes = [len(self.replay)]
        progress.metrics = {
            "replay.size": len(self.replay),
            "learner.target_syncs": self.learner.target_version,
            **{f"learner.{k}": v for k, v in metrics_to_floats(self._metrics).items()},
        }
        return progress
