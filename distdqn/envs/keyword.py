"""Task "keyword" (CommonGen-like): write one plausible, grammatical sentence that uses every prompt concept.

Prompt: `c1 [c2 [c3]] <sep>` (nouns and verbs of the typed lexicon, `distdqn.envs.lexicon`). Per step the env does
two DFA lookups (the syntactic grammar and the typed one with selectional restrictions) and one [B, 3] comparison
for concept coverage. Rewards:

    concept_credit / n    at the step a prompt concept first appears, while the sentence is still plausible (shaping)
    1 - concept_credit    at the end of a plausible sentence that contains every concept (success = 1, the only
                          success; the episode's return is then exactly 1)
    0                     at the end of a plausible sentence missing some concept (it kept its partial credit)
    implausible_reward    at the end of a grammatical sentence that breaks a selectional restriction ("the red
                          park sleeps"), added to any credit already paid
    invalid_reward        at the end of an ungrammatical sentence (or `<eos>` before the sentence is complete)

With `end_on_error` the episode ends at the first token after which the sentence can no longer be grammatical
(or plausible), with the matching reward. Truncation by the budget gives 0 and success 0.

With `action_mask` the env publishes, per step, the tokens after which the sentence is still plausible and can still
end (`<eos>` included) within the remaining budget: grammar-constrained decoding. The mask says nothing of the
concepts, so a policy that only follows it writes plausible sentences without them and scores 0
(tests/unit/envs/test_keyword.py checks it).

Prompts come from "frames" (subject verb [object | preposition place]) that fit the budget: a concept set is a
subset of a frame's content words, so every prompt has a solution, and the frame's sentence is the oracle.
Held-out split: concept combinations unseen in train, made of concepts that all occur in train prompts.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Literal

import numpy as np

from distdqn.envs.base import EOS, PAD, TextEnv, Vocab, resolve_options
from distdqn.envs.cfg import DEAD, FINAL, compile_grammar
from distdqn.envs.lexicon import LEXICONS, Lexicon, sentence_grammar
from distdqn.envs.registry import register
from distdqn.envs.tasklib import PromptTable, pad_rows, split_items

SEP = "<sep>"
MAX_CONCEPTS = 3


@dataclasses.dataclass
class Options:
    lexicon: Literal["easy", "medium", "hard"] = "easy"  # word list size (distdqn.envs.lexicon)
    phrases: bool = False  # allow adverbs and prepositional phrases in the grammar
    objects: bool = False  # concepts may come from objects / places (frames with a transitive verb or a PP)
    min_concepts: int = 2  # concepts per prompt, at least
    max_concepts: int = 2  # concepts per prompt, at most (<= 3)
    max_steps: int = 8  # generated-token budget per episode, <eos> included
    end_on_error: bool = True  # end the episode as soon as the sentence cannot become grammatical and plausible
    invalid_reward: float = -1.0  # ungrammatical sentence
    implausible_reward: float = -0.5  # grammatical but semantically implausible sentence
    concept_credit: float = 0.3  # shaping: total reward paid as the concepts appear (share of the success reward)
    test_fraction: float = 0.25  # share of the concept sets held out for the test split
    action_mask: bool = False  # publish the tokens that keep the sentence plausible and finishable in the budget

    def __post_init__(self):
        if not 1 <= self.min_concepts <= MAX_CONCEPTS:
            raise ValueError(f"env.options.min_concepts must lie in [1, {MAX_CONCEPTS}], got {self.min_concepts}")
        if not self.min_concepts <= self.max_concepts <= MAX_CONCEPTS:
            raise ValueError(
                f"env.options.max_concepts must lie in [min_concepts={self.min_concepts}, {MAX_CONCEPTS}], "
                f"got {self.max_concepts}"
            )
        if self.max_steps < 4:
            raise ValueError(f"env.options.max_steps must be >= 4, got {self.max_steps}")
        for key in ("invalid_reward", "implausible_reward"):
            if not -1.0 <= getattr(self, key) <= 0.0:
                raise ValueError(f"env.options.{key} must lie in [-1, 0], got {getattr(self, key)}")
        if not 0.0 <= self.concept_credit < 1.0:
            raise ValueError(f"env.options.concept_credit must lie in [0, 1), got {self.concept_credit}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"env.options.test_fraction must lie in (0, 1), got {self.test_fraction}")


PRESETS = {
    "easy": {
        "lexicon": "easy",
        "phrases": False,
        "objects": False,
        "min_concepts": 2,
        "max_concepts": 2,
        "max_steps": 8,
    },
    "medium": {
        "lexicon": "medium",
        "phrases": True,
        "objects": True,
        "min_concepts": 2,
        "max_concepts": 3,
        "max_steps": 10,
    },
    "hard": {
        "lexicon": "hard",
        "phrases": True,
        "objects": True,
        "min_concepts": 3,
        "max_concepts": 3,
        "max_steps": 12,
    },
}


def frames(lex: Lexicon, objects: bool, max_words: int) -> list[tuple[list[str], tuple[str, ...]]]:
    """(sentence words, content words) of every frame sentence with at most `max_words` words."""
    out = []
    for subj_t, subjects in lex.nouns.items():
        for subj in subjects:
            for v, ss in lex.verbs_i.items():
                if subj_t in ss:
                    out.append((["the", subj, v], (subj, v)))
                    if objects:
                        for p, ps in lex.preps.items():
                            out += [(["the", subj, v, p, "the", n], (subj, v, n)) for t in ps for n in lex.nouns[t]]
            if objects:
                for v, (ss, os) in lex.verbs_t.items():
                    if subj_t in ss:
                        out += [
                            (["the", subj, v, "the", n], (subj, v, n)) for t in os for n in lex.nouns[t] if n != subj
                        ]
    return [f for f in out if len(f[0]) <= max_words]


@functools.lru_cache(maxsize=16)
def concept_sets(
    lex_name: str, phrases: bool, objects: bool, lo: int, hi: int, max_words: int
) -> dict[tuple[str, ...], list[str]]:
    """Concept tuple (in sentence order) -> the first frame sentence that contains it; cached per options."""
    lex = LEXICONS[lex_name]
    if not phrases:
        lex = dataclasses.replace(lex, adverbs=(), preps={})
    seen: dict[frozenset, tuple[tuple[str, ...], list[str]]] = {}
    for words, content in frames(lex, objects, max_words):
        for k in range(lo, hi + 1):
            for combo in itertools.combinations(content, k):
                seen.setdefault(frozenset(combo), (combo, words))
    return dict(seen.values())


class KeywordEnv(TextEnv):
    name = "keyword"

    def __init__(self, num_envs: int, opts: Options, seed: int = 0, split: str = "train"):
        lex = LEXICONS[opts.lexicon]
        if not opts.phrases:
            lex = dataclasses.replace(lex, adverbs=(), preps={})
        vocab = Vocab([PAD, EOS, SEP] + lex.words())
        super().__init__(
            num_envs, vocab, max_len=MAX_CONCEPTS + 1 + opts.max_steps, max_steps=opts.max_steps, seed=seed, split=split
        )
        self.opts = opts
        self.eos_id = vocab.id(EOS)
        self.syntax = compile_grammar(sentence_grammar(lex, typed=False), vocab)
        self.semantics = compile_grammar(sentence_grammar(lex, typed=True), vocab)
        sets = concept_sets(
            opts.lexicon, opts.phrases, opts.objects, opts.min_concepts, opts.max_concepts, opts.max_steps - 1
        )
        train, test = split_items(list(sets), opts.test_fraction)
        self.splits = {"train": train, "test": test}
        chosen = self.splits[split]
        self.prompt_table = PromptTable(vocab, [c + (SEP,) for c in chosen])
        # per prompt: concept ids padded with -1 (never equal to an action), and the oracle sentence + <eos>
        concepts, _ = pad_rows([vocab.encode(c) for c in chosen], MAX_CONCEPTS)
        self.prompt_concepts = np.where(
            np.arange(MAX_CONCEPTS)[None, :] < self.prompt_table.lengths[:, None] - 1, concepts, -1
        )
        self.prompt_plan, _ = pad_rows([list(vocab.encode(sets[c])) + [self.eos_id] for c in chosen], opts.max_steps)
        self.syn_state = np.zeros(num_envs, dtype=np.int32)
        self.sem_state = np.zeros(num_envs, dtype=np.int32)
        self.concepts = np.full((num_envs, MAX_CONCEPTS), -1, dtype=np.int32)
        self.covered = np.zeros((num_envs, MAX_CONCEPTS), dtype=bool)
        self.prompt_id = np.zeros(num_envs, dtype=np.int64)
        self.credit = np.zeros(num_envs, dtype=np.float32)  # concept_credit / number of concepts, per slot
        self.has_action_mask = opts.action_mask
        # [S, V]: fewest tokens to the end of a plausible sentence after reading token v in state s (`<eos>` counted)
        self._dist_after = self.semantics.dist[self.semantics.table]

    def _reset_slots(self, idx: np.ndarray) -> None:
        pid = self.prompt_table.write(self.tokens, self.length, idx, self.rng)
        self.prompt_id[idx] = pid
        self.syn_state[idx] = self.syntax.start
        self.sem_state[idx] = self.semantics.start
        self.concepts[idx] = self.prompt_concepts[pid]
        self.covered[idx] = self.prompt_concepts[pid] < 0  # unused concept columns count as covered
        self.credit[idx] = self.opts.concept_credit / (self.prompt_table.lengths[pid] - 1)

    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.syn_state = self.syntax.table[self.syn_state, actions]
        self.sem_state = self.semantics.table[self.sem_state, actions]
        new = (self.concepts == actions[:, None]) & ~self.covered  # [B, 3]: concepts first used by this token
        self.covered |= new
        implausible = self.sem_state == DEAD  # includes ungrammatical (the typed language is a sublanguage)
        terminated = actions == self.eos_id
        if self.opts.end_on_error:
            terminated = terminated | implausible
        success = (self.sem_state == FINAL) & self.covered.all(axis=1)
        reward = (self.credit * new.sum(axis=1) * ~implausible).astype(np.float32)
        if terminated.any():
            end = np.select(
                [success, self.sem_state == FINAL, self.syn_state == DEAD, implausible],
                [1.0 - self.opts.concept_credit, 0.0, self.opts.invalid_reward, self.opts.implausible_reward],
                0.0,
            )
            reward += np.where(terminated, end, 0.0).astype(np.float32)
        return reward, terminated, success.astype(np.float32)

    def _action_mask(self) -> np.ndarray:
        """[B, V] bool: tokens after which a plausible sentence can still be finished in the remaining budget."""
        remaining = self.max_steps - self.steps - 1  # tokens left after this one
        return self._dist_after[self.sem_state] <= remaining[:, None]

    def oracle_actions(self) -> np.ndarray:
        """The frame sentence of each slot's prompt (e.g. `the dog runs <eos>`), one token per step."""
        return self.prompt_plan[self.prompt_id, np.minimum(self.steps, self.max_steps - 1)].astype(np.int64)


@register("keyword")
def make_keyword_env(
    num_envs: int = 1, seed: int = 0, split: str = "train", difficulty: str = "easy", **options
) -> KeywordEnv:
    return KeywordEnv(num_envs, resolve_options(Options, PRESETS, difficulty, options, "keyword"), seed, split)
