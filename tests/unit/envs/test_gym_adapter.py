"""The gymnasium adapter: passes gymnasium's env checker; episodes, final observations, masks and rendering."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from distdqn.envs.gym_adapter import GymTextEnv  # noqa: E402


@pytest.mark.parametrize(
    "task, options",
    [("arithmetic", {}), ("shortest_path", {"action_mask": True}), ("wordle", {"difficulty": "medium"})],
)
def test_passes_gymnasium_env_checker(task, options):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*spec.*")  # built without gymnasium.make: no spec to test
        check_env(GymTextEnv(task, render_mode="ansi", **options))


def test_an_arithmetic_episode():
    env = GymTextEnv("arithmetic", render_mode="ansi")
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and info == {}
    prompt = env.render()
    a, b = prompt[:-1].split("+")
    answer = list(str(int(a) + int(b))) + ["<eos>"]
    total = 0.0
    for i, token in enumerate(answer):
        obs, reward, terminated, truncated, info = env.step(env.env.vocab.id(token))
        total += reward
        assert terminated == (i == len(answer) - 1) and not truncated
    assert info == {"success": 1.0} and total == pytest.approx(1.0 + 0.1 * (len(answer) - 1))
    assert env.render() == prompt + "".join(answer)  # the final observation, not the auto-reset one
    assert obs["length"] == len(prompt) + len(answer)
    obs, _ = env.reset()
    assert env.render().endswith("=") and obs["length"] == len(env.render())


def test_reset_seed_is_reproducible_and_masks_are_exposed():
    env = GymTextEnv("shortest_path", action_mask=True)
    first, _ = env.reset(seed=11)
    again, _ = env.reset(seed=11)
    assert np.array_equal(first["tokens"], again["tokens"])
    mask = first["action_mask"]
    assert mask.dtype == np.int8 and mask.shape == (env.action_space.n,)
    obs, reward, *_ = env.step(int(np.flatnonzero(mask)[0]))
    assert reward > -1.0  # a masked-in move is legal


def test_options_are_fixed_at_construction():
    env = GymTextEnv("wordle")
    with pytest.raises(ValueError, match="set at construction"):
        env.reset(options={"max_guesses": 3})


def test_importing_envs_does_not_import_gymnasium():
    code = "import sys; from distdqn.envs import make_env; make_env('wordle'); print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
