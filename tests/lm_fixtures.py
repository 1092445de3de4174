"""A tiny Hugging Face causal LM built on disk for the LM tests (no downloads): a word-level tokenizer trained on
the text tasks' prompts, answers and lexicons, and a random 2-layer, 64-wide GPT-2."""

from __future__ import annotations

from pathlib import Path

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


def tiny_lm(directory: Path, layers: int = 2, dim: int = 64, seed: int = 0) -> Path:
    tokenizer = build_word_tokenizer(task_texts(), directory)
    save_model(new_causal_lm(len(tokenizer), layers=layers, dim=dim, seed=seed), tokenizer, directory)
    return directory
