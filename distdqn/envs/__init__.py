"""Batched text-generation environments: the API (`base`), the task registry, and the built-in tasks."""

from distdqn.envs.base import EOS, PAD, Obs, StepInfo, TextEnv, Vocab
from distdqn.envs.registry import known_tasks, make_env, register

__all__ = ["EOS", "PAD", "Obs", "StepInfo", "TextEnv", "Vocab", "known_tasks", "make_env", "register"]
