"""Demonstrations for the learner (DQfD, Hester et al. 2018): the task's oracle playing the training split.

A task that can name the right next token (`TextEnv.oracle_actions`: copy, arithmetic, shortest path, ...) can
show the learner what good play looks like instead of waiting for exploration to stumble on it. `DemoStream` plays
that oracle in its own batch of training-split envs and assembles the steps into n-step transitions exactly as an
actor does (`NStepAssembler`, the run's `actor.n_step` and `actor.gamma`), so a demonstration batch has the
replay's layout and the learner's TD loss applies to it unchanged. The learner adds DQfD's large-margin loss on it
(`losses.large_margin_loss`: the oracle's token must lead every other token by `learner.demo_margin`):

    updates 1 .. demo_pretrain_updates        demo_td_weight * TD(demo batch) + demo_margin_weight * margin(demo batch)
    every later update                        TD(replay batch) + the same on demo_batch_size demonstrations (if > 0)

Differences from the paper, on purpose: the oracle is an unlimited source, so demonstrations are played fresh
rather than kept in the replay with a priority bonus; the margin's max over actions is soft by default
(`learner.demo_temperature`); and for a task with action masks each transition also carries the mask of its s
(`spec.MASK_S`), so the margin compares the oracle's token with the legal tokens only (`learner.demo_legal_only`).
README "Deviations" has the measurements. The held-out split is never played, so held-out success still measures
generalisation. Only the learner sees demonstrations: actors explore as before, and the episodes, env steps and
success they report are their own. `demo_source` returns None when demonstrations are off and raises `ConfigError`
for a task without an oracle. The stream is not part of a checkpoint: a resumed run keeps its update count (so
pre-training is not repeated) and plays its demonstrations afresh from the seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from distdqn import spec
from distdqn.config import Config, EnvConfig
from distdqn.envs import make_env_from_config
from distdqn.nstep import NStepAssembler
from distdqn.typed import ConfigError

DEMO_ENVS = 64  # oracle episodes played side by side: one env step yields up to this many transitions
DEMO_POOL = 1024  # `next` draws from at least this many fresh transitions, so a batch mixes answer positions
DEMO_SEED_KEY = 0xDE30  # the demonstrations' envs draw prompts from SeedSequence([run.seed, this])


@dataclasses.dataclass(frozen=True)
class DemoSource:
    """What a learner needs to build its `DemoStream` (plain config values: it crosses to a Ray worker)."""

    env: EnvConfig
    n_step: int
    gamma: float
    bootstrap_on_truncation: bool
    seed: int

    def build(self) -> DemoStream:
        return DemoStream(self)


def demo_source(config: Config) -> DemoSource | None:
    """The run's demonstration source, None when `learner.demo_pretrain_updates` and `learner.demo_batch_size` are
    both 0. Asks the task for one oracle move here, so a task without an oracle fails before any worker starts."""
    if not (config.learner.demo_pretrain_updates or config.learner.demo_batch_size):
        return None
    seed = int(np.random.SeedSequence([config.run.seed, DEMO_SEED_KEY]).generate_state(1)[0])
    source = DemoSource(config.env, config.actor.n_step, config.actor.gamma, config.actor.bootstrap_on_truncation, seed)
    env = make_env_from_config(config.env, num_envs=1, seed=seed)
    env.reset()
    try:
        env.oracle_actions()
    except NotImplementedError:
        raise ConfigError(
            [
                f"learner.demo_pretrain_updates / learner.demo_batch_size need demonstrations, and task "
                f"{config.env.task!r} has no oracle (TextEnv.oracle_actions); set both to 0"
            ]
        ) from None
    return source


class DemoStream:
    """Oracle play on the training split, as n-step transitions in the `spec` layout; `next(n)` returns n of them."""

    def __init__(self, source: DemoSource):
        self.source = source
        self.env = make_env_from_config(source.env, num_envs=DEMO_ENVS, seed=source.seed, split="train")
        self.assembler = NStepAssembler(
            self.env.num_envs,
            source.n_step,
            source.gamma,
            self.env.vocab_size,
            self.env.max_len,
            with_mask=self.env.has_action_mask,
            with_mask_s=self.env.has_action_mask,
        )
        self.obs = self.env.reset()
        self.rng = np.random.default_rng(source.seed)
        self.env_steps = 0  # oracle steps played so far
        self._zeros = np.zeros(self.env.num_envs, np.float32)
        self._buffer: dict[str, np.ndarray] | None = None

    def next(self, n: int) -> dict[str, np.ndarray]:
        """`n` demonstration transitions drawn at random from a pool of at least `DEMO_POOL` fresh ones (each used
        once): the slots step in lockstep, so consecutive transitions share an answer position."""
        while self._buffer is None or len(self._buffer[spec.ACTION]) < max(n, DEMO_POOL):
            self._step()
        size = len(self._buffer[spec.ACTION])
        take = np.zeros(size, dtype=bool)
        take[self.rng.choice(size, size=n, replace=False)] = True
        batch = {k: v[take] for k, v in self._buffer.items()}
        self._buffer = {k: v[~take] for k, v in self._buffer.items()}
        return batch

    def _step(self) -> None:
        """One oracle step of every slot; completed transitions join the buffer."""
        actions = self.env.oracle_actions()
        len_s = self.obs.length.copy()  # the env updates its arrays in place
        mask_s = None if self.obs.action_mask is None else self.obs.action_mask.copy()
        self.obs, reward, terminated, truncated, info = self.env.step(actions)
        if not self.source.bootstrap_on_truncation:
            terminated = terminated | truncated  # as the actors do (ActorConfig.bootstrap_on_truncation)
        z = self._zeros  # the actors' Q-values only set initial priorities, which demonstrations do not have
        self.assembler.add(len_s, actions, z, reward, terminated, self.obs, info, z, mask_s=mask_s)
        self.env_steps += self.env.num_envs
        out, _ = self.assembler.drain()
        if self._buffer is not None:
            out = {k: np.concatenate([self._buffer[k], v]) for k, v in out.items()}
        self._buffer = out
