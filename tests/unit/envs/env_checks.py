"""Checks shared by the built-in task tests: episode rollouts, seeding, auto-reset, splits, option and action errors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from distdqn.envs import TextEnv, make_env
from distdqn.typed import ConfigError


def rollout(env: TextEnv, policy: Callable[[], np.ndarray], episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Step from a fresh reset until `episodes` episodes finished; returns (success, return) per episode."""
    env.reset(seed=123)
    ret = np.zeros(env.num_envs)
    successes, returns = [], []
    while len(successes) < episodes:
        _, r, _, _, info = env.step(policy())
        ret += r
        successes += info.success.tolist()
        returns += ret[info.done_idx].tolist()
        ret[info.done_idx] = 0.0
    return np.array(successes), np.array(returns)


def word_rewards(env: TextEnv, words: list[str]) -> tuple[list[float], bool, float | None]:
    """Feed `words` to slot 0 of a one-slot env, one per step, until the episode ends: (reward per step, whether it
    terminated, success at the end or None when it has not ended)."""
    rewards = []
    for w in words:
        _, r, term, trunc, info = env.step(np.array([env.vocab.id(w)]))
        rewards.append(float(r[0]))
        if term[0] or trunc[0]:
            return rewards, bool(term[0]), float(info.success[0])
    return rewards, False, None


def step_words(env: TextEnv, words: list[str]):
    """Feed `words` to every slot, one per step; returns the last step's outputs."""
    out = None
    for w in words:
        out = env.step(np.full(env.num_envs, env.vocab.id(w)))
    return out


def check_seeding(task: str, difficulty: str) -> None:
    a = make_env(task, num_envs=64, seed=5, difficulty=difficulty).reset()
    b = make_env(task, num_envs=64, seed=5, difficulty=difficulty).reset()
    c = make_env(task, num_envs=64, seed=6, difficulty=difficulty).reset()
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.length, b.length)
    assert not np.array_equal(a.tokens, c.tokens)


def check_auto_reset(env: TextEnv) -> None:
    """Run the oracle until some slot finishes: its final row is returned in info and the slot holds a new prompt."""
    env.reset(seed=1)
    for _ in range(env.max_steps + 1):
        before = env.tokens.copy()
        obs, _, terminated, truncated, info = env.step(env.oracle_actions())
        if info.done_idx.size:
            b = int(info.done_idx[0])
            assert terminated[b] or truncated[b]
            n = int(info.final_length[0])
            assert np.array_equal(info.final_tokens[0, : n - 1], before[b, : n - 1])
            assert info.final_tokens[0, n - 1] == env.vocab.id("<eos>")
            assert obs.length[b] == env.prompt_length[b] and env.steps[b] == 0
            assert (obs.tokens[b, obs.length[b] :] == 0).all()
            return
    raise AssertionError("no episode finished within max_steps + 1 oracle steps")


def check_splits(task: str, difficulty: str) -> None:
    train = make_env(task, num_envs=256, difficulty=difficulty, split="train")
    test = make_env(task, num_envs=256, difficulty=difficulty, split="test")
    train_set, test_set = set(train.splits["train"]), set(train.splits["test"])
    assert train_set and test_set and not train_set & test_set
    assert set(test.splits["test"]) == test_set  # the split does not depend on the seed
    assert set(make_env(task, num_envs=1, seed=99, difficulty=difficulty).splits["test"]) == test_set
    train.reset()
    test.reset()
    assert set(train.prompts()).isdisjoint(test.prompts())


def check_option_errors(task: str, bad_value: dict) -> None:
    with pytest.raises(ConfigError, match="env.options.not_an_option"):
        make_env(task, not_an_option=1)
    ((key, value),) = bad_value.items()
    with pytest.raises(ValueError, match=f"env.options.{key}"):
        make_env(task, **{key: value})
    with pytest.raises(ValueError, match="difficulty"):
        make_env(task, difficulty="impossible")


def check_action_errors(task: str) -> None:
    env = make_env(task, num_envs=4)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="must lie in"):
        env.step(np.full(4, env.vocab_size))
    with pytest.raises(TypeError):
        env.step(np.zeros(4, dtype=np.float32))
