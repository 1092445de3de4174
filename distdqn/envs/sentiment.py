"""Task "sentiment": continue a neutral sentence start positively, scored by VADER behind anti-hacking gates.

Prompt: a neutral start such as `the movie was` (subject + copula). The agent appends words from a small vocabulary
of positive, negative and neutral adjectives, intensifiers and connectives (sentiment words from the VADER
lexicon), then `<eos>`. Scoring of the continuation c (words after the prompt, without `<eos>`), at its end:

    grammar gate     c must parse by the continuation grammar (a DFA lookup per step), else `invalid_reward`
                     (with `end_on_error`, the episode ends at the first token that makes parsing impossible);
    repetition gate  distinct(c) / len(c) >= `min_distinct_ratio`, else `repeat_reward`;
    otherwise        reward = VADER compound(c) in [-1, 1]; success iff compound >= `success_threshold`.

The gates are what keep "great great great great" (compound 0.95) from winning. Scores are cached per token tuple.
Held-out split: (subject, copula) combinations unseen in train. Truncation by the budget gives 0, success 0.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import numpy as np

from distdqn.envs.base import EOS, PAD, TextEnv, Vocab, resolve_options
from distdqn.envs.cfg import DEAD, FINAL, Grammar, compile_grammar
from distdqn.envs.registry import register
from distdqn.envs.tasklib import PromptTable, pad_rows, split_items

SUBJECTS = (
    "the movie",
    "the food",
    "my day",
    "the weather",
    "our trip",
    "the hotel",
    "the new phone",
    "the meeting",
    "the concert",
    "the book",
    "the class",
    "the game",
    "the party",
    "the road",
)
COPULAS = ("was", "is", "seemed", "felt")

# (positive, negative, neutral adjectives, intensifiers) added at each size; sizes are cumulative
WORDS = {
    "easy": (
        "good great nice fun lovely wonderful amazing happy perfect beautiful",
        "bad awful terrible boring sad ugly poor dull horrible annoying",
        "long short loud quiet new old big small normal different",
        "very really so quite",
    ),
    "medium": (
        "excellent fantastic brilliant pleasant cheerful charming delightful awesome",
        "dreadful disappointing miserable painful stupid nasty",
        "early late warm cold green empty full simple",
        "extremely truly",
    ),
    "hard": (
        "calm fresh clean friendly helpful glorious superb exciting sweet bright generous kind splendid joyful",
        "gloomy messy rude noisy tense odd strange",
        "crowded slow cheap dark huge tiny plain",
        "absolutely incredibly rather fairly",
    ),
}
SIZES = ("easy", "medium", "hard")


def lexicon(size: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(positive, negative, neutral, intensifiers) for a vocabulary size, cumulative over smaller sizes."""
    parts: list[list[str]] = [[], [], [], []]
    for s in SIZES[: SIZES.index(size) + 1]:
        for part, words in zip(parts, WORDS[s], strict=True):
            part += words.split()
    return parts[0], parts[1], parts[2], parts[3]


def continuation_grammar(size: str, clauses: int, negation: bool, subclause: bool) -> Grammar:
    """CONT -> ADJP (CONJ ADJP){0..clauses-1} [and SUBJ2 V2 ADJP]; ADJP -> [INT | not] ADJ."""
    pos, neg, neu, ints = lexicon(size)
    rules = {"ADJ": pos + neg + neu, "INT": ints, "CONJ": ["and", "but"]}
    rules["ADJP"] = ["ADJ", "INT ADJ"] + (["not ADJ"] if negation else [])
    chains = [" ".join(["ADJP"] + ["CONJ ADJP"] * k) for k in range(clauses)]
    if subclause:
        rules["SUBJ2"] = ["everyone", "i", "we"]
        rules["V2"] = ["felt", "seemed"]
        chains += [c + " and SUBJ2 V2 ADJP" for c in chains[:2]]
    rules["CONT"] = chains
    return Grammar.from_dict("CONT", rules)


@functools.lru_cache(maxsize=1)
def analyzer():
    """The VADER analyzer, loaded once per process (it reads its lexicon file)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@functools.lru_cache(maxsize=1 << 16)
def compound(text: str) -> float:
    """VADER's compound score of `text`, in [-1, 1] (cached across env instances)."""
    return float(analyzer().polarity_scores(text)["compound"])


@dataclasses.dataclass
class Options:
    vocab_size: Literal["easy", "medium", "hard"] = "easy"  # word list size (cumulative)
    clauses: int = 2  # adjective phrases joined by and/but, at most
    negation: bool = False  # allow "not ADJ"
    subclause: bool = False  # allow a closing "and everyone felt ADJP"
    max_steps: int = 5  # generated-token budget per episode, <eos> included
    end_on_error: bool = True  # end the episode as soon as the continuation cannot parse
    invalid_reward: float = -1.0  # continuation does not parse
    repeat_reward: float = -0.5  # repetition gate failed
    min_distinct_ratio: float = 1.0  # distinct words / words of the continuation, at least (1.0: no repeats)
    success_threshold: float = 0.5  # compound score counted as a success
    test_fraction: float = 0.25  # share of (subject, copula) prompts held out for the test split

    def __post_init__(self):
        if not 1 <= self.clauses <= 4:
            raise ValueError(f"env.options.clauses must lie in [1, 4], got {self.clauses}")
        if self.max_steps < 2:
            raise ValueError(f"env.options.max_steps must be >= 2, got {self.max_steps}")
        for key in ("invalid_reward", "repeat_reward"):
            if not -1.0 <= getattr(self, key) <= 0.0:
                raise ValueError(f"env.options.{key} must lie in [-1, 0], got {getattr(self, key)}")
        if not 0.0 < self.min_distinct_ratio <= 1.0:
            raise ValueError(f"env.options.min_distinct_ratio must lie in (0, 1], got {self.min_distinct_ratio}")
        if not -1.0 < self.success_threshold < 1.0:
            raise ValueError(f"env.options.success_threshold must lie in (-1, 1), got {self.success_threshold}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"env.options.test_fraction must lie in (0, 1), got {self.test_fraction}")


PRESETS = {
    "easy": {"vocab_size": "easy", "clauses": 2, "max_steps": 5, "success_threshold": 0.5},
    "medium": {"vocab_size": "medium", "clauses": 2, "negation": True, "max_steps": 8, "success_threshold": 0.7},
    "hard": {
        "vocab_size": "hard",
        "clauses": 3,
        "negation": True,
        "subclause": True,
        "max_steps": 10,
        "success_threshold": 0.8,
        "min_distinct_ratio": 0.8,
    },
}


class SentimentEnv(TextEnv):
    name = "sentiment"

    def __init__(self, num_envs: int, opts: Options, seed: int = 0, split: str = "train"):
        grammar = continuation_grammar(opts.vocab_size, opts.clauses, opts.negation, opts.subclause)
        prompt_words = sorted({w for s in SUBJECTS for w in s.split()} | set(COPULAS))
        vocab = Vocab([PAD, EOS] + sorted(set(prompt_words) | set(grammar.terminals())))
        max_prompt = max(len(s.split()) for s in SUBJECTS) + 1
        super().__init__(num_envs, vocab, max_prompt + opts.max_steps, opts.max_steps, seed=seed, split=split)
        self.opts = opts
        self.eos_id = vocab.id(EOS)
        self.dfa = compile_grammar(grammar, vocab)
        train, test = split_items([(s, c) for s in SUBJECTS for c in COPULAS], opts.test_fraction)
        self.splits = {"train": train, "test": test}
        self.prompt_table = PromptTable(vocab, [f"{s} {c}".split() for s, c in self.splits[split]])
        self.state = np.zeros(num_envs, dtype=np.int32)
        self.cache: dict[tuple[int, ...], tuple[float, float]] = {}  # continuation ids -> (reward, success)
        self.oracle_plans = self._oracle_plans()
        self.plan = np.zeros(num_envs, dtype=np.int64)
        self.oracle_rng = np.random.default_rng(seed + 1)

    def score(self, ids: tuple[int, ...]) -> tuple[float, float]:
        """(reward, success) of a complete, parsed continuation (token ids without <eos>): the repetition gate,
        then the VADER compound score; cached."""
        hit = self.cache.get(ids)
        if hit is None:
            if not ids or len(set(ids)) / len(ids) < self.opts.min_distinct_ratio:
                hit = (self.opts.repeat_reward, 0.0)
            else:
                c = compound(self.vocab.decode(ids))
                hit = (c, float(c >= self.opts.success_threshold))
            self.cache[ids] = hit
        return hit

    def _reset_slots(self, idx: np.ndarray) -> None:
        self.prompt_table.write(self.tokens, self.length, idx, self.rng)
        self.state[idx] = self.dfa.start
        self.plan[idx] = self.oracle_rng.integers(0, len(self.oracle_plans), size=len(idx))

    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.state = self.dfa.table[self.state, actions]
        terminated = actions == self.eos_id
        if self.opts.end_on_error:
            terminated = terminated | (self.state == DEAD)
        reward = np.where(terminated, np.float32(self.opts.invalid_reward), np.float32(0.0))
        success = np.zeros(self.num_envs, dtype=np.float32)
        for b in np.flatnonzero(self.state == FINAL):  # finished, parsed episodes only: Python per episode is fine
            ids = tuple(self.tokens[b, self.prompt_length[b] : self.length[b] - 1].tolist())
            reward[b], success[b] = self.score(ids)
        return reward, terminated, success

    def _oracle_plans(self) -> np.ndarray:
        """Continuations (+ <eos>) that pass both gates with a margin over the success threshold: positive
        adjectives, optionally intensified, joined by "and"."""
        pos, _, _, ints = lexicon(self.opts.vocab_size)
        cands = [[p] for p in pos] + [[i, p] for i in ints for p in pos]
        cands += [[p, "and", q] for p in pos for q in pos if p != q]
        cands += [[i, p, "and", q] for i in ints[:2] for p in pos[:6] for q in pos if p != q]
        good = []
        for c in cands:
            ids = self.vocab.encode(c)
            if len(c) + 1 > self.max_steps or not self.dfa.accepts(ids):
                continue
            reward, success = self.score(tuple(ids.tolist()))
            if success and reward >= self.opts.success_threshold + 0.02:
                good.append(list(ids) + [self.eos_id])
        if not good:
            raise ValueError(f"no oracle continuation reaches success_threshold={self.opts.success_threshold}")
        return pad_rows(good, self.max_steps)[0]

    def oracle_actions(self) -> np.ndarray:
        """The slot's planned high-scoring continuation (e.g. `wonderful and lovely <eos>`), one token per step."""
        return self.oracle_plans[self.plan, np.minimum(self.steps, self.max_steps - 1)].astype(np.int64)


@register("sentiment")
def make_sentiment_env(
    num_envs: int = 1, seed: int = 0, split: str = "train", difficulty: str = "easy", **options
) -> SentimentEnv:
    return SentimentEnv(num_envs, resolve_options(Options, PRESETS, difficulty, options, "sentiment"), seed, split)
