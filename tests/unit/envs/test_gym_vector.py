"""gymnasium registration of every built-in task x level, and the vector env over the batched API."""

import warnings

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from distdqn.envs.gym_adapter import GymTextEnv, TextVectorEnv, register_envs  # noqa: E402
from distdqn.envs.registry import BUILTIN_TASKS, DIFFICULTIES, TOKENIZER_TASKS  # noqa: E402

OWN_VOCABULARY = [task for task in BUILTIN_TASKS if task not in TOKENIZER_TASKS]
IDS = [f"distdqn/{task}-{level}-v0" for task in OWN_VOCABULARY for level in DIFFICULTIES]


def test_every_task_and_level_is_registered_once():
    assert register_envs() == IDS and len(IDS) == len(OWN_VOCABULARY) * 3
    assert all(env_id in gymnasium.registry for env_id in IDS)


@pytest.mark.parametrize("env_id", IDS)
def test_made_envs_pass_the_env_checker(env_id):
    env = gymnasium.make(env_id)
    task, level = env_id.removeprefix("distdqn/").removesuffix("-v0").rsplit("-", 1)
    assert isinstance(env.unwrapped, GymTextEnv) and env.spec.id == env_id
    assert env.unwrapped.env.max_len == GymTextEnv(task, difficulty=level).env.max_len  # the level's preset
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning fails the test
        check_env(env.unwrapped)


def test_make_with_the_module_prefix_imports_and_passes_options():
    env = gymnasium.make("distdqn.envs.gym_adapter:distdqn/shortest_path-easy-v0", action_mask=True)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"tokens", "length", "action_mask"}


def oracle_arithmetic_actions(vec: TextVectorEnv, obs: dict, steps: np.ndarray) -> np.ndarray:
    """The right next token of every slot: the digits of a + b, then <eos>."""
    vocab = vec.env.vocab
    actions = np.zeros(vec.num_envs, dtype=np.int64)
    for i in range(vec.num_envs):
        prompt = vocab.decode(obs["tokens"][i, : obs["length"][i] - steps[i]])
        a, b = prompt[:-1].split("+")
        answer = [*str(int(a) + int(b)), "<eos>"]
        actions[i] = vocab.id(answer[steps[i]])
    return actions


def test_vector_env_runs_oracle_episodes_with_same_step_autoreset():
    vec = gymnasium.make_vec("distdqn/arithmetic-easy-v0", num_envs=6, vectorization_mode="vector_entry_point")
    assert isinstance(vec, TextVectorEnv) and vec.metadata["autoreset_mode"].name == "SAME_STEP"
    obs, info = vec.reset(seed=4)
    again, _ = TextVectorEnv(6, "arithmetic").reset(seed=4)
    assert np.array_equal(obs["tokens"], again["tokens"]) and info == {}
    steps = np.zeros(6, dtype=int)
    finished = 0
    for _ in range(12):
        assert vec.observation_space.contains(obs)
        before = {k: v.copy() for k, v in obs.items()}
        obs, reward, terminated, truncated, info = vec.step(oracle_arithmetic_actions(vec, obs, steps))
        assert reward.shape == (6,) and not truncated.any()
        steps += 1
        done = terminated | truncated
        if done.any():
            assert np.array_equal(info["_final_obs"], done) and np.array_equal(info["_success"], done)
            assert (info["success"][done] == 1.0).all()
            for i in np.flatnonzero(done):
                final = info["final_obs"][i]
                n = before["length"][i]
                assert np.array_equal(final["tokens"][:n], before["tokens"][i, :n])  # the finished episode...
                assert vec.env.vocab.decode(final["tokens"][n : final["length"]]) == "<eos>"  # ...and its last token
                assert vec.env.vocab.decode(obs["tokens"][i, : obs["length"][i]]).endswith("=")  # a fresh prompt
            finished += int(done.sum())
            steps[done] = 0
    assert finished >= 6


def test_vector_env_exposes_masks_and_refuses_reset_options():
    vec = TextVectorEnv(3, "shortest_path", action_mask=True)
    obs, _ = vec.reset(seed=0)
    assert obs["action_mask"].shape == (3, vec.single_action_space.n) and obs["action_mask"].dtype == np.int8
    legal = np.array([np.flatnonzero(m)[0] for m in obs["action_mask"]])
    _, reward, *_ = vec.step(legal)
    assert (reward > -1.0).all()
    with pytest.raises(ValueError, match="set at construction"):
        vec.reset(options={"num_nodes": 3})
