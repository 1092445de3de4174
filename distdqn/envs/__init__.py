"""Batched text-generation environments: the API (`base`), the task registry, the task's shape, the built-in tasks."""

from distdqn.envs.base import EOS, PAD, Obs, StepInfo, TextEnv, Vocab
from distdqn.envs.registry import known_tasks, make_env, make_env_from_config, register
from distdqn.envs.shape import TaskShape, numeric_token_values, task_shape

__all__ = [
    "EOS",
    "PAD",
    "Obs",
    "StepInfo",
    "TaskShape",
    "TextEnv",
    "Vocab",
    "known_tasks",
    "make_env",
    "make_env_from_config",
    "numeric_token_values",
    "register",
    "task_shape",
]
