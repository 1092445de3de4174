"""Arithmetic QA task: the prompt `12+7=` as character tokens, the agent answers with the result's digits then <eos>.

Rules (per slot, all vectorised over the batch):
  - operands a, b are uniform in [0, 10**num_digits); the operator is drawn from `operators`; for `-` the operands
    are ordered so that a >= b (answers are never negative);
  - the answer is the canonical decimal of the result (no sign, no leading zeros) followed by <eos>; at step t the
    only correct token is target[t];
  - a correct digit earns `digit_reward` (partial credit, 0 to switch off), the final correct <eos> earns 1 and
    ends the episode with success 1;
  - any wrong token (wrong digit, leading zero, <eos> too early, a digit past the end, a non-digit) ends the episode
    at once with `wrong_reward` and success 0. Terminating early keeps the credit assignment a few steps long.
  Since only <eos> is correct after the last digit, an episode lasts at most len(answer) + 1 steps: never truncated.

Splits: an operand triple (a, op, b) is held out ("test") by a seed-free hash of the triple (`splits.in_split`),
`test_fraction` of all triples; the same triple is held out at every difficulty. Prompts are drawn by rejection
sampling from the requested split.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from distdqn.envs.base import EOS, TextEnv, Vocab, resolve_options
from distdqn.envs.registry import register
from distdqn.envs.splits import in_split

_DIGITS = [str(d) for d in range(10)]
_OPS = "+-"
VOCAB_TOKENS = ["<pad>", *_DIGITS, "+", "-", "=", EOS]
_MAX_DIGITS = 4
_KEY_BASE = 10**_MAX_DIGITS  # keys use the widest base, so a triple's split does not depend on num_digits
_SALT = 7  # chosen so that easy's 100 (a, +, b) pairs split exactly 80 / 20


@dataclasses.dataclass
class Options:
    """Options of the arithmetic task (see the module docstring for the rules)."""

    num_digits: int = 1  # operands are uniform in [0, 10**num_digits), 1..4
    operators: str = "+"  # operators to draw from: "+", "-" or "+-"
    test_fraction: float = 0.2  # share of (a, op, b) triples held out for the test split, in (0, 1)
    digit_reward: float = 0.0  # partial credit per correct answer digit (0 = exact match only), in [0, 0.2]
    wrong_reward: float = -1.0  # reward of the wrong token that ends the episode, in [-1, 0]

    def __post_init__(self):
        if not 1 <= self.num_digits <= _MAX_DIGITS:
            raise ValueError(f"env.options.num_digits must be in 1..{_MAX_DIGITS}, got {self.num_digits}")
        if (
            not self.operators
            or any(c not in _OPS for c in self.operators)
            or len(set(self.operators)) != len(self.operators)
        ):
            raise ValueError(f"env.options.operators must be '+', '-' or '+-', got {self.operators!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"env.options.test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 <= self.digit_reward <= 0.2:
            raise ValueError(f"env.options.digit_reward must be in [0, 0.2], got {self.digit_reward}")
        if not -1.0 <= self.wrong_reward <= 0.0:
            raise ValueError(f"env.options.wrong_reward must be in [-1, 0], got {self.wrong_reward}")


PRESETS: dict[str, dict] = {
    "easy": {"num_digits": 1, "operators": "+", "digit_reward": 0.1},  # 80-odd train pairs, answers 1-2 digits
    "medium": {"num_digits": 2, "operators": "+-"},
    "hard": {"num_digits": 3, "operators": "+-"},
}


def pair_key(a: np.ndarray, op: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The split key of a triple: op index 0 for '+', 1 for '-'."""
    return (np.asarray(a, np.int64) * _KEY_BASE + b) * 2 + op


def _number_tables(width: int, eos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every x < 10**width: its decimal as token ids, left-aligned and padded with 0 [M, width], its digit
    count [M], and the answer row: digits, then <eos> padding [M, width + 1]. Lookups replace per-digit writes."""
    x = np.arange(10**width, dtype=np.int64)
    count = np.ones(len(x), dtype=np.int64)
    for p in range(1, width):
        count += x >= 10**p
    power = count[:, None] - 1 - np.arange(width)  # place of the j-th digit from the left; < 0 past the end
    digits = np.where(power >= 0, (x[:, None] // 10 ** np.maximum(power, 0)) % 10 + 1, 0)  # token "0" has id 1
    answer = np.full((len(x), width + 1), eos, dtype=np.int32)
    answer[:, :width] = np.where(digits > 0, digits, eos)
    return digits.astype(np.int32), count.astype(np.int32), answer


class ArithmeticEnv(TextEnv):
    """Batched arithmetic QA; see the module docstring."""

    name = "arithmetic"

    def __init__(self, num_envs: int, options: Options, seed: int = 0, split: str = "train"):
        d = options.num_digits
        self.options = options
        self._answer_width = d + 1  # a sum of two d-digit numbers has at most d+1 digits
        prompt_width = 2 * d + 2
        super().__init__(
            num_envs,
            Vocab(VOCAB_TOKENS, separator=""),
            max_len=prompt_width + self._answer_width + 1,
            max_steps=self._answer_width + 1,
            seed=seed,
            split=split,
        )
        self._eos = self.vocab.id(EOS)
        self._eq = self.vocab.id("=")
        self._op_ids = np.array([self.vocab.id(c) for c in _OPS], dtype=np.int32)
        self._op_choices = np.array([_OPS.index(c) for c in options.operators], dtype=np.int64)
        self._num_tokens, self._num_len, self._answer_tokens = _number_tables(self._answer_width, self._eos)
        # per-slot task state: the correct token at each answer step (digits then <eos>, padded with <eos>)
        self.target = np.full((num_envs, self._answer_width + 1), self._eos, dtype=np.int32)
        self.operands = np.zeros((num_envs, 3), dtype=np.int64)  # a, op index, b

    # ---- prompts --------------------------------------------------------------------------------------------
    def _sample_triples(self, k: int) -> np.ndarray:
        """k triples [k, 3] (a, op, b) from this split, by vectorised rejection sampling."""
        hi = 10**self.options.num_digits
        out = np.empty((0, 3), dtype=np.int64)
        for _ in range(64):
            n = 2 * (k - len(out)) + 8
            a = self.rng.integers(0, hi, size=n)
            b = self.rng.integers(0, hi, size=n)
            op = self._op_choices[self.rng.integers(0, len(self._op_choices), size=n)]
            swap = (op == 1) & (a < b)
            a, b = np.where(swap, b, a), np.where(swap, a, b)
            keep = in_split(pair_key(a, op, b), self.split, self.options.test_fraction, _SALT)
            out = np.concatenate([out, np.stack([a, op, b], axis=1)[keep]])[:k]
            if len(out) == k:
                return out
        raise RuntimeError(f"could not draw {k} prompts from split {self.split!r}; is test_fraction too extreme?")

    def _reset_slots(self, idx: np.ndarray) -> None:
        triples = self._sample_triples(len(idx))
        a, op, b = triples[:, 0], triples[:, 1], triples[:, 2]
        self.operands[idx] = triples
        d = self.options.num_digits
        # each write may spill pads (0) past its number; the next write lands on them, so write left to right
        len_a, len_b = self._num_len[a], self._num_len[b]
        self.tokens[idx, :d] = self._num_tokens[a, :d]
        self.tokens[idx, len_a] = self._op_ids[op]
        self.tokens[idx[:, None], len_a[:, None] + 1 + np.arange(d)] = self._num_tokens[b, :d]
        self.tokens[idx, len_a + len_b + 1] = self._eq
        self.length[idx] = len_a + len_b + 2
        self.target[idx] = self._answer_tokens[np.where(op == 0, a + b, a - b)]

    # ---- scoring --------------------------------------------------------------------------------------------
    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        target = self.target[self._all, self.steps - 1]
        correct = actions == target
        finished = correct & (target == self._eos)
        reward = np.where(correct, np.where(finished, 1.0, self.options.digit_reward), self.options.wrong_reward)
        terminated = ~correct | finished
        return reward.astype(np.float32), terminated, finished.astype(np.float32)

    def oracle_actions(self) -> np.ndarray:
        """The correct next token of every slot."""
        return self.target[self._all, self.steps].astype(np.int64)


@register("arithmetic")
def make_arithmetic(num_envs: int = 1, seed: int = 0, split: str = "train", difficulty: str = "easy", **options):
    """Factory for the registry: options override the difficulty preset."""
    opts = resolve_options(Options, PRESETS, difficulty, options, task="arithmetic")
    return ArithmeticEnv(num_envs, opts, seed=seed, split=split)
