"""A gymnasium adapter: one slot of a batched text task as a standard `gymnasium.Env`, for standard tooling.

gymnasium is an optional dependency (`pip install distdqn[gym]`); only this module imports it, and
`import distdqn.envs` never imports this module.

Observation: a dict with `tokens` (Box int32 [max_len], `[prompt | generated | pad]`), `length` (Discrete
max_len + 1) and, for tasks with action masks, `action_mask` (MultiBinary [V], int8). Actions: Discrete(V) token ids.
The batched env resets a finished slot at once; the adapter hides that: the step that ends an episode returns that
episode's final observation (with an all-ones action mask, which nothing should read), `info["success"]` holds the
task's success metric, and the next `reset()` starts a fresh episode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import gymnasium as gym
    from gymnasium import spaces
except ImportError as e:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError("distdqn.envs.gym_adapter needs gymnasium: pip install 'distdqn[gym]'") from e

from distdqn.envs.base import Obs
from distdqn.envs.registry import make_env


class GymTextEnv(gym.Env):
    """`make_env(task, num_envs=1, ...)` behind the gymnasium API. `render()` returns the sequence as text."""

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        task: str = "arithmetic",
        difficulty: str = "easy",
        split: str = "train",
        seed: int = 0,
        render_mode: str | None = None,
        **options: Any,
    ):
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.env = make_env(task, num_envs=1, seed=seed, split=split, difficulty=difficulty, **options)
        length, vocab_size = self.env.max_len, self.env.vocab_size
        obs_spaces: dict[str, spaces.Space] = {
            "tokens": spaces.Box(0, vocab_size - 1, shape=(length,), dtype=np.int32),
            "length": spaces.Discrete(length + 1),
        }
        if self.env.has_action_mask:
            obs_spaces["action_mask"] = spaces.MultiBinary(vocab_size)
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Discrete(vocab_size)
        self._tokens = np.zeros(length, dtype=np.int32)
        self._length = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """A fresh episode; `seed` reseeds the task's prompt sampler. Task options are fixed at construction."""
        if options:
            raise ValueError(f"task options are set at construction (GymTextEnv(..., **options)), got {options}")
        super().reset(seed=seed)
        return self._convert(self.env.reset(seed)), {}

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(np.array([action], dtype=np.int64))
        done = bool(terminated[0] or truncated[0])
        extras: dict[str, Any] = {}
        if done:
            obs = Obs(info.final_tokens, info.final_length, None)
            extras["success"] = float(info.success[0])
        return self._convert(obs, final=done), float(reward[0]), bool(terminated[0]), bool(truncated[0]), extras

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return self.env.vocab.decode(self._tokens[: self._length])

    def _convert(self, obs: Obs, final: bool = False) -> dict:
        self._tokens = obs.tokens[0].copy()
        self._length = int(obs.length[0])
        out: dict[str, Any] = {"tokens": self._tokens.copy(), "length": self._length}
        if self.env.has_action_mask:
            mask = np.ones(self.env.vocab_size, dtype=np.int8) if final else obs.action_mask[0].astype(np.int8)
            out["action_mask"] = mask
        return out
