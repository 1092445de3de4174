"""Wordle task: the agent types 5-letter guesses letter by letter; the env appends green/yellow/gray feedback.

Episode: the prompt is one `<wordle>` token. Every action is a letter; after each 5th letter the guess is scored
and the env appends 5 feedback tokens (`G` right letter and place, `Y` in the word elsewhere, `_` not (more) in the
word; `?` x5 for a guess that is not a word). Per completed guess the reward is `guess_reward`, plus `solve_reward`
when it equals the answer (which ends the episode with success 1), plus `invalid_reward` when it is not in the word
list and `valid_guesses="words"` (the guess is wasted: it counts, but its feedback says nothing). After
`max_guesses` unsolved guesses the episode ends with success 0. A non-letter action ends the episode at once with
`illegal_reward`. The sum of the rewards stays in [-1, 1] with the presets (a deliberate rescaling of the usual
"-1 per guess").

Feedback follows the standard duplicate-letter rule: greens first; then, left to right, a non-green letter is
yellow iff the answer still has an unmatched copy of it, i.e. guess position i is yellow iff
  #{j < i : guess[j] == guess[i], j not green}  <  #{k : answer[k] == guess[i], k not green}.
Computed for a whole batch with 5x5 comparisons (`feedback`). A word is checked against the word list by its
base-27 code and a binary search.

Words: `data/words5.txt` (common English words, most common first). A difficulty's answer pool is the first
`num_answers` words (0 = all); every word of the file is a valid guess. The test split holds out the
`test_fraction` of the pool with the smallest seed-free hashes of their codes.

Three options give a learner something to go on at the medium and hard levels without telling the answer (README,
"Wordle medium", has what they bought: wordle medium 0.00 -> 0.9 on three seeds of five, with demonstrations):
- `action_mask`: the env publishes the letters that keep the current guess a prefix of some word in the list (a
  dictionary keyboard, as the real game refuses a non-word), so every guess is a word. It says nothing of the
  feedback: a policy that only follows it guesses random words (tests/unit/envs/test_wordle.py measures it).
  `mask_repeats` also refuses a word already guessed in the game (per slot, the trie's count of words not yet
  guessed under each prefix), so a policy that keeps typing the same word must type another: a rule of the game's
  economy, not of its answer.
- `solver`: whose words the oracle (`oracle_actions`) chooses among. "answers" (the default) knows the split's
  answer list; "words" knows only the dictionary, as a player does, so its guesses (and the demonstrations a learner
  takes from it, distdqn/demonstrations.py) include words the training split never has as answers. With
  `solver_choice: random` it guesses any word consistent with the feedback so far instead of the most informative
  one: a deterministic solver plays only one game per training answer, which a network learns by heart.

`feedback: letters` changes only how the feedback is written: one token per place naming the letter and its mark
(`aG rY e_ ...`, 78 tokens after the base vocabulary) instead of the mark alone. A Transformer learns the medium
level's demonstrations faster per update with it, a GRU slower (README, "Wordle medium"); off by default (on in
configs/wordle_medium.yaml).
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import Literal

import numpy as np

from distdqn.envs.base import TextEnv, Vocab, resolve_options
from distdqn.envs.registry import register
from distdqn.envs.splits import split_hash

LETTERS = [chr(ord("a") + i) for i in range(26)]
START = "<wordle>"
GRAY, YELLOW, GREEN, INVALID = "_", "Y", "G", "?"
VOCAB_TOKENS = ["<pad>", START, *LETTERS, GRAY, YELLOW, GREEN, INVALID]
WORD_LEN = 5
_LETTER0 = 2  # id of "a"
_GRAY0 = _LETTER0 + 26  # ids of gray, yellow, green = _GRAY0 + feedback code 0, 1, 2
_INVALID_ID = _GRAY0 + 3
# feedback "letters": one token per (letter, mark), after the base vocabulary: id _MARKED0 + 3 * letter + mark
MARKED_TOKENS = [f"{letter}{mark}" for letter in LETTERS for mark in (GRAY, YELLOW, GREEN)]
_MARKED0 = len(VOCAB_TOKENS)
_POW27 = 27 ** np.arange(WORD_LEN - 1, -1, -1, dtype=np.int64)
_EARLIER = np.tril(np.ones((WORD_LEN, WORD_LEN), dtype=bool), k=-1)  # [i, j]: j < i
_SALT = 3
_ORACLE_CACHE_SIZE = 100_000  # histories whose candidate words the oracle keeps (per env)


@functools.lru_cache(maxsize=1)
def load_words() -> np.ndarray:
    """All words of `data/words5.txt` in file order, as letter indices [N, 5] int64 (read-only)."""
    text = resources.files("distdqn.envs").joinpath("data/words5.txt").read_text()
    words = [w for w in text.split() if w]
    letters = np.array([[ord(c) - ord("a") for c in w] for w in words], dtype=np.int64)
    letters.setflags(write=False)
    return letters


def word_codes(letters: np.ndarray) -> np.ndarray:
    """Base-27 code of words [..., 5] (letter index + 1 per digit; 0 never occurs)."""
    return (np.asarray(letters, np.int64) + 1) @ _POW27


def feedback(guess: np.ndarray, answer: np.ndarray) -> np.ndarray:
    """Wordle feedback [..., 5] int8 (0 gray, 1 yellow, 2 green) of broadcastable letter arrays [..., 5]."""
    guess, answer = np.broadcast_arrays(guess, answer)
    green = guess == answer
    open_ = ~green[..., None, :]  # [..., 1, 5]: non-green positions
    avail = ((guess[..., :, None] == answer[..., None, :]) & open_).sum(-1)  # unmatched copies in the answer
    prior = ((guess[..., :, None] == guess[..., None, :]) & open_ & _EARLIER).sum(-1)  # earlier same letters
    yellow = ~green & (prior < avail)
    return np.where(green, 2, yellow).astype(np.int8)


_POW3 = 3 ** np.arange(WORD_LEN, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def feedback_table() -> np.ndarray:
    """[N, N] uint8: the feedback of word g guessed against word w of the list as one code, sum_k 3^k * mark_k (the
    oracle's lookup; built once per process, about a second)."""
    words = load_words()
    table = np.empty((len(words), len(words)), np.uint8)
    for i in range(0, len(words), 32):
        table[i : i + 32] = feedback(words[i : i + 32, None, :], words[None, :, :]).astype(np.int64) @ _POW3
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=1)
def word_index() -> dict[int, int]:
    """Each word's `word_codes` code -> its row in `load_words()`."""
    return {code: i for i, code in enumerate(word_codes(load_words()).tolist())}


@dataclasses.dataclass
class Options:
    """Options of the Wordle task (see the module docstring for the rules)."""

    num_answers: int = 40  # answer pool = the first num_answers words of the list (0 = all), >= 10
    test_fraction: float = 0.2  # share of the answer pool held out for the test split, in (0, 1)
    max_guesses: int = 6  # guesses per episode, 1..10
    valid_guesses: Literal["any", "words"] = "any"  # "words": a guess not in the word list is wasted
    guess_reward: float = -0.1  # reward of every completed guess, in [-1, 0]
    solve_reward: float = 1.0  # added when the guess is the answer, in (0, 2]
    invalid_reward: float = -0.1  # added for a guess outside the word list (valid_guesses="words"), in [-1, 0]
    illegal_reward: float = -1.0  # reward of a non-letter action, which ends the episode, in [-1, 0]
    action_mask: bool = False  # publish the letters that keep the guess a prefix of a word in the list
    mask_repeats: bool = False  # with action_mask: only words not yet guessed in this game (no guess made twice)
    solver: Literal["answers", "words"] = "answers"  # the oracle's candidates: the split's answers, or all words
    solver_choice: Literal["best", "random"] = "best"  # the most informative candidate, or any (varied games)
    # how a scored guess's feedback is written: "marks", one mark token per place (`G`, `Y`, `_`); or "letters",
    # one token per place naming the letter and its mark (`aG`, `rY`, `e_`: 78 more tokens), so a network reads
    # each constraint from one token instead of pairing a mark with the letter five tokens before it
    feedback: Literal["marks", "letters"] = "marks"

    def __post_init__(self):
        total = len(load_words())
        if self.num_answers != 0 and not 10 <= self.num_answers <= total:
            raise ValueError(f"env.options.num_answers must be 0 (all) or in 10..{total}, got {self.num_answers}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"env.options.test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 1 <= self.max_guesses <= 10:
            raise ValueError(f"env.options.max_guesses must be in 1..10, got {self.max_guesses}")
        for key in ("guess_reward", "invalid_reward", "illegal_reward"):
            if not -1.0 <= getattr(self, key) <= 0.0:
                raise ValueError(f"env.options.{key} must be in [-1, 0], got {getattr(self, key)}")
        if not 0.0 < self.solve_reward <= 2.0:
            raise ValueError(f"env.options.solve_reward must be in (0, 2], got {self.solve_reward}")
        if self.mask_repeats and not self.action_mask:
            raise ValueError("env.options.mask_repeats refines the action mask: set env.options.action_mask too")


PRESETS: dict[str, dict] = {
    "easy": {"num_answers": 40, "valid_guesses": "any"},
    "medium": {"num_answers": 300, "valid_guesses": "words"},
    "hard": {"num_answers": 0, "valid_guesses": "words"},
}


def split_answers(options: Options, split: str) -> np.ndarray:
    """The answer words [N, 5] of a split: deterministic and independent of any seed."""
    words = load_words()
    pool = words if options.num_answers == 0 else words[: options.num_answers]
    order = np.argsort(split_hash(word_codes(pool), _SALT), kind="stable")
    num_test = max(1, round(options.test_fraction * len(pool)))
    held_out = np.zeros(len(pool), dtype=bool)
    held_out[order[:num_test]] = True
    return pool[held_out if split == "test" else ~held_out]


@functools.lru_cache(maxsize=1)
def word_trie() -> np.ndarray:
    """The prefix tree of the word list as a table child [nodes + 1, 26] int32: node 0 is the empty prefix,
    child[n, c] the node of prefix n + letter c, and the last row a sink for prefixes of no word (the sink's
    children are the sink)."""
    nodes: dict[tuple[int, ...], int] = {(): 0}
    for word in load_words().tolist():
        for k in range(1, WORD_LEN + 1):
            nodes.setdefault(tuple(word[:k]), len(nodes))
    sink = len(nodes)
    child = np.full((sink + 1, 26), sink, dtype=np.int32)
    for prefix, node in nodes.items():
        if prefix:
            child[nodes[prefix[:-1]], prefix[-1]] = node
    child.setflags(write=False)
    return child


@functools.lru_cache(maxsize=1)
def trie_word_counts() -> np.ndarray:
    """[nodes + 1] int32: how many words of the list each `word_trie` node is a prefix of (0 for the sink)."""
    counts = np.bincount(trie_paths(load_words()).ravel(), minlength=len(word_trie())).astype(np.int32)
    counts.setflags(write=False)
    return counts


def trie_paths(words: np.ndarray) -> np.ndarray:
    """[N, 6] the `word_trie` nodes of each word's prefixes, from the root (the sink past a non-word prefix)."""
    child = word_trie()
    path = np.zeros((len(words), WORD_LEN + 1), dtype=np.int64)
    for k in range(WORD_LEN):
        path[:, k + 1] = child[path[:, k], words[:, k]]
    return path


class WordleEnv(TextEnv):
    """Batched letter-level Wordle; see the module docstring."""

    name = "wordle"

    def __init__(self, num_envs: int, options: Options, seed: int = 0, split: str = "train"):
        self.options = options
        self.answers = split_answers(options, split)
        self._valid_codes = np.sort(word_codes(load_words()))
        tokens = VOCAB_TOKENS + (MARKED_TOKENS if options.feedback == "letters" else [])
        super().__init__(
            num_envs,
            Vocab(tokens),
            max_len=1 + 2 * WORD_LEN * options.max_guesses,
            max_steps=WORD_LEN * options.max_guesses,
            seed=seed,
            split=split,
        )
        self.answer = np.zeros((num_envs, WORD_LEN), dtype=np.int64)
        self._oracle_word = np.zeros((num_envs, WORD_LEN), dtype=np.int64)
        self._oracle_cache: dict[bytes, np.ndarray] = {}  # history -> consistent candidates
        self._best_cache: dict[bytes, np.ndarray] = {}  # history -> the most informative of them
        self._oracle_rng = np.random.default_rng([seed, 0x5017E])  # solver_choice: random; apart from the prompts
        index = word_index()  # the solver's candidates as rows of the word list
        solver_words = self.answers if options.solver == "answers" else load_words()
        self._solver_index = np.array([index[c] for c in word_codes(solver_words).tolist()], np.int64)
        self.has_action_mask = options.action_mask
        self._trie = word_trie()
        self._sink = len(self._trie) - 1
        self._node = np.zeros(num_envs, dtype=np.int64)  # each slot's current guess as a node of the trie
        # mask_repeats: per slot, the words under each trie node not yet guessed in this game
        self._unguessed = np.tile(trie_word_counts(), (num_envs, 1)) if options.mask_repeats else None

    def _reset_slots(self, idx: np.ndarray) -> None:
        self.answer[idx] = self.answers[self.rng.integers(0, len(self.answers), size=len(idx))]
        self.tokens[idx, 0] = 1  # <wordle>
        self.length[idx] = 1
        self._node[idx] = 0
        if self._unguessed is not None:
            self._unguessed[idx] = trie_word_counts()

    def is_word(self, letters: np.ndarray) -> np.ndarray:
        """Bool [...]: which letter arrays [..., 5] are in the word list."""
        codes = word_codes(letters)
        pos = np.searchsorted(self._valid_codes, codes).clip(max=len(self._valid_codes) - 1)
        return self._valid_codes[pos] == codes

    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = self.options
        is_letter = (actions >= _LETTER0) & (actions < _LETTER0 + 26)
        reward = np.where(is_letter, 0.0, o.illegal_reward)
        terminated = ~is_letter
        success = np.zeros(self.num_envs)
        letter = np.where(is_letter, actions - _LETTER0, 0)
        self._node = np.where(is_letter, self._trie[self._node, letter], self._sink)
        self._node[self.steps % WORD_LEN == 0] = 0  # a completed guess: the next one starts at the root
        idx = np.flatnonzero(is_letter & (self.steps % WORD_LEN == 0))  # slots that completed a guess
        if idx.size:
            guess = self.tokens[idx[:, None], self.length[idx, None] - WORD_LEN + np.arange(WORD_LEN)] - _LETTER0
            solved = (guess == self.answer[idx]).all(axis=1)
            valid = self.is_word(guess) if o.valid_guesses == "words" else np.ones(len(idx), dtype=bool)
            marks = feedback(guess, self.answer[idx]).astype(np.int64)
            marks = _MARKED0 + 3 * guess + marks if o.feedback == "letters" else _GRAY0 + marks
            marks = np.where(valid[:, None], marks, _INVALID_ID)
            self._append(idx, marks)
            if self._unguessed is not None:  # a word's first guess takes it out of the rest of the game's keyboard
                path = trie_paths(guess)
                first = self._unguessed[idx, path[:, -1]] > 0  # a word of the list, not guessed before
                rows = idx[first]
                self._unguessed[rows[:, None], path[first]] -= 1
            reward[idx] = o.guess_reward + solved * o.solve_reward + ~valid * o.invalid_reward
            terminated[idx] = solved | (self.steps[idx] >= WORD_LEN * o.max_guesses)
            success[idx] = solved
        return reward.astype(np.float32), terminated, success.astype(np.float32)

    def _action_mask(self) -> np.ndarray:
        """[B, V] bool: the letters after which the current guess is still the prefix of a word in the list (with
        `mask_repeats`, of a word not guessed yet in this game)."""
        mask = np.zeros((self.num_envs, self.vocab_size), dtype=bool)
        children = self._trie[self._node]  # [B, 26]
        if self._unguessed is None:
            mask[:, _LETTER0 : _LETTER0 + 26] = children != self._sink
        else:
            mask[:, _LETTER0 : _LETTER0 + 26] = self._unguessed[self._all[:, None], children] > 0
        return mask

    # ---- oracle (per-slot Python; for tests, baselines and demonstrations) ------------------------------------
    def oracle_actions(self) -> np.ndarray:
        """Next letter of a solver's guess: at each new guess, among the candidate words (`solver`: this split's
        answers, or every word in the list) consistent with the feedback so far, the one splitting the others into
        the most feedback patterns (first one on ties; probes: the first 200 candidates), or with `solver_choice:
        random` one of them at random (Wordle's hard mode played by chance: varied games to learn from)."""
        pos = self.steps % WORD_LEN
        for b in np.flatnonzero(pos == 0):
            history = self.tokens[b, 1 : self.length[b]].reshape(-1, 2 * WORD_LEN)
            candidates = load_words()[self._consistent(history)]
            if self.options.solver_choice == "random":
                self._oracle_word[b] = candidates[self._oracle_rng.integers(len(candidates))]
            else:
                key = history.tobytes()
                if key not in self._best_cache:
                    self._best_cache[key] = _most_informative(candidates)
                self._oracle_word[b] = self._best_cache[key]
        return _LETTER0 + self._oracle_word[self._all, pos]

    def _consistent(self, history: np.ndarray) -> np.ndarray:
        """The solver's candidate words consistent with the feedback of every guess in `history` [g, 10], as rows
        of `load_words()`: those of history[:-1] (cached per history, so a game filters only by its newest guess)
        that give the last guess's marks."""
        if len(history) == 0:
            return self._solver_index
        key = history.tobytes()
        candidates = self._oracle_cache.get(key)
        if candidates is None:
            candidates = self._consistent(history[:-1])
            guess, marks = history[-1, :WORD_LEN] - _LETTER0, _marks_of(history[-1, WORD_LEN:])
            if (marks <= 2).all():  # skip wasted (invalid) guesses
                row = word_index().get(int(word_codes(guess)))
                if row is None:  # not a word of the list (valid_guesses: any)
                    keep = (feedback(guess, load_words()[candidates]) == marks).all(axis=1)
                else:
                    keep = feedback_table()[row, candidates] == int(marks @ _POW3)
                candidates = candidates[keep]
            if len(self._oracle_cache) >= _ORACLE_CACHE_SIZE:  # random play seldom repeats a history: start over
                self._oracle_cache.clear()
            self._oracle_cache[key] = candidates
        return candidates


def _marks_of(tokens: np.ndarray) -> np.ndarray:
    """Mark codes (0 gray, 1 yellow, 2 green, 3 invalid) of feedback tokens in either `feedback` format."""
    return np.where(tokens >= _MARKED0, (tokens - _MARKED0) % 3, tokens - _GRAY0)


def _most_informative(candidates: np.ndarray) -> np.ndarray:
    """The candidate (among the first 200) splitting all of them into the most feedback patterns; the first on ties."""
    if len(candidates) <= 2:
        return candidates[0]
    probes = candidates[:200]
    codes = feedback(probes[:, None, :], candidates[None, :, :]).astype(np.int64) @ (3 ** np.arange(WORD_LEN))
    distinct = (np.diff(np.sort(codes, axis=1), axis=1) != 0).sum(axis=1)
    return probes[int(distinct.argmax())]


@register("wordle")
def make_wordle(num_envs: int = 1, seed: int = 0, split: str = "train", difficulty: str = "easy", **options):
    """Factory for the registry: options override the difficulty preset."""
    opts = resolve_options(Options, PRESETS, difficulty, options, task="wordle")
    return WordleEnv(num_envs, opts, seed=seed, split=split)
