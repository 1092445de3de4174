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
        return GPT2LMHeadModel(config)


def save_model(model, tokenizer, directory: str | Path) -> Path:
    """Write model (safetensors) and tokenizer into one Hugging Face directory."""
    directory = Path(directory)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory
