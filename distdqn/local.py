"""The local runner: N actors, one in-process prioritized replay and the learner in one process, by direct calls.

It is the debugging mode (`distdqn train --local`) and the reference the distributed runtime is tested against: for
a seed it is deterministic (actors are stepped round-robin, the learner trains whenever the rate limiter allows).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distdqn import checkpoint as ck
from distdqn import spec
from distdqn.actor import Actor
from distdqn.config import Config
from distdqn.envs.registry import make_env
from distdqn.evaluation import evaluate
from distdqn.learner import Learner
from distdqn.networks import numeric_token_values
from distdqn.replay.prioritized import PrioritizedReplay, load_state_dir, save_state_dir
from distdqn.replay.rate_limiter import RateLimiter
from distdqn.run import Counters, RunTracker
from distdqn.schedules import beta_at


@dataclasses.dataclass(frozen=True)
class TaskShape:
    """What the networks and the replay need to know of the configured task, read off one throwaway env."""

    vocab_size: int
    max_len: int
    with_mask: bool  # the task has action masks (stored with each transition)
    token_values: np.ndarray  # [V] integer value of each token, NaN for the others (network.numeric_embedding)


def task_shape(config: Config) -> TaskShape:
    env = make_env(
        config.env.task, num_envs=1, seed=0, split="train", difficulty=config.env.difficulty, **config.env.options
    )
    return TaskShape(env.vocab_size, env.max_len, env.has_action_mask, numeric_token_values(env.vocab.tokens))


class LocalRunner:
    """Owns every component in this process; `train()` runs until a budget or the target stops it."""

    def __init__(self, config: Config, directory: Path, counters: Counters | None = None, quiet: bool = False):
        self._setup_began = time.monotonic()
        torch.manual_seed(config.run.seed)
        self.config = config
        shape = task_shape(config)
        self.vocab_size, self.max_len, self.with_mask = shape.vocab_size, shape.max_len, shape.with_mask
        n = config.actor.num_actors
        self.actors = [
            Actor(
                config.env, config.network, config.actor, actor_index=i, num_actors=n, seed=config.run.seed * 1000 + i
            )
            for i in range(n)
        ]
        fields = spec.transition_dtypes(self.vocab_size, self.max_len, self.with_mask)
        rc = config.replay
        self.replay = PrioritizedReplay(
            rc.capacity, fields, alpha=rc.alpha, priority_eps=rc.priority_eps, seed=config.run.seed
        )
        self.limiter = RateLimiter.from_config(rc)
        self.learner = Learner(
            config.network,
            config.learner,
            self.vocab_size,
            self.max_len,
            seed=config.run.seed,
            token_values=shape.token_values,
        )
        self.tracker = RunTracker(config, directory, counters, quiet=quiet)
        self._last_loss: dict[str, float] = {}
        self._episode_window: list[tuple[float, float]] = []
        self.publish()

    # ---- the loop ---------------------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        c = self.tracker.counters
        reason = None
        self.tracker.start_clock(self._setup_began)
        try:
            while (reason := self.tracker.stop_reason()) is None:
                progressed = self._act()
                progressed |= self._learn()
                if not progressed:  # neither side may move: insert anyway so the run can never stall
                    self._act(force=True)
                if self.tracker.eval_due():
                    self.evaluate()
                if self.tracker.log_due():
                    self.tracker.log(self._extras())
                if self.tracker.checkpoint_due():
                    self.save_checkpoint()
        except KeyboardInterrupt:
            reason = "interrupted"
        if c.last_success is None or not (reason or "").startswith("target reached"):
            self.evaluate()  # the final held-out success of the weights the run ends with
        return self.tracker.summary(reason)

    def _act(self, force: bool = False) -> bool:
        cfg, c = self.config, self.tracker.counters
        progressed = False
        expected = cfg.env.envs_per_actor * cfg.actor.push_interval_steps
        for actor in self.actors:
            if not force and not self.limiter.can_insert(expected):
                break
            out = actor.collect(cfg.actor.push_interval_steps)
            n = len(out.priorities)
            if n:
                self.replay.add(out.transitions, out.priorities)
                self.limiter.on_insert(n)
            c.inserted += n
            c.env_steps += out.env_steps
            c.episodes += out.episodes.count
            if out.episodes.count:
                self._episode_window.append((out.episodes.mean_success, out.episodes.count))
                self._episode_window = self._episode_window[-50:]
            progressed = True
            force = False
        return progressed

    def _learn(self) -> bool:
        cfg, c = self.config, self.tracker.counters
        bs = cfg.learner.batch_size
        progressed = False
        while self.limiter.can_sample(bs, len(self.replay)) and self.tracker.stop_reason() is None:
            batch = self.replay.sample(bs, beta_at(cfg.replay, c.updates))
            td_abs, metrics = self.learner.update(batch)
            self.replay.update_priorities(batch[spec.SLOT], batch[spec.GENERATION], td_abs)
            self.limiter.on_sample(bs)
            c.sampled += bs
            c.updates += 1
            self._last_loss = metrics
            progressed = True
            if c.updates % cfg.learner.publish_interval_updates == 0:
                self.publish()
        return progressed

    def publish(self) -> None:
        version, weights = self.learner.snapshot()
        for actor in self.actors:
            actor.load_weights(version, weights)
        self.tracker.counters.version = version

    def evaluate(self) -> float:
        cfg = self.config
        result = evaluate(
            cfg.network,
            self.learner.weights(),
            cfg.env,
            episodes=cfg.run.eval_episodes,
            seed=cfg.run.seed + 12345,
            split="test",
        )
        self.tracker.record_eval(result.success, result.mean_return, result.examples)
        return result.success

    def show_examples(self, n: int) -> None:
        cfg = self.config
        result = evaluate(
            cfg.network, self.learner.weights(), cfg.env, episodes=n, seed=cfg.run.seed + 999, split="test", examples=n
        )
        print("held-out generations (greedy):")
        for prompt, text, ok in result.examples:
            print(f"  {'+' if ok >= 1 else '-'} {prompt} -> {text}")

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def save_checkpoint(self, final: bool = False) -> Path:
        c = self.tracker.counters
        c.wall_s = self.tracker.wall_s()
        write_replay = None
        if self.config.checkpoint.include_replay:

            def write_replay(directory: Path) -> int:
                save_state_dir(directory / "shard_0", *self.replay.state_dict())
                return 1

        path = ck.save_run(
            self.tracker.dir,
            self.config,
            c,
            self.learner.state_dict(),
            [a.state_dict() for a in self.actors],
            self.limiter.state_dict(),
            write_replay,
        )
        self.tracker.checkpoint_done(path)
        return path

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint: learner, actors (by index; extra actors start fresh), limiter, replay."""
        checkpoint = ck.find_checkpoint(path)
        state = ck.read_state(checkpoint)
        self.learner.load_state_dict(ck.load_learner_state(checkpoint, map_location=str(self.learner.device)))
        for actor, actor_state in zip(self.actors, state["actors"], strict=False):
            actor.load_state_dict(actor_state)
        self.limiter.load_state_dict(state["limiter"])
        for snapshot in ck.replay_snapshot_dirs(checkpoint):
            restore_replay(self.replay, snapshot, self.tracker.message)
        self.publish()
        self.tracker.message(
            f"[resume] {checkpoint}: env_steps={self.tracker.counters.env_steps} "
            f"updates={self.learner.updates} replay={len(self.replay)}"
        )

    def _extras(self) -> dict[str, Any]:
        count = sum(n for _, n in self._episode_window)
        success = sum(s * n for s, n in self._episode_window) / count if count else None
        extras: dict[str, Any] = {
            "train.success": success,
            "replay.size": len(self.replay),
            "actor.epsilon_min": min(a.epsilon for a in self.actors),
            "version_lag": 0,
        }
        extras.update({f"learner.{k}": float(v) for k, v in self._last_loss.items() if np.isscalar(v)})
        return extras

    def close(self) -> None:
        self.tracker.close()


def restore_replay(replay: PrioritizedReplay, snapshot: Path, say) -> int:
    """Load one shard snapshot into `replay`: exactly when the layout matches and `replay` is empty, else by
    re-inserting its items with their priorities (a different shard count). An unreadable snapshot is reported
    and skipped: the run continues with what it has."""
    try:
        arrays, meta = load_state_dir(snapshot)
    except (OSError, ValueError) as e:
        say(f"[resume] replay snapshot {snapshot} unreadable ({e}); continuing without it")
        return 0
    if len(replay) == 0:
        try:
            replay.load_state_dict(arrays, meta)
            return len(replay)
        except ValueError:
            pass  # a different capacity: re-insert below
    replay.add_prioritized(
        {k.removeprefix("field."): v for k, v in arrays.items() if k.startswith("field.")}, arrays["priorities"]
    )
    return len(arrays["priorities"])
