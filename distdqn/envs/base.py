"""The batched text-environment API: vocabularies, observations and the `TextEnv` base class every task extends.

A text environment holds `num_envs` independent episodes ("slots") and steps them all at once with numpy.
The state of slot b is a token sequence `tokens[b, :length[b]]` = prompt followed by the generated tokens (and,
for tasks that answer, e.g. Wordle feedback, tokens the environment appends). Within an episode the sequence only
grows: every observation is a prefix-extension of the previous one. That invariant is what lets one stored token
row hold both s and s' of an n-step transition (DESIGN.md section 3).

Step semantics (per slot):
  1. the action token is appended at position `length` (length += 1);
  2. the task scores it (`_score`): reward, terminated, success, and may append more tokens;
  3. truncated = not terminated and (length >= max_len or generated >= max_steps): the episode is cut by the
     budget, not by the task, so its value still bootstraps;
  4. finished slots are auto-reset to a fresh prompt; their last observation is returned in `info`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

PAD = "<pad>"
EOS = "<eos>"


class Vocab:
    """Token strings <-> ids. Id 0 is always `<pad>`. `separator` joins tokens when decoding ('' for characters)."""

    def __init__(self, tokens: Sequence[str], separator: str = " "):
        tokens = list(tokens)
        if not tokens or tokens[0] != PAD:
            tokens = [PAD] + [t for t in tokens if t != PAD]
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"vocabulary has duplicate tokens: {dupes[:10]}")
        self.tokens: list[str] = tokens
        self.index: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.separator = separator

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def id(self, token: str) -> int:
        try:
            return self.index[token]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the vocabulary") from None

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array([self.id(t) for t in tokens], dtype=np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray, skip_pad: bool = True) -> str:
        words = [self.tokens[int(i)] for i in ids if not (skip_pad and int(i) == 0)]
        return self.separator.join(words)

    def ids_array(self, tokens: Sequence[str]) -> np.ndarray:
        """Like `encode`, for building lookup tables."""
        return self.encode(tokens)


@dataclasses.dataclass
class Obs:
    """A batch of observations. tokens: [B, L] int32, length: [B] int32, action_mask: [B, V] bool or None."""

    tokens: np.ndarray
    length: np.ndarray
    action_mask: np.ndarray | None = None


@dataclasses.dataclass
class StepInfo:
    """Per-step extras. `done_idx` lists the slots that finished this step (terminated or truncated); for them,
    `final_tokens` [k, L] / `final_length` [k] hold the last observation before the auto-reset and `success` [k]
    the task's success metric (0..1; e.g. exact match, validity, path optimality)."""

    done_idx: np.ndarray
    final_tokens: np.ndarray
    final_length: np.ndarray
    success: np.ndarray


class TextEnv:
    """Base class of the batched text tasks. Subclasses set the vocabulary and implement the three hooks:

    - `_reset_slots(idx)`: write fresh prompts for slots `idx` into `self.tokens` / `self.length` (and any per-slot
      task state), drawing from `self.rng` and from the split (`self.split`, "train" or "test");
    - `_score(actions)`: after the action tokens [B] were appended, return (reward [B] float32,
      terminated [B] bool, success [B] float32; success is read only where the episode ends);
    - optionally `_action_mask()` -> [B, V] bool (set `has_action_mask = True`), `oracle_actions()` -> [B].
    """

    name: str = "base"
    has_action_mask: bool = False

    def __init__(self, num_envs: int, vocab: Vocab, max_len: int, max_steps: int, seed: int = 0, split: str = "train"):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if max_len < 2 or max_steps < 1:
            raise ValueError(f"max_len must be >= 2 and max_steps >= 1, got max_len={max_len}, max_steps={max_steps}")
        self.num_envs = num_envs
        self.vocab = vocab
        self.vocab_size = len(vocab)
        self.max_len = max_len
        self.max_steps = max_steps
        self.split = split
        self.rng = np.random.default_rng(seed)
        self.tokens = np.zeros((num_envs, max_len), dtype=np.int32)
        self.length = np.zeros(num_envs, dtype=np.int32)
        self.prompt_length = np.zeros(num_envs, dtype=np.int32)
        self.steps = np.zeros(num_envs, dtype=np.int32)
        self._all = np.arange(num_envs)

    # ---- public API -------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._reset(self._all)
        return self._obs()

    def step(self, actions: np.ndarray) -> tuple[Obs, np.ndarray, np.ndarray, np.ndarray, StepInfo]:
        actions = self._check_actions(actions)
        full = self.length >= self.max_len
        if full.any():
            raise RuntimeError(
                f"slots {np.flatnonzero(full)[:5].tolist()} are full; an episode should have been truncated"
            )
        self.tokens[self._all, self.length] = actions
        self.length += 1
        self.steps += 1
        reward, terminated, success = self._score(actions)
        truncated = ~terminated & ((self.length >= self.max_len) | (self.steps >= self.max_steps))
        done_idx = np.flatnonzero(terminated | truncated)
        info = StepInfo(
            done_idx=done_idx,
            final_tokens=self.tokens[done_idx].copy(),
            final_length=self.length[done_idx].copy(),
            success=np.asarray(success, dtype=np.float32)[done_idx],
        )
        if done_idx.size:
            self._reset(done_idx)
        return self._obs(), reward.astype(np.float32, copy=False), terminated, truncated, info

    def prompts(self) -> list[str]:
        """The current prompt of every slot, as text."""
        return [self.vocab.decode(self.tokens[b, : self.prompt_length[b]]) for b in range(self.num_envs)]

    def generated(self, tokens: np.ndarray, length: int, prompt_length: int) -> str:
        return self.vocab.decode(tokens[prompt_length:length])

    def random_actions(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform over the allowed actions (the random-policy baseline)."""
        if self.has_action_mask:
            mask = self._action_mask()
            scores = rng.random(mask.shape) * mask
            return scores.argmax(axis=1).astype(np.int64)
        return rng.integers(1, self.vocab_size, size=self.num_envs)

    def oracle_actions(self) -> np.ndarray:
        raise NotImplementedError(f"task {self.name!r} has no oracle policy")

    # ---- helpers for subclasses --------------------------------------------------------------------------------
    def _reset(self, idx: np.ndarray) -> None:
        self.tokens[idx] = 0
        self.length[idx] = 0
        self.steps[idx] = 0
        self._reset_slots(idx)
        self.prompt_length[idx] = self.length[idx]

    def _obs(self) -> Obs:
        mask = self._action_mask() if self.has_action_mask else None
        return Obs(self.tokens, self.length, mask)

    def _check_actions(self, actions: Any) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {actions.shape}")
        if not np.issubdtype(actions.dtype, np.integer):
            raise TypeError(f"actions must be integers, got dtype {actions.dtype}")
        if actions.size and (actions.min() < 0 or actions.max() >= self.vocab_size):
            bad = actions[(actions < 0) | (actions >= self.vocab_size)]
            raise ValueError(f"actions must lie in [0, {self.vocab_size}), got {bad[:5].tolist()}")
        return actions

    def _append(self, idx: np.ndarray, token_ids: np.ndarray) -> None:
        """Append tokens [k, m] (pad 0 = skip) for slots idx, e.g. environment feedback; clipped at max_len."""
        for j in range(token_ids.shape[1]):
            col = token_ids[:, j]
            room = self.length[idx] < self.max_len
            sel = idx[room & (col != 0)]
            self.tokens[sel, self.length[sel]] = col[room & (col != 0)]
            self.length[sel] += 1

    # ---- hooks ---------------------------------------------------------------------------------------------
    def _reset_slots(self, idx: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _action_mask(self) -> np.ndarray:
        raise NotImplementedError


def resolve_options(options_cls: type, presets: dict[str, dict], difficulty: str, options: dict, task: str):
    """Task options = the difficulty preset, overridden by the user's `options`; unknown keys and bad types are
    named as `env.options.<key>` with the nearest valid key. Range checks live in the dataclass's __post_init__,
    which should raise ValueError naming the option."""
    from distdqn.typed import build

    if difficulty not in presets:
        raise ValueError(f"task {task!r}: difficulty must be one of {sorted(presets)}, got {difficulty!r}")
    merged = {**presets[difficulty], **options}
    return build(options_cls, merged, prefix="env.options")
