"""Shared test fakes: tiny batched text tasks with known optimal policies (no real task needed).

- `CopyEnv`: prompt `copy x`; the right answer is `x <eos>` (reward 0.5 per correct token, wrong token terminates).
- `FeedbackEnv`: prompts of 1-3 digits; every step appends the action and 2 feedback tokens (`ok`/`no`, `|`), so
  observations grow by 3 tokens per step; `<eos>` terminates, the step budget truncates.
- `SyntheticEnv`: configurable vocabulary, cheap numpy scoring, for benchmarks.

Use them through the registry's `module:Class` form, e.g. `make_env("tests.fakes:CopyEnv", ...)`.
"""

from __future__ import annotations

import numpy as np

from distdqn.envs.base import EOS, PAD, TextEnv, Vocab

# Dotted overrides for a tiny, fast run on CopyEnv (both splits learnable): the integration and CLI tests' base.
COPY_RUN = [
    "env.task=tests.fakes:CopyEnv",
    "env.options={held_out: false}",
    "env.envs_per_actor=16",
    "network.embed_dim=16",
    "network.hidden_dim=32",
    "replay.capacity=4000",
    "replay.min_size_to_sample=256",
    "learner.batch_size=64",
    "learner.lr=3e-3",
    "run.eval_episodes=64",
]

# COPY_RUN as a supervised run on either runtime: no periodic evaluation or checkpoint unless a test asks, frequent
# logs, and CPU requests that fit a 4-CPU test instance.
SUPERVISED_RUN = [
    *COPY_RUN,
    "run.eval_interval_s=1000",
    "run.log_interval_s=0.2",
    "checkpoint.interval_s=0",
    "cluster.actor_num_cpus=0.5",
    "cluster.learner_num_cpus=0.5",
]


class CopyEnv(TextEnv):
    """Copy the prompt's letter, then stop: `copy c` -> `c <eos>`. Oracle return 1.0, success 1."""

    name = "copy"
    LETTERS = tuple("abcdefgh")

    def __init__(
        self,
        num_envs: int,
        seed: int = 0,
        split: str = "train",
        difficulty: str = "easy",
        max_steps: int = 4,
        held_out: bool = True,
    ):
        vocab = Vocab([PAD, EOS, "copy", *self.LETTERS])
        super().__init__(num_envs, vocab, max_len=2 + max_steps, max_steps=max_steps, seed=seed, split=split)
        self.eos = vocab.id(EOS)
        self.first_letter = vocab.id("a")
        self.target = np.zeros(num_envs, dtype=np.int32)
        self.held_out = held_out

    def _reset_slots(self, idx):
        # train: letters a-f, test: letters g-h (held-out prompts), or a-h for both when held_out is False
        lo, hi = (0, 6) if self.split == "train" else (6, 8)
        if not self.held_out:
            lo, hi = 0, 8
        letter = self.first_letter + self.rng.integers(lo, hi, size=idx.size)
        self.tokens[idx, 0] = self.vocab.id("copy")
        self.tokens[idx, 1] = letter
        self.length[idx] = 2
        self.target[idx] = letter

    def _score(self, actions):
        gen = self.steps
        want = np.where(gen == 1, self.target, self.eos)
        right = (actions == want) & (gen <= 2)
        reward = np.where(right, 0.5, 0.0).astype(np.float32)
        terminated = ~right | (gen >= 2)
        success = (right & (gen == 2)).astype(np.float32)
        return reward, terminated, success

    def oracle_actions(self):
        return np.where(self.steps == 0, self.target, self.eos)


class FeedbackEnv(TextEnv):
    """Each step appends action + 2 feedback tokens; reward 1 when the action equals the prompt's first digit."""

    name = "feedback"

    def __init__(
        self, num_envs: int, seed: int = 0, split: str = "train", difficulty: str = "easy", max_steps: int = 3
    ):
        vocab = Vocab([PAD, EOS, "0", "1", "2", "3", "4", "ok", "no", "|"])
        super().__init__(num_envs, vocab, max_len=3 + 3 * max_steps, max_steps=max_steps, seed=seed, split=split)
        self.eos = vocab.id(EOS)
        self.ok, self.no, self.bar = vocab.id("ok"), vocab.id("no"), vocab.id("|")

    def _reset_slots(self, idx):
        n = self.rng.integers(1, 4, size=idx.size)
        digits = self.rng.integers(2, 7, size=(idx.size, 3))
        digits[np.arange(3)[None, :] >= n[:, None]] = 0
        self.tokens[idx, :3] = digits
        self.length[idx] = n

    def _score(self, actions):
        right = actions == self.tokens[:, 0]
        fb = np.stack([np.where(right, self.ok, self.no), np.full(self.num_envs, self.bar)], axis=1)
        self._append(self._all, fb)
        terminated = actions == self.eos
        return right.astype(np.float32), terminated, right.astype(np.float32)

    def oracle_actions(self):
        return self.tokens[:, 0].astype(np.int64)


class SyntheticEnv(TextEnv):
    """Benchmark task with `vocab_size` tokens: reward 1 for repeating the prompt's first token, `<eos>` ends."""

    name = "synthetic"

    def __init__(
        self,
        num_envs: int,
        seed: int = 0,
        split: str = "train",
        difficulty: str = "easy",
        vocab_size: int = 32,
        prompt_len: int = 4,
        max_steps: int = 16,
    ):
        vocab = Vocab([PAD, EOS, *[f"t{i}" for i in range(vocab_size - 2)]])
        super().__init__(num_envs, vocab, max_len=prompt_len + max_steps, max_steps=max_steps, seed=seed, split=split)
        self.prompt_len = prompt_len

    def _reset_slots(self, idx):
        self.tokens[idx, : self.prompt_len] = self.rng.integers(2, self.vocab_size, size=(idx.size, self.prompt_len))
        self.length[idx] = self.prompt_len

    def _score(self, actions):
        right = actions == self.tokens[:, 0]
        terminated = actions == 1
        return right.astype(np.float32), terminated, right.astype(np.float32)


class FlakyCopyEnv(CopyEnv):
    """CopyEnv whose training envs raise after `fail_after_steps` batched steps (a task with a bug that shows up
    mid-run); evaluation (the test split) never fails. For restart-limit tests."""

    def __init__(
        self, num_envs: int, seed: int = 0, split: str = "train", difficulty: str = "easy", fail_after_steps=50
    ):
        super().__init__(num_envs, seed=seed, split=split, difficulty=difficulty, held_out=False)
        self.fail_after_steps = fail_after_steps if split == "train" and num_envs > 1 else None
        self._steps_taken = 0

    def step(self, actions):
        self._steps_taken += 1
        if self.fail_after_steps is not None and self._steps_taken > self.fail_after_steps:
            raise RuntimeError(f"flaky task: step {self._steps_taken} fails on purpose")
        return super().step(actions)
