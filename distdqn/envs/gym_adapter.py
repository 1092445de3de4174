"""gymnasium adapters, so other libraries' agents run on our tasks: one slot of a batched text task as a
`gymnasium.Env` (`GymTextEnv`), the batched task itself as a `gymnasium.vector.VectorEnv` (`TextVectorEnv`, one numpy
step for all slots), and every built-in task x difficulty registered as `distdqn/<task>-<level>-v0`:

    import gymnasium, distdqn.envs.gym_adapter  # importing registers the ids
    env = gymnasium.make("distdqn/keyword-easy-v0")
    envs = gymnasium.make_vec("distdqn/keyword-easy-v0", num_envs=64, vectorization_mode="vector_entry_point")

(`gymnasium.make("distdqn.envs.gym_adapter:distdqn/keyword-easy-v0")` imports it for you.) Task options pass as
keyword arguments (`gymnasium.make(id, action_mask=True)`).

gymnasium is an optional dependency (`pip install distdqn[gym]`); only this module imports it, and
`import distdqn.envs` never imports this module.

Observation: a dict with `tokens` (Box int32 [max_len], `[prompt | generated | pad]`), `length` (Discrete
max_len + 1) and, for tasks with action masks, `action_mask` (MultiBinary [V], int8). Actions: Discrete(V) token ids.
The batched env resets a finished slot at once; the adapter hides that: the step that ends an episode returns that
episode's final observation (with an all-ones action mask, which nothing should read), `info["success"]` holds the
task's success metric, and the next `reset()` starts a fresh episode. The vector env keeps the batched env's own
auto-reset, which is gymnasium's same-step mode: a finished slot's observation is already its next episode's first,
and `info["final_obs"]` / `info["success"]` (with their `_final_obs` / `_success` masks) hold the finished ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import gymnasium as gym
    from gymnasium import spaces
except ImportError as e:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError("distdqn.envs.gym_adapter needs gymnasium: pip install 'distdqn[gym]'") from e

from distdqn.envs.base import Obs, TextEnv
from distdqn.envs.registry import BUILTIN_TASKS, DIFFICULTIES, TOKENIZER_TASKS, make_env

ENV_ID = "distdqn/{task}-{level}-v0"


def observation_space(env: TextEnv) -> spaces.Dict:
    """One slot's observation: tokens, length and (for tasks with masks) the action mask."""
    length, vocab_size = env.max_len, env.vocab_size
    obs_spaces: dict[str, spaces.Space] = {
        "tokens": spaces.Box(0, vocab_size - 1, shape=(length,), dtype=np.int32),
        "length": spaces.Discrete(length + 1),
    }
    if env.has_action_mask:
        obs_spaces["action_mask"] = spaces.MultiBinary(vocab_size)
    return spaces.Dict(obs_spaces)


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
        self.observation_space = observation_space(self.env)
        self.action_space = spaces.Discrete(self.env.vocab_size)
        self._tokens = np.zeros(self.env.max_len, dtype=np.int32)
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


class TextVectorEnv(gym.vector.VectorEnv):
    """`make_env(task, num_envs, ...)` behind gymnasium's vector API: one batched numpy step for every slot (no
    per-slot Python env as in `SyncVectorEnv`). Same-step auto-reset (see the module docstring)."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int,
        task: str = "arithmetic",
        difficulty: str = "easy",
        split: str = "train",
        seed: int = 0,
        **options: Any,
    ):
        self.env = make_env(task, num_envs=num_envs, seed=seed, split=split, difficulty=difficulty, **options)
        self.num_envs = num_envs
        self.single_observation_space = observation_space(self.env)
        self.single_action_space = spaces.Discrete(self.env.vocab_size)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Every slot starts a fresh episode; `seed` reseeds the task's prompt sampler."""
        if options:
            raise ValueError(f"task options are set at construction (TextVectorEnv(..., **options)), got {options}")
        super().reset(seed=seed)
        return self._convert(self.env.reset(seed)), {}

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(actions, dtype=np.int64))
        infos: dict[str, Any] = {}
        for k, slot in enumerate(info.done_idx.tolist()):
            final = {"tokens": info.final_tokens[k].astype(np.int32), "length": int(info.final_length[k])}
            if self.env.has_action_mask:
                final["action_mask"] = np.ones(self.env.vocab_size, dtype=np.int8)  # nothing acts on it
            infos = self._add_info(infos, {"final_obs": final, "success": float(info.success[k])}, slot)
        return self._convert(obs), reward.astype(np.float64), terminated.copy(), truncated.copy(), infos

    def _convert(self, obs: Obs) -> dict:
        out: dict[str, Any] = {"tokens": obs.tokens.copy(), "length": obs.length.astype(np.int64)}
        if self.env.has_action_mask:
            out["action_mask"] = obs.action_mask.astype(np.int8)
        return out


def register_envs() -> list[str]:
    """Register every built-in task x difficulty with gymnasium (idempotent); the ids. The tasks over strings are
    left out: they need a tokenizer directory, which a registered id cannot name."""
    ids = []
    for task in (t for t in BUILTIN_TASKS if t not in TOKENIZER_TASKS):
        for level in DIFFICULTIES:
            env_id = ENV_ID.format(task=task, level=level)
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point=GymTextEnv,
                    vector_entry_point=TextVectorEnv,
                    kwargs={"task": task, "difficulty": level},
                )
            ids.append(env_id)
    return ids


register_envs()
