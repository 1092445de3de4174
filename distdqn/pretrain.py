"""Making a base language model without downloads: a word-level tokenizer trained on a task's text, a small GPT-2
configuration, and supervised next-token training, written as a Hugging Face directory (`network.pretrained`).

The tokenizer (`tokenizers`' WordLevel model with a whitespace-and-punctuation pre-tokenizer) puts `<pad>` at id 0,
which the Q-network never takes as an action and the replay uses as padding, and `<eos>` at id 1, the end of a
generation. Word-level keeps the tiny test models' episodes as short as the task's own vocabulary makes them; any
Hugging Face tokenizer works with the text tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["<pad>", "<eos>", "<unk>"]


def build_word_tokenizer(texts: Iterable[str], directory: str | Path):
    """Train a word-level tokenizer on `texts`, save it to `directory` (HF format) and return it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def new_causal_lm(vocab_size: int, layers: int = 2, dim: int = 64, heads: int = 2, positions: int = 64, seed: int = 0):
    """A randomly initialised GPT-2-style causal LM (tied input/output embeddings), seeded."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=positions,
        n_embd=dim,
        n_layer=layers,
        n_head=heads,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"  # transformers finds no loss by this class's name and warns on every run
    return model


def save_model(model, tokenizer, directory: str | Path) -> Path:
    """Write model (safetensors) and tokenizer into one Hugging Face directory."""
    from transformers.utils import logging as hf_logging

    directory = Path(directory)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a one-file write needs no progress bar
    try:
        model.save_pretrained(str(directory))
        tokenizer.save_pretrained(str(directory))
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    return directory


def task_corpus(task: str, difficulty: str = "easy") -> tuple[list[tuple[str, str]], list[str]]:
    """(train (prompt, answer) demonstrations, extra tokenizer text: the task's words and held-out prompts) of a
    `TextTask` by name or `module:Class`. Held-out answers are never used."""
    from distdqn.envs.registry import resolve
    from distdqn.envs.text import TextTask

    factory = resolve(task)
    if not (isinstance(factory, type) and issubclass(factory, TextTask)):
        raise ValueError(f"task {task!r} is not a task over text (a TextTask): use e.g. keyword_text")
    t = factory(difficulty=difficulty)
    return t.demonstrations("train"), (t.allowed_words() or []) + t.prompts("test")


def pretrain(
    documents: list[tuple[str, str]],
    out: str | Path,
    extra_text: Iterable[str] = (),
    layers: int = 2,
    dim: int = 64,
    heads: int = 2,
    max_steps: int = 2000,
    max_seconds: float = 0.0,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
) -> dict:
    """Supervised next-token training of a new small GPT-2 on `documents` ((prompt, continuation) pairs; the
    prompt part may be ''), each tokenized as prompt ids + continuation ids + eos, exactly as the text envs see
    them. Writes the model and its tokenizer to `out`; returns {steps, loss, seconds, parameters}."""
    import time

    import torch

    out = Path(out)
    tokenizer = build_word_tokenizer([f"{p} {c}" for p, c in documents] + list(extra_text), out)
    rows = [
        tokenizer.encode(p, add_special_tokens=False)
        + tokenizer.encode(c, add_special_tokens=False)
        + [tokenizer.eos_token_id]
        for p, c in documents
    ]
    width = max(len(r) for r in rows)
    model = new_causal_lm(len(tokenizer), layers, dim, heads, positions=max(64, width), seed=seed)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    labels = ids.masked_fill(ids == 0, -100)  # padding does not count
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    began, steps, loss = time.monotonic(), 0, float("nan")
    model.train()
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: seed it, leave the caller's
        torch.manual_seed(seed)
        while steps < max_steps and not (max_seconds and time.monotonic() - began > max_seconds):
            pick = torch.randint(0, len(rows), (batch_size,), generator=generator)
            out_ = model(input_ids=ids[pick], labels=labels[pick])
            optimizer.zero_grad(set_to_none=True)
            out_.loss.backward()
            optimizer.step()
            steps, loss = steps + 1, float(out_.loss.detach())
    save_model(model.eval(), tokenizer, out)
    params = sum(p.numel() for p in model.parameters())
    return {"steps": steps, "loss": loss, "seconds": time.monotonic() - began, "parameters": params}
