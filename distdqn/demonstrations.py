"""Demonstrations for the learner (DQfD, Hester et al. 2018): the task's oracle playing the training split.

A task that can name the right next token (`TextEnv.oracle_actions`: copy, arithmetic, shortest path, ...) can
show the learner what good play looks like instead of waiting for exploration to stumble on it. `DemoStream` plays
that oracle in its own batch of training-split envs and assembles the steps into n-step transitions exactly as an
actor does (`NStepAssembler`, the run's `actor.n_step` and `actor.gamma`), so a demonstration batch has the
replay's layout and the learner's TD loss applies to it unchanged. The learner adds DQfD's large-margin loss on it
(`losses.large_margin_loss`: the oracle's token must lead every other token by `learner.demo_margin`):

    updates 1 .. demo_pretrain_updates        demo_td_weight * TD(demo batch) + demo_margin_weight * margin(demo batch)
    every later update                        TD(replay batch) + the same on demo_batch_size demonstrations (if > 0)

A demonstration batch is `n` transitions drawn at random, each in its own row (the replay's layout), or with
`learner.demo_episodes` `n` whole episodes: one row per episode (its final sequence, of which every state of the
episode is a prefix) and all the episode's transitions pointing into it (`spec.ROW`). The learner then reads every
transition of an episode from one pass over its row (`losses.transition_q_values(..., rows=)`): the same trunk work
per row, and an episode of Wordle's (~25 letters) or shortest path's (up to 32 moves) gives that many transitions
instead of one.

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
from distdqn.config import Config, EnvConfig, LearnerConfig
from distdqn.envs import make_env_from_config
from distdqn.nstep import ENV_SLOT, NStepAssembler
from distdqn.typed import ConfigError

DEMO_ENVS = 64  # oracle episodes played side by side: one env step yields up to this many transitions
DEMO_POOL = 1024  # `next` draws from at least this many fresh transitions, so a batch mixes answer positions
DEMO_POOL_EPISODES = 4 * DEMO_ENVS  # ... or, with `episodes`, from at least this many finished episodes
EPISODE = "episode"  # the buffer's own column: which episode a transition belongs to
DEMO_SEED_KEY = 0xDE30  # the demonstrations' envs draw prompts from SeedSequence([run.seed, this])


@dataclasses.dataclass(frozen=True)
class DemoSource:
    """What a learner needs to build its `DemoStream` (plain config values: it crosses to a Ray worker)."""

    env: EnvConfig
    n_step: int
    gamma: float
    bootstrap_on_truncation: bool
    seed: int
    episodes: bool = False  # `next(n)` returns n whole episodes (learner.demo_episodes), not n transitions

    def build(self) -> DemoStream:
        return DemoStream(self)


def demo_pretrain_batch(learner_config: LearnerConfig) -> int:
    """Demonstrations per pre-training update: `demo_pretrain_batch_size`, or `batch_size` when that is 0."""
    return learner_config.demo_pretrain_batch_size or learner_config.batch_size


def demo_source(config: Config) -> DemoSource | None:
    """The run's demonstration source, None when `learner.demo_pretrain_updates` and `learner.demo_batch_size` are
    both 0. Asks the task for one oracle move here, so a task without an oracle fails before any worker starts."""
    if not (config.learner.demo_pretrain_updates or config.learner.demo_batch_size):
        return None
    seed = int(np.random.SeedSequence([config.run.seed, DEMO_SEED_KEY]).generate_state(1)[0])
    a = config.actor
    source = DemoSource(config.env, a.n_step, a.gamma, a.bootstrap_on_truncation, seed, config.learner.demo_episodes)
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
    """Oracle play on the training split, as n-step transitions in the `spec` layout; `next(n)` returns n of them,
    or n whole episodes (`DemoSource.episodes`)."""

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
            with_env_slot=True,
        )
        self.obs = self.env.reset()
        self.rng = np.random.default_rng(source.seed)
        self.env_steps = 0  # oracle steps played so far
        self._zeros = np.zeros(self.env.num_envs, np.float32)
        self._buffer: dict[str, np.ndarray] | None = None  # transitions played and not yet drawn, with EPISODE ids
        self._episode = np.arange(self.env.num_envs)  # the id of the episode each slot is playing
        self._next_episode = self.env.num_envs
        self._finished: set[int] = set()  # with `episodes`: ids of ended episodes not yet drawn

    def next(self, n: int) -> dict[str, np.ndarray]:
        """`n` demonstrations: transitions drawn at random from a pool of at least `DEMO_POOL` fresh ones (each
        used once; the slots step in lockstep, so consecutive transitions share an answer position), or with
        `episodes` n finished episodes drawn from at least `DEMO_POOL_EPISODES` (`_episodes`)."""
        if self.source.episodes:
            return self._episodes(n)
        while self._buffer is None or len(self._buffer[spec.ACTION]) < max(n, DEMO_POOL):
            self._step()
        take = np.zeros(len(self._buffer[spec.ACTION]), dtype=bool)
        take[self.rng.choice(take.size, size=n, replace=False)] = True
        batch = self._take(take)
        del batch[EPISODE]
        return batch

    def _episodes(self, n: int) -> dict[str, np.ndarray]:
        """n finished episodes in the `spec.ROW` layout: `tokens` [n, L], one row per episode (the longest of its
        transitions' rows, of which every other one is a prefix), the other fields per transition, grouped by
        episode in row order."""
        while len(self._finished) < max(n, DEMO_POOL_EPISODES):
            self._step()
        chosen = self.rng.choice(np.fromiter(self._finished, np.int64), size=n, replace=False)
        self._finished.difference_update(chosen.tolist())
        batch = self._take(np.isin(self._buffer[EPISODE], chosen))
        _, row = np.unique(batch.pop(EPISODE), return_inverse=True)  # row r: the r-th chosen episode by id
        order = np.lexsort((batch[spec.LEN_S], row))  # grouped by row, each episode's transitions in order
        batch = {k: v[order] for k, v in batch.items()}
        row = row[order]
        # the last transition of each row ends the episode, so its s' is the longest (the whole episode)
        last = np.r_[np.flatnonzero(np.diff(row)), row.size - 1]
        batch[spec.TOKENS] = batch[spec.TOKENS][last]
        batch[spec.ROW] = row.astype(np.int32)
        return batch

    def _take(self, take: np.ndarray) -> dict[str, np.ndarray]:
        """Remove the transitions where `take` [N] bool is set from the buffer and return them."""
        batch = {k: v[take] for k, v in self._buffer.items()}
        self._buffer = {k: v[~take] for k, v in self._buffer.items()}
        return batch

    def _step(self) -> None:
        """One oracle step of every slot; completed transitions join the buffer, labelled with their episode."""
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
        out[EPISODE] = self._episode[out.pop(ENV_SLOT)]  # everything emitted now is of the episode before the step
        done = info.done_idx
        if self.source.episodes:
            self._finished.update(self._episode[done].tolist())
        self._episode[done] = self._next_episode + np.arange(done.size)
        self._next_episode += done.size
        if self._buffer is not None:
            out = {k: np.concatenate([self._buffer[k], v]) for k, v in out.items()}
        self._buffer = out
