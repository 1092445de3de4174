"""Tasks over text: prompts as strings, a score for a generated string, run in a Hugging Face tokenizer's id space.

A `TextTask` states what to write and how to judge it, with no vocabulary of its own:

    prompts(split)        -> list[str]                  train / test prompts
    score(prompt, text)   -> (reward, success)          the judgement of a finished generation (success in 0..1)
    allowed_words()       -> list[str] | None           optional: words the answer may use (an action mask)
    demonstrations(split) -> list[(prompt, text)]       optional: good answers (`distdqn pretrain --task`)
    max_new_tokens                                       the generation budget, in tokens

`TokenizedTextEnv` turns one into a batched `TextEnv` whose actions are the tokenizer's ids: a slot's row is the
tokenized prompt followed by generated tokens; the tokenizer's eos token ends the generation, which is then decoded
and scored (reward 0 before it: sparse); reaching `max_new_tokens` without eos truncates with reward 0 and success 0,
as the built-in tasks do. With `restrict_tokens` (and a task that names its words) the action mask allows only the
tokens that occur in the tokenizations of those words, plus eos. Id 0 is the replay's padding and never an action
(the word-level tokenizers `distdqn pretrain` writes put `<pad>` there).

A user's task: subclass `TextTask` in a module of your own and set `env.task: mymodule:MyTask`; the registry
wraps it with the run's tokenizer (`env.tokenizer`, by default `network.pretrained`).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from distdqn.envs.base import TextEnv
from distdqn.typed import build


class TextTask:
    """Base class of a task over strings (see the module docstring). `options` are the task's own."""

    max_new_tokens: int = 16

    def prompts(self, split: str) -> list[str]:
        raise NotImplementedError

    def score(self, prompt: str, text: str) -> tuple[float, float]:
        raise NotImplementedError

    def allowed_words(self) -> list[str] | None:
        return None

    def demonstrations(self, split: str) -> list[tuple[str, str]]:
        raise NotImplementedError(f"{type(self).__name__} has no demonstrations")


@functools.lru_cache(maxsize=4)
def load_tokenizer(directory: str):
    """The Hugging Face tokenizer of a local directory (cached per process; never downloads)."""
    from transformers import AutoTokenizer

    if not directory:
        raise ValueError("a text task needs a tokenizer: set env.tokenizer (or network.pretrained with trunk 'hf')")
    return AutoTokenizer.from_pretrained(directory, local_files_only=True)


class TokenizerVocab:
    """The token strings of a tokenizer, in id order, with the `Vocab` methods the envs and evaluation use."""

    separator = ""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))

    def __len__(self) -> int:
        return len(self.tokens)

    def decode(self, ids, skip_pad: bool = True) -> str:
        ids = [int(i) for i in ids if not (skip_pad and int(i) == 0)]
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()


@dataclasses.dataclass
class EnvOptions:
    """The text env's own options in `env.options` (the rest go to the task)."""

    max_new_tokens: int = 0  # generation budget in tokens (0: the task's `max_new_tokens`)
    restrict_tokens: bool = True  # action mask: only tokens of the task's allowed words, plus eos

    def __post_init__(self):
        if self.max_new_tokens < 0:
            raise ValueError(f"env.options.max_new_tokens must be >= 0, got {self.max_new_tokens}")


def allowed_token_ids(tokenizer, words: list[str]) -> np.ndarray:
    """Ids of every token in the tokenizations of `words`, alone and after a space (BPE marks word starts)."""
    ids: set[int] = set()
    for w in words:
        for form in (w, " " + w):
            ids.update(tokenizer.encode(form, add_special_tokens=False))
    return np.array(sorted(ids), dtype=np.int64)


class TokenizedTextEnv(TextEnv):
    """A `TextTask` in a tokenizer's id space (see the module docstring)."""

    def __init__(self, task: TextTask, tokenizer, num_envs: int, opts: EnvOptions, seed: int = 0, split: str = "train"):
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos token: a generation could never end")
        self.name = type(task).__name__
        self.task, self.tokenizer = task, tokenizer
        texts = task.prompts(split)
        if not texts:
            raise ValueError(f"task {self.name} has no {split} prompts")
        encoded = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
        if any(len(e) == 0 for e in encoded):
            raise ValueError(f"task {self.name}: a prompt tokenizes to nothing")
        budget = opts.max_new_tokens or task.max_new_tokens
        width = max(len(e) for e in encoded)
        super().__init__(num_envs, TokenizerVocab(tokenizer), width + budget, budget, seed=seed, split=split)
        self.eos_id = int(tokenizer.eos_token_id)
        self.prompt_texts = texts
        self.prompt_ids = np.zeros((len(encoded), width), dtype=np.int32)
        self.prompt_lengths = np.array([len(e) for e in encoded], dtype=np.int32)
        for i, e in enumerate(encoded):
            self.prompt_ids[i, : len(e)] = e
        self.prompt_id = np.zeros(num_envs, dtype=np.int64)
        words = task.allowed_words() if opts.restrict_tokens else None
        self.has_action_mask = words is not None
        if words is not None:
            mask = np.zeros(self.vocab_size, dtype=bool)
            mask[allowed_token_ids(tokenizer, words)] = True
            mask[self.eos_id] = True
            mask[0] = False
            self._mask = np.broadcast_to(mask, (num_envs, self.vocab_size))  # the same for every slot and step

    def _reset_slots(self, idx: np.ndarray) -> None:
        pid = self.rng.integers(0, len(self.prompt_lengths), size=len(idx))
        self.prompt_id[idx] = pid
        self.tokens[idx, : self.prompt_ids.shape[1]] = self.prompt_ids[pid]
        self.length[idx] = self.prompt_lengths[pid]

    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        terminated = actions == self.eos_id
        reward = np.zeros(self.num_envs, dtype=np.float32)
        success = np.zeros(self.num_envs, dtype=np.float32)
        for b in np.flatnonzero(terminated):  # Python per finished episode, not per step
            text = self.vocab.decode(self.tokens[b, self.prompt_length[b] : self.length[b] - 1])
            reward[b], success[b] = self.task.score(self.prompt_texts[self.prompt_id[b]], text)
        return reward, terminated, success

    def _action_mask(self) -> np.ndarray:
        return self._mask

    def generated(self, tokens: np.ndarray, length: int, prompt_length: int) -> str:
        return self.vocab.decode(tokens[prompt_length:length])


def make_text_env(
    task_cls: type[TextTask], num_envs: int, seed: int, split: str, difficulty: str, options: dict, tokenizer: str
) -> TokenizedTextEnv:
    """Build `task_cls(difficulty=..., **its options)` and wrap it in the tokenizer's id space."""
    env_keys = {f.name for f in dataclasses.fields(EnvOptions)}
    env_opts = build(EnvOptions, {k: v for k, v in options.items() if k in env_keys}, prefix="env.options")
    task = task_cls(difficulty=difficulty, **{k: v for k, v in options.items() if k not in env_keys})
    return TokenizedTextEnv(task, load_tokenizer(tokenizer), num_envs, env_opts, seed, split)
