"""Copy / reverse / sort: answers, rewards on hand-made answers, splits, baselines and reward-hacking policies."""

import numpy as np
import pytest
from env_checks import check_action_errors, check_auto_reset, check_option_errors, check_seeding, rollout, step_words

from distdqn.config import load_config
from distdqn.envs import make_env, task_shape
from distdqn.envs.sequence import answer_key, transform
from distdqn.envs.splits import in_split

TASKS = ["copy", "reverse", "sort"]
DIFFICULTIES = ["easy", "medium", "hard"]


def _rows(lists):
    width = max(len(x) for x in lists)
    digits = np.array([x + [-1] * (width - len(x)) for x in lists])
    return digits, np.array([len(x) for x in lists])


@pytest.mark.parametrize(
    "task, lists, answers",
    [
        ("copy", [[3, 1, 2], [4, 0]], [[3, 1, 2], [4, 0, -1]]),
        ("reverse", [[3, 1, 2], [4, 0]], [[2, 1, 3], [0, 4, -1]]),
        ("sort", [[3, 1, 2], [4, 0], [2, 2, 0]], [[1, 2, 3], [0, 4, -1], [0, 2, 2]]),
    ],
)
def test_transform_table(task, lists, answers):
    assert transform(task, *_rows(lists)).tolist() == answers


def _env(task: str, prompt: list[int], **options):
    """A one-slot env whose current prompt is forced to `prompt` (the sampler is bypassed)."""
    env = make_env(task, num_envs=1, seed=0, **options)
    env.reset()
    digits, length = _rows([prompt])
    env.tokens[0] = 0
    env.tokens[0, : len(prompt)] = np.array(prompt) + 1
    env.tokens[0, len(prompt)] = env.vocab.id("<sep>")
    env.length[0] = env.prompt_length[0] = len(prompt) + 1
    env.plan[0] = env.vocab.id("<eos>")
    env.plan[0, : len(prompt)] = transform(task, digits, length)[0] + 1
    env.answer_length[0] = len(prompt)
    return env


@pytest.mark.parametrize(
    "task, prompt, answer, partial_credit, reward, success",
    [
        ("copy", [3, 1, 2], "3 1 2 <eos>", 0.0, 1.0, 1.0),
        ("reverse", [3, 1, 2], "2 1 3 <eos>", 0.0, 1.0, 1.0),
        ("sort", [3, 1, 2], "1 2 3 <eos>", 0.0, 1.0, 1.0),
        ("sort", [3, 1, 2], "1 3 2 <eos>", 0.0, 0.0, 0.0),  # sparse by default: a near miss earns nothing
        ("sort", [3, 1, 2], "1 3 2 <eos>", 0.5, 0.5 * 1 / 3, 0.0),  # one position of three right
        ("sort", [3, 1, 2], "1 2 <eos>", 0.5, 0.5 * 2 / 3, 0.0),  # stopping early: counted over the target
        ("copy", [3, 1], "3 1 1 <eos>", 0.5, 0.5 * 2 / 3, 0.0),  # padding: counted over the longer answer
        ("copy", [3, 1], "<eos>", 0.5, 0.0, 0.0),  # the empty answer
        ("reverse", [3, 1, 2], "3 1 2 <eos>", 0.5, 0.5 * 1 / 3, 0.0),  # echoing the prompt
    ],
)
def test_rewards(task, prompt, answer, partial_credit, reward, success):
    env = _env(task, prompt, partial_credit=partial_credit)
    words = answer.split()
    for w in words[:-1]:
        _, r, term, trunc, _ = env.step(np.array([env.vocab.id(w)]))
        assert r[0] == 0.0 and not term[0] and not trunc[0]  # nothing is paid before the end
    _, r, term, _, info = step_words(env, words[-1:])
    assert term[0] and info.success[0] == success
    assert r[0] == pytest.approx(reward)


def test_budget_truncates_with_nothing():
    env = _env("copy", [3, 1, 2], partial_credit=0.5)
    assert env.max_steps == 5  # 3 digits + <eos> + 1 slack token
    for _ in range(env.max_steps):
        _, r, term, trunc, info = env.step(np.array([env.vocab.id("3")]))
        assert r[0] == 0.0 and not term[0]
    assert trunc[0] and info.success.tolist() == [0.0]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_oracle_always_succeeds(task, difficulty, split):
    env = make_env(task, num_envs=64, difficulty=difficulty, split=split)
    success, returns = rollout(env, env.oracle_actions, 300)
    assert success.mean() == 1.0 and np.allclose(returns, 1.0)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_random_policy_rarely_succeeds(task, difficulty):
    env = make_env(task, num_envs=256, difficulty=difficulty)
    rng = np.random.default_rng(0)
    success, _ = rollout(env, lambda: env.random_actions(rng), 2000)
    assert success.mean() < 0.01


def _echo(env):
    """Write the prompt's digits back in prompt order, then <eos>: no task is solved by it but copy."""
    pos = np.minimum(env.steps, env.prompt_length - 2)
    return np.where(env.steps < env.answer_length, env.tokens[env._all, pos], env.vocab.id("<eos>")).astype(np.int64)


def _most_common_symbol(env):
    """The answer's length in its most frequent digit (each position is right as often as any single guess)."""
    return np.where(env.steps < env.answer_length, env.vocab.id("0"), env.vocab.id("<eos>")).astype(np.int64)


def _answer_then_pad(env):
    """The right answer, one extra digit, then <eos>: padding must not pay."""
    right = env.oracle_actions()
    return np.where(env.steps == env.answer_length, env.vocab.id("0"), right).astype(np.int64)


@pytest.mark.parametrize("task", ["reverse", "sort"])
@pytest.mark.parametrize("policy", [_echo, _most_common_symbol, _answer_then_pad])
def test_reward_hacking_policies_score_low(task, policy):
    """With the most partial credit the task allows, policies that farm it never succeed and earn at most half
    of what solving pays."""
    env = make_env(task, num_envs=256, difficulty="medium", partial_credit=0.5)
    success, returns = rollout(env, lambda: policy(env), 2000)
    assert success.mean() == 0.0
    assert returns.max() <= 0.5 and returns.mean() < 0.5


@pytest.mark.parametrize("task", ["reverse", "sort"])
def test_no_prompt_is_its_own_answer(task):
    env = make_env(task, num_envs=2048, difficulty="easy")
    env.reset()
    prompt_digits = np.where(np.arange(env.plan.shape[1]) < env.answer_length[:, None], env.tokens[:, :5], -1)
    answer = np.where(np.arange(env.plan.shape[1]) < env.answer_length[:, None], env.plan, -1)
    assert not (prompt_digits == answer).all(axis=1).any()


def _answers(env) -> np.ndarray:
    width = env.options.max_length
    inside = np.arange(width)[None, :] < env.answer_length[:, None]
    return np.where(inside, env.plan[:, :width] - 1, -1)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_splits_are_disjoint_by_answer(task, difficulty):
    keys = {}
    for split, seed in [("train", 0), ("test", 0), ("test", 9)]:
        env = make_env(task, num_envs=2048, seed=seed, difficulty=difficulty, split=split)
        env.reset()
        keys[split, seed] = answer_key(_answers(env))
        assert in_split(keys[split, seed], split, env.options.test_fraction, 14).all()
    assert not set(keys["train", 0].tolist()) & set(keys["test", 0].tolist())
    assert set(keys["test", 0].tolist()) & set(keys["test", 9].tolist())  # the split does not depend on the seed


@pytest.mark.parametrize("task", TASKS)
def test_seeding_auto_reset_and_errors(task):
    check_seeding(task, "easy")
    check_auto_reset(make_env(task, num_envs=8))
    check_option_errors(task, {"num_symbols": 11})
    check_action_errors(task)


@pytest.mark.parametrize("task", TASKS)
def test_default_config_runs_the_task(task):
    """`distdqn train --task copy` with no config file: the defaults build and size the task."""
    config = load_config(None, [f"env.task={task}"])
    shape = task_shape(config.env)
    assert shape.vocab_size == 8 and shape.max_len == 9 and not shape.with_mask
