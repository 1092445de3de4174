"""Text forms of built-in tasks (`keyword_text`, `sentiment_text`): the same prompts, splits and judges as `keyword`
and `sentiment`, stated over strings so they run in any tokenizer's id space (`distdqn.envs.text`).

A generated string is split into words; a word outside the task's lexicon makes the text ungrammatical. The judge
is the word-level task's own (its grammar DFAs, its VADER score), read once per finished episode. The rewards are
the word-level task's terminal ones (no per-token shaping: a string is only judged when it ends):

    keyword_text    1 for a plausible sentence with every concept; 0 plausible but missing one; the task's
                    implausible_reward / invalid_reward otherwise
    sentiment_text  VADER compound of a parsed continuation that passes the repetition gate (success at the
                    threshold); repeat_reward / invalid_reward otherwise
"""

from __future__ import annotations

from distdqn.envs.base import EOS, PAD, resolve_options
from distdqn.envs.cfg import FINAL
from distdqn.envs.keyword import PRESETS as KEYWORD_PRESETS
from distdqn.envs.keyword import SEP, KeywordEnv
from distdqn.envs.keyword import Options as KeywordOptions
from distdqn.envs.registry import register
from distdqn.envs.sentiment import PRESETS as SENTIMENT_PRESETS
from distdqn.envs.sentiment import Options as SentimentOptions
from distdqn.envs.sentiment import SentimentEnv
from distdqn.envs.text import TextTask


def _ids(env, words: list[str]) -> list[int] | None:
    """The word-level env's ids of `words`, or None when one is not in its vocabulary."""
    index = env.vocab.index
    if any(w not in index or w in (PAD, EOS, SEP) for w in words):
        return None
    return [index[w] for w in words]


def _lexicon(env) -> list[str]:
    return [t for t in env.vocab.tokens if t not in (PAD, EOS, SEP)]


@register("keyword_text")
class KeywordText(TextTask):
    """Prompt `dog runs :` (the concepts, then a colon); answer: one plausible sentence using every concept."""

    def __init__(self, difficulty: str = "easy", **options):
        opts = resolve_options(KeywordOptions, KEYWORD_PRESETS, difficulty, options, "keyword_text")
        self.ref = {split: KeywordEnv(1, opts, split=split) for split in ("train", "test")}
        self.max_new_tokens = opts.max_steps
        self.opts = opts
        self.concepts = {self._prompt(c): list(c) for env in self.ref.values() for c in env.splits[env.split]}

    @staticmethod
    def _prompt(concepts) -> str:
        return " ".join(concepts) + " :"

    def prompts(self, split: str) -> list[str]:
        env = self.ref[split]
        return [self._prompt(c) for c in env.splits[split]]

    def score(self, prompt: str, text: str) -> tuple[float, float]:
        env = self.ref["train"]
        ids = _ids(env, text.split())
        if ids is None:
            return self.opts.invalid_reward, 0.0
        ids.append(env.eos_id)
        syntax, semantics = env.syntax.run(ids), env.semantics.run(ids)
        if semantics == FINAL:
            covered = set(self.concepts[prompt]) <= set(text.split())
            return (1.0, 1.0) if covered else (0.0, 0.0)
        if syntax != FINAL:  # after <eos> a DFA is in FINAL or DEAD
            return self.opts.invalid_reward, 0.0
        return self.opts.implausible_reward, 0.0

    def allowed_words(self) -> list[str]:
        return _lexicon(self.ref["train"])

    def demonstrations(self, split: str) -> list[tuple[str, str]]:
        """(prompt, the frame sentence) of every prompt of the split."""
        env = self.ref[split]
        out = []
        for pid, concepts in enumerate(env.splits[split]):
            plan = [int(t) for t in env.prompt_plan[pid] if t not in (0, env.eos_id)]
            out.append((self._prompt(concepts), env.vocab.decode(plan)))
        return out


@register("sentiment_text")
class SentimentText(TextTask):
    """Prompt `the movie was`; answer: a positive, grammatical, non-repeating continuation."""

    def __init__(self, difficulty: str = "easy", **options):
        opts = resolve_options(SentimentOptions, SENTIMENT_PRESETS, difficulty, options, "sentiment_text")
        self.ref = {split: SentimentEnv(1, opts, split=split) for split in ("train", "test")}
        self.max_new_tokens = opts.max_steps
        self.opts = opts

    def prompts(self, split: str) -> list[str]:
        return list(self.ref[split].prompt_table.texts)

    def score(self, prompt: str, text: str) -> tuple[float, float]:
        env = self.ref["train"]
        ids = _ids(env, text.split())
        if ids is None or not env.dfa.accepts(ids):
            return self.opts.invalid_reward, 0.0
        return env.score(tuple(ids))

    def allowed_words(self) -> list[str]:
        return _lexicon(self.ref["train"])

    def demonstrations(self, split: str) -> list[tuple[str, str]]:
        """(prompt, a planned high-scoring continuation), cycling through the oracle's plans."""
        env = self.ref[split]
        plans = [[int(t) for t in p if t not in (0, env.eos_id)] for p in env.oracle_plans]
        return [(p, env.vocab.decode(plans[i % len(plans)])) for i, p in enumerate(self.prompts(split))]
