"""The task's shape: what the networks and the replay need to know of a configured task, read off one env."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from distdqn import spec
from distdqn.envs.base import TextEnv
from distdqn.envs.registry import make_env_from_config

if TYPE_CHECKING:
    from distdqn.config import EnvConfig


def numeric_token_values(tokens: list[str]) -> np.ndarray:
    """[V] float32: int(token) for the tokens that are decimal integers ("0", "12", "-3"), NaN for the others."""
    out = np.full(len(tokens), np.nan, dtype=np.float32)
    for i, t in enumerate(tokens):
        if t.removeprefix("-").isdecimal() and t.isascii():
            out[i] = int(t)
    return out


@dataclasses.dataclass(frozen=True)
class TaskShape:
    """Vocabulary size, row width and action masks of a task: the sizes of the network and of a replay item."""

    vocab_size: int
    max_len: int
    with_mask: bool  # the task has action masks (stored with each transition)
    token_values: np.ndarray  # [V] integer value of each token, NaN for the others (network.numeric_embedding)

    @classmethod
    def of(cls, env: TextEnv) -> TaskShape:
        return cls(env.vocab_size, env.max_len, env.has_action_mask, numeric_token_values(env.vocab.tokens))

    def transition_dtypes(self) -> spec.Schema:
        """Field -> (dtype, per-item shape) of one stored transition of this task (`spec.transition_dtypes`)."""
        return spec.transition_dtypes(self.vocab_size, self.max_len, self.with_mask)


def task_shape(env_config: EnvConfig) -> TaskShape:
    """The shape of the configured task, read off one throwaway env (train split, seed 0)."""
    return TaskShape.of(make_env_from_config(env_config, num_envs=1))
