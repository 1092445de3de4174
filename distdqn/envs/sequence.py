"""Tasks "copy", "reverse" and "sort": algorithmic sequence transductions with one sparse reward at the end.

They are the built-in checks that the defaults generalise: no config in `configs/` was tuned on them.

Prompt: a list of digit tokens, then `<sep>` (`3 1 2 <sep>`); the agent writes the answer, then `<eos>`:

    copy     3 1 2 <sep>  ->  3 1 2 <eos>
    reverse  3 1 2 <sep>  ->  2 1 3 <eos>
    sort     3 1 2 <sep>  ->  1 2 3 <eos>

Lists have `min_length`..`max_length` digits drawn from the first `num_symbols` digits (the level sets both).
Reward, only at `<eos>`: 1 for the exact answer (success 1, the only success); otherwise `partial_credit` times the
share of positions that match, counted over the longer of answer and target (so padding an answer or stopping early
earns less, and `partial_credit` < 1 keeps every wrong answer below the right one). `partial_credit` is 0 by
default: the task is sparse. Every other step pays 0; running out of budget (the longest target + `<eos>` + one
slack token) truncates the episode with 0.

Prompts whose answer equals the prompt are skipped for reverse (palindromes) and sort (already sorted lists), so
echoing the prompt never solves either. Held-out split: a prompt is held out iff its answer is (a seed-free hash of
the answer, `splits.in_split`): sort's held-out lists need sorted outputs never rewarded in training, and copy and
reverse see held-out digit strings. Prompts are drawn by rejection sampling from the split.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from distdqn.envs.base import EOS, PAD, TextEnv, Vocab, resolve_options
from distdqn.envs.registry import register
from distdqn.envs.splits import in_split

# one line per task for `distdqn tasks` (the module docstring's first line names all three)
SUMMARIES = {
    "copy": 'Task "copy": write the prompt\'s digit list back (`3 1 2` -> `3 1 2`); one sparse reward at the end.',
    "reverse": 'Task "reverse": write the prompt\'s digit list reversed (`3 1 2` -> `2 1 3`); one sparse reward at the end.',
    "sort": 'Task "sort": write the prompt\'s digit list sorted (`3 1 2` -> `1 2 3`); one sparse reward at the end.',
}

SEP = "<sep>"
_DIGITS = [str(d) for d in range(10)]
_MAX_LENGTH = 8
_SALT = 14


@dataclasses.dataclass
class Options:
    """Options of the sequence tasks (see the module docstring)."""

    min_length: int = 2  # digits per prompt, at least (>= 1)
    max_length: int = 3  # digits per prompt, at most (<= 8)
    num_symbols: int = 5  # digits 0..num_symbols-1 (2..10)
    partial_credit: float = 0.0  # reward of a wrong answer = this x the share of matching positions, in [0, 0.5]
    test_fraction: float = 0.2  # share of answers held out for the test split, in (0, 1)

    def __post_init__(self):
        if not 1 <= self.min_length <= self.max_length <= _MAX_LENGTH:
            raise ValueError(
                f"env.options.min_length and max_length must satisfy 1 <= min_length <= max_length <= {_MAX_LENGTH}, "
                f"got {self.min_length} and {self.max_length}"
            )
        if not 2 <= self.num_symbols <= 10:
            raise ValueError(f"env.options.num_symbols must be in 2..10, got {self.num_symbols}")
        if not 0.0 <= self.partial_credit <= 0.5:
            raise ValueError(f"env.options.partial_credit must be in [0, 0.5], got {self.partial_credit}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"env.options.test_fraction must be in (0, 1), got {self.test_fraction}")


PRESETS: dict[str, dict] = {
    "easy": {"min_length": 2, "max_length": 3, "num_symbols": 5},  # 150 lists, ~30 answers held out
    "medium": {"min_length": 3, "max_length": 5, "num_symbols": 8},
    "hard": {"min_length": 4, "max_length": 7, "num_symbols": 10},
}


def transform(task: str, digits: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The answers [k, W] of lists `digits` [k, W] (digit values, only the first `length` of each row count;
    the rest of each answer row is -1)."""
    width = digits.shape[1]
    inside = np.arange(width)[None, :] < length[:, None]
    if task == "copy":
        out = digits
    elif task == "reverse":
        src = np.clip(length[:, None] - 1 - np.arange(width)[None, :], 0, None)
        out = np.take_along_axis(digits, src, axis=1)
    elif task == "sort":
        out = np.sort(np.where(inside, digits, 10), axis=1)  # 10 sorts after every digit
    else:
        raise ValueError(f"unknown sequence task {task!r}")
    return np.where(inside, out, -1)


def answer_key(answer: np.ndarray) -> np.ndarray:
    """The split key of an answer row [k, W] (-1 = past the end): its digits in base 11, with 0 as the end."""
    return ((answer + 1).astype(np.int64) * 11 ** np.arange(answer.shape[1], dtype=np.int64)[None, :]).sum(axis=1)


class SequenceEnv(TextEnv):
    """Batched copy / reverse / sort; see the module docstring."""

    def __init__(self, task: str, num_envs: int, options: Options, seed: int = 0, split: str = "train"):
        self.name = task
        self.options = options
        symbols = _DIGITS[: options.num_symbols]
        width = options.max_length
        self._budget = width + 2  # the longest answer, <eos>, and one slack token
        super().__init__(
            num_envs,
            Vocab([PAD, *symbols, SEP, EOS]),
            max_len=width + 1 + self._budget,
            max_steps=self._budget,
            seed=seed,
            split=split,
        )
        self._sep, self._eos = self.vocab.id(SEP), self.vocab.id(EOS)
        # per-slot plan: the answer's token ids, then <eos>, padded with <eos> (the oracle reads it)
        self.plan = np.full((num_envs, self._budget), self._eos, dtype=np.int32)
        self.answer_length = np.zeros(num_envs, dtype=np.int32)

    # ---- prompts --------------------------------------------------------------------------------------------
    def _sample(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """k lists of this split: digits [k, W], lengths [k], answers [k, W]; by vectorised rejection sampling."""
        o = self.options
        digits = np.empty((0, o.max_length), dtype=np.int64)
        lengths = np.empty(0, dtype=np.int64)
        answers = np.empty((0, o.max_length), dtype=np.int64)
        for _ in range(64):
            n = 2 * (k - len(lengths)) + 16
            d = self.rng.integers(0, o.num_symbols, size=(n, o.max_length))
            n_len = self.rng.integers(o.min_length, o.max_length + 1, size=n)
            ans = transform(self.name, d, n_len)
            d = np.where(ans >= 0, d, -1)
            trivial = (ans == d).all(axis=1) if self.name != "copy" else np.zeros(n, dtype=bool)
            keep = ~trivial & in_split(answer_key(ans), self.split, o.test_fraction, _SALT)
            digits = np.concatenate([digits, d[keep]])[:k]
            lengths = np.concatenate([lengths, n_len[keep]])[:k]
            answers = np.concatenate([answers, ans[keep]])[:k]
            if len(lengths) == k:
                return digits, lengths, answers
        raise ValueError(
            f"task {self.name!r}: could not draw prompts from split {self.split!r} with {dataclasses.asdict(o)}; "
            "widen env.options.num_symbols or the length range, or change env.options.test_fraction"
        )

    def _reset_slots(self, idx: np.ndarray) -> None:
        digits, lengths, answers = self._sample(len(idx))
        ids = np.where(digits >= 0, digits + 1, 0)  # token "0" has id 1
        self.tokens[idx, : ids.shape[1]] = ids
        self.tokens[idx, lengths] = self._sep
        self.length[idx] = lengths + 1
        self.plan[idx] = self._eos
        self.plan[idx, : answers.shape[1]] = np.where(answers >= 0, answers + 1, self._eos)
        self.answer_length[idx] = lengths

    # ---- scoring --------------------------------------------------------------------------------------------
    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        terminated = actions == self._eos
        reward = np.zeros(self.num_envs, dtype=np.float32)
        success = np.zeros(self.num_envs, dtype=np.float32)
        done = np.flatnonzero(terminated)
        if done.size:
            written = self.steps[done] - 1  # answer tokens before <eos>
            target = self.answer_length[done]
            cols = np.arange(self._budget)
            hyp = self.tokens[done[:, None], np.minimum(self.prompt_length[done, None] + cols, self.max_len - 1)]
            matches = ((hyp == self.plan[done]) & (cols < np.minimum(written, target)[:, None])).sum(axis=1)
            exact = (written == target) & (matches == target)
            partial = self.options.partial_credit * matches / np.maximum(np.maximum(written, target), 1)
            reward[done] = np.where(exact, 1.0, partial)
            success[done] = exact
        return reward, terminated, success

    def oracle_actions(self) -> np.ndarray:
        """The answer's next token, then <eos>."""
        return self.plan[self._all, np.minimum(self.steps, self._budget - 1)].astype(np.int64)


def _factory(task: str):
    def make(num_envs: int = 1, seed: int = 0, split: str = "train", difficulty: str = "easy", **options):
        opts = resolve_options(Options, PRESETS, difficulty, options, task=task)
        return SequenceEnv(task, num_envs, opts, seed=seed, split=split)

    make.__doc__ = f"Factory of the {task!r} task for the registry: options override the difficulty preset."
    return register(task)(make)


make_copy = _factory("copy")
make_reverse = _factory("reverse")
make_sort = _factory("sort")
