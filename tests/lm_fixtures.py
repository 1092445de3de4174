"""A tiny Hugging Face causal LM built on disk for the LM tests (no downloads): a word-level tokenizer trained on
the text tasks' prompts, answers and lexicons, and a random 2-layer, 64-wide GPT-2."""

from __future__ import annotations

from pathlib import Path

from distdqn.envs.text import TextTask
from distdqn.envs.text_tasks import KeywordText, SentimentText
from distdqn.pretrain import build_word_tokenizer, new_causal_lm, save_model


def task_texts() -> list[str]:
    """Every prompt, demonstration and allowed word of keyword_text and sentiment_text (easy)."""
    texts: list[str] = []
    for task in (KeywordText(), SentimentText()):
        texts += task.allowed_words()
        for split in ("train", "test"):
            texts += [f"{p} {a}" for p, a in task.demonstrations(split)]
    return texts


def tiny_lm(
    directory: Path,
    layers: int = 2,
    dim: int = 64,
    seed: int = 0,
    heads: int = 2,
    vocab_size: int | None = None,
    positions: int = 64,
) -> Path:
    """A random GPT-2 on the text tasks' word-level tokenizer, written to `directory`; `vocab_size` (default: the
    tokenizer's) and the other shape arguments make larger ones, e.g. GPT-2 small's 12 x 768 with 50,257 outputs."""
    tokenizer = build_word_tokenizer(task_texts(), directory)
    model = new_causal_lm(
        vocab_size or len(tokenizer), layers=layers, dim=dim, heads=heads, positions=positions, seed=seed
    )
    save_model(model, tokenizer, directory)
    return directory


class SayTheWord(TextTask):
    """A user's own task over strings (through `module:Class`): answer the prompt's animal, alone."""

    max_new_tokens = 3

    def __init__(self, difficulty: str = "easy", words: tuple[str, ...] = ("dog", "cat", "bird")):
        self.words = list(words)

    def prompts(self, split: str) -> list[str]:
        return [f"the {w} :" for w in self.words]

    def score(self, prompt: str, text: str) -> tuple[float, float]:
        ok = text == prompt.split()[1]
        return float(ok), float(ok)

    def allowed_words(self) -> list[str]:
        return self.words
