"""Task registry: built-in tasks by name, a user's own task by `module:Class` (or `module:function`).

A task factory is called as `factory(num_envs=..., seed=..., split=..., difficulty=..., **options)` and returns a
`TextEnv`. Built-in tasks register themselves with `@register("name")`; their modules are imported lazily.
A task over strings (a `distdqn.envs.text.TextTask` subclass, built-in like `keyword_text` or a user's
`module:Class`) is built as `Class(difficulty=..., **options)` and run in the tokenizer's id space (`tokenizer`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from distdqn.envs.base import TextEnv
from distdqn.envs.text import TextTask, make_text_env
from distdqn.typed import suggest

if TYPE_CHECKING:
    from distdqn.config import EnvConfig

_REGISTRY: dict[str, Callable[..., TextEnv]] = {}

# name -> module that registers it (imported on first use, so `import distdqn.envs` stays cheap)
BUILTIN_TASKS = {
    "grammar": "distdqn.envs.grammar",
    "keyword": "distdqn.envs.keyword",
    "arithmetic": "distdqn.envs.arithmetic",
    "shortest_path": "distdqn.envs.shortest_path",
    "sentiment": "distdqn.envs.sentiment",
    "translation": "distdqn.envs.translation",
    "wordle": "distdqn.envs.wordle",
    "copy": "distdqn.envs.sequence",
    "reverse": "distdqn.envs.sequence",
    "sort": "distdqn.envs.sequence",
    "keyword_text": "distdqn.envs.text_tasks",
    "sentiment_text": "distdqn.envs.text_tasks",
}

# the built-ins over strings: they run in a tokenizer's id space (`network.pretrained`), so they need one to be made
TOKENIZER_TASKS = ("keyword_text", "sentiment_text")

DIFFICULTIES = ("easy", "medium", "hard")


def register(name: str) -> Callable[[Callable[..., TextEnv]], Callable[..., TextEnv]]:
    """Register a task factory (or a `TextTask` class) under `name`."""

    def deco(factory: Callable[..., TextEnv]) -> Callable[..., TextEnv]:
        _REGISTRY[name] = factory
        return factory

    return deco


def known_tasks() -> list[str]:
    return sorted(set(BUILTIN_TASKS) | set(_REGISTRY))


def resolve(task: str) -> Callable[..., TextEnv]:
    """The factory for a task name or a `module:attr` path; a clear error lists the known names otherwise."""
    if ":" in task:
        module_name, _, attr = task.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ValueError(f"cannot import module {module_name!r} for task {task!r}: {e}") from e
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r} (task {task!r})") from None
    if task not in _REGISTRY and task in BUILTIN_TASKS:
        importlib.import_module(BUILTIN_TASKS[task])
    if task not in _REGISTRY:
        raise ValueError(
            f"unknown task {task!r}{suggest(task, known_tasks())}; known tasks: {', '.join(known_tasks())}, "
            "or 'module:Class' for your own"
        )
    return _REGISTRY[task]


def make_env(
    task: str,
    num_envs: int = 1,
    seed: int = 0,
    split: str = "train",
    difficulty: str = "easy",
    tokenizer: str = "",
    **options: Any,
) -> TextEnv:
    """Build a batched task environment. `options` override the difficulty preset; a wrong one is named.
    `tokenizer` (a Hugging Face tokenizer directory) is used by tasks over strings only."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {list(DIFFICULTIES)}, got {difficulty!r}")
    factory = resolve(task)
    if isinstance(factory, type) and issubclass(factory, TextTask):
        return make_text_env(factory, num_envs, seed, split, difficulty, options, tokenizer)
    return factory(num_envs=num_envs, seed=seed, split=split, difficulty=difficulty, **options)


def make_env_from_config(env_config: EnvConfig, num_envs: int, seed: int = 0, split: str = "train") -> TextEnv:
    """`make_env` for a run's `env` section: its task, difficulty and options, with `num_envs` slots."""
    return make_env(
        env_config.task,
        num_envs=num_envs,
        seed=seed,
        split=split,
        difficulty=env_config.difficulty,
        tokenizer=env_config.tokenizer,
        **env_config.options,
    )
