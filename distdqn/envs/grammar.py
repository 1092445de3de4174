"""Task "grammar": generate a sentence of a small typed context-free language, given its required opening words.

Prompt: `<s> w1 .. wk` (k = `opening_words`); the sentence is the opening followed by the generated words, ended by
`<eos>`. Validity is tracked per step by the compiled DFA (`distdqn.envs.cfg`): one table lookup per token.

Reward (at the end of the sentence; 0 on every other step):
    +1                    the sentence is in the language (success = 1),
    `invalid_reward`      it is not (`<eos>` in a non-accepting state; with `end_on_error`, the episode also ends
                          at the first token after which no completion exists),
    1 - `novelty_bonus`   a valid sentence that is among the last `novelty_window` valid sentences of this env
                          instance (all slots share the window), so a policy that repeats one sentence earns less.
Truncation by the budget gives 0 and success 0.

Held-out split: the openings (e.g. "the dog", "a happy") are split so that test openings are unseen combinations
of words that all occur in train openings.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from distdqn.envs.base import EOS, PAD, TextEnv, Vocab, resolve_options
from distdqn.envs.cfg import DEAD, FINAL, compile_grammar, feasible_actions, random_feasible
from distdqn.envs.lexicon import LEXICONS, sentence_grammar
from distdqn.envs.registry import register
from distdqn.envs.tasklib import PromptTable, row_hash, split_items

BOS = "<s>"


@dataclasses.dataclass
class Options:
    lexicon: Literal["easy", "medium", "hard"] = "easy"  # word list size (distdqn.envs.lexicon)
    phrases: bool = False  # allow adverbs and prepositional phrases (longer sentences)
    opening_words: int = 2  # words of the sentence given in the prompt (2 or 3)
    max_steps: int = 6  # generated-token budget per episode, <eos> included
    end_on_error: bool = True  # end the episode (with invalid_reward) as soon as no valid completion exists
    invalid_reward: float = -1.0  # reward for an invalid sentence
    novelty_bonus: float = 0.0  # a repeated valid sentence earns 1 - novelty_bonus
    novelty_window: int = 1024  # how many recent valid sentences count as "recent"
    test_fraction: float = 0.25  # share of the openings held out for the test split

    def __post_init__(self):
        if self.opening_words not in (2, 3):
            raise ValueError(f"env.options.opening_words must be 2 or 3, got {self.opening_words}")
        if self.max_steps < 2:
            raise ValueError(f"env.options.max_steps must be >= 2, got {self.max_steps}")
        if not -1.0 <= self.invalid_reward <= 0.0:
            raise ValueError(f"env.options.invalid_reward must lie in [-1, 0], got {self.invalid_reward}")
        if not 0.0 <= self.novelty_bonus <= 1.0:
            raise ValueError(f"env.options.novelty_bonus must lie in [0, 1], got {self.novelty_bonus}")
        if self.novelty_window < 1:
            raise ValueError(f"env.options.novelty_window must be >= 1, got {self.novelty_window}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"env.options.test_fraction must lie in (0, 1), got {self.test_fraction}")


PRESETS = {
    "easy": {"lexicon": "easy", "phrases": False, "opening_words": 2, "max_steps": 6},
    "medium": {"lexicon": "medium", "phrases": True, "opening_words": 2, "max_steps": 10},
    "hard": {
        "lexicon": "hard",
        "phrases": True,
        "opening_words": 2,
        "max_steps": 12,
        "end_on_error": False,
        "novelty_bonus": 0.5,
    },
}


def _grammar(opts: Options):
    lex = LEXICONS[opts.lexicon]
    if not opts.phrases:
        lex = dataclasses.replace(lex, adverbs=(), preps={})
    return lex, sentence_grammar(lex, typed=True)


def openings(dfa, vocab: Vocab, k: int, max_steps: int) -> list[tuple[str, ...]]:
    """Every k-word prefix of the language that can still be completed within `max_steps` tokens."""
    words = [i for i, t in enumerate(vocab.tokens) if t not in (PAD, EOS, BOS)]
    frontier = [((), dfa.start)]
    for _ in range(k):
        frontier = [(p + (w,), int(dfa.table[s, w])) for p, s in frontier for w in words if dfa.table[s, w] != DEAD]
    return [tuple(vocab.tokens[w] for w in p) for p, s in frontier if dfa.dist[s] <= max_steps]


class GrammarEnv(TextEnv):
    name = "grammar"

    def __init__(self, num_envs: int, opts: Options, seed: int = 0, split: str = "train"):
        lex, grammar = _grammar(opts)
        vocab = Vocab([PAD, EOS, BOS] + lex.words())
        super().__init__(
            num_envs,
            vocab,
            max_len=1 + opts.opening_words + opts.max_steps,
            max_steps=opts.max_steps,
            seed=seed,
            split=split,
        )
        self.opts = opts
        self.dfa = compile_grammar(grammar, vocab)
        self.eos_id = vocab.id(EOS)
        train, test = split_items(openings(self.dfa, vocab, opts.opening_words, opts.max_steps), opts.test_fraction)
        self.splits = {"train": train, "test": test}
        self.prompt_table = PromptTable(vocab, [(BOS,) + o for o in self.splits[split]])
        self.prompt_state = self.dfa.run_batch(self.prompt_table.tokens[:, 1:])  # DFA state after each opening
        self.state = np.zeros(num_envs, dtype=np.int32)
        self.recent = np.zeros(opts.novelty_window, dtype=np.uint64)  # ring of recent valid-sentence hashes
        self.recent_pos = 0
        self.oracle_rng = np.random.default_rng(seed + 1)

    def _reset_slots(self, idx: np.ndarray) -> None:
        pid = self.prompt_table.write(self.tokens, self.length, idx, self.rng)
        self.state[idx] = self.prompt_state[pid]

    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.state = self.dfa.table[self.state, actions]
        valid = self.state == FINAL
        terminated = actions == self.eos_id
        if self.opts.end_on_error:
            terminated |= self.state == DEAD
        reward = np.where(terminated, np.float32(self.opts.invalid_reward), np.float32(0.0))
        reward[valid] = 1.0
        if self.opts.novelty_bonus > 0 and valid.any():
            reward[valid] -= self.opts.novelty_bonus * self._repeated(np.flatnonzero(valid))
        return reward, terminated, valid.astype(np.float32)

    def _repeated(self, idx: np.ndarray) -> np.ndarray:
        """Whether each finished sentence (opening + words, no <s>/<eos>) is in the recent window; then record it."""
        h = row_hash(self.tokens[idx], np.ones(len(idx), np.int64), self.length[idx] - 1)
        seen = np.isin(h, self.recent)
        n = min(len(h), len(self.recent))
        pos = (self.recent_pos + np.arange(n)) % len(self.recent)
        self.recent[pos] = h[-n:]
        self.recent_pos = int((self.recent_pos + n) % len(self.recent))
        return seen.astype(np.float32)

    def oracle_actions(self) -> np.ndarray:
        """A random valid completion: any token after which the sentence can still be finished within budget."""
        remaining = np.minimum(self.max_steps - self.steps, self.max_len - self.length)
        return random_feasible(feasible_actions(self.dfa, self.state, remaining), self.oracle_rng)


@register("grammar")
def make_grammar_env(
    num_envs: int = 1, seed: int = 0, split: str = "train", difficulty: str = "easy", **options
) -> GrammarEnv:
    return GrammarEnv(num_envs, resolve_options(Options, PRESETS, difficulty, options, "grammar"), seed, split)
