"""Arithmetic task: rewards on hand-made answers, splits, seeding, auto-reset, oracle and random baselines."""

import numpy as np
import pytest
from env_checks import rollout

from distdqn.envs import make_env
from distdqn.envs.arithmetic import Options, pair_key
from distdqn.envs.splits import in_split


def _env_with_prompt(a: int, b: int, op: str = "+", **options):
    """A one-slot env whose current prompt is forced to `a op b =` (the sampler is bypassed)."""
    env = make_env("arithmetic", num_envs=1, difficulty="medium", **options)
    env.reset(seed=0)
    env.tokens[0] = 0
    text = f"{a}{op}{b}="
    env.tokens[0, : len(text)] = env.vocab.encode(list(text))
    env.length[0] = env.prompt_length[0] = len(text)
    env.target[0] = env._answer_tokens[a + b if op == "+" else a - b]
    return env


def _play(env, answer: list[str]):
    rewards, ends = [], []
    for tok in answer:
        _, r, term, trunc, info = env.step(np.array([env.vocab.id(tok)]))
        rewards.append(float(r[0]))
        if term[0] or trunc[0]:
            ends.append((bool(term[0]), bool(trunc[0]), float(info.success[0])))
            break
    return rewards, ends


@pytest.mark.parametrize(
    "a, op, b, answer, rewards, success",
    [
        (12, "+", 7, ["1", "9", "<eos>"], [0.0, 0.0, 1.0], 1.0),  # exact match
        (12, "+", 7, ["1", "8"], [0.0, -1.0], 0.0),  # wrong digit ends at once
        (12, "+", 7, ["<eos>"], [-1.0], 0.0),  # immediate <eos>
        (12, "+", 7, ["0", "1", "9"], [-1.0], 0.0),  # leading zero is wrong
        (12, "+", 7, ["1", "9", "0"], [0.0, 0.0, -1.0], 0.0),  # a digit past the end
        (12, "+", 7, ["1", "<eos>"], [0.0, -1.0], 0.0),  # <eos> too early
        (12, "+", 7, ["+"], [-1.0], 0.0),  # non-digit
        (0, "+", 0, ["0", "<eos>"], [0.0, 1.0], 1.0),  # zero answer is "0"
        (95, "+", 8, ["1", "0", "3", "<eos>"], [0.0, 0.0, 0.0, 1.0], 1.0),  # carry to an extra digit
        (50, "-", 50, ["0", "<eos>"], [0.0, 1.0], 1.0),
        (71, "-", 3, ["6", "8", "<eos>"], [0.0, 0.0, 1.0], 1.0),
    ],
)
def test_reward_on_hand_made_answers(a, op, b, answer, rewards, success):
    env = _env_with_prompt(a, b, op)
    got, ends = _play(env, answer)
    assert got == rewards
    assert ends == [(True, False, success)]


def test_partial_credit_per_digit():
    env = _env_with_prompt(12, 7, digit_reward=0.1, wrong_reward=0.0)
    assert _play(env, ["1", "9", "<eos>"])[0] == pytest.approx([0.1, 0.1, 1.0])
    env = _env_with_prompt(12, 7, digit_reward=0.1, wrong_reward=0.0)
    assert _play(env, ["1", "7"])[0] == pytest.approx([0.1, 0.0])


@pytest.mark.parametrize("difficulty, digits, ops", [("easy", 1, "+"), ("medium", 2, "+-"), ("hard", 3, "+-")])
def test_presets_shape_prompts(difficulty, digits, ops):
    env = make_env("arithmetic", num_envs=256, seed=1, difficulty=difficulty)
    env.reset()
    a, op, b = env.operands.T
    assert a.max() < 10**digits and b.max() < 10**digits
    assert set(op.tolist()) == {"+-".index(c) for c in ops}
    assert (a[op == 1] >= b[op == 1]).all()  # no negative answers
    for prompt, (x, o, y) in zip(env.prompts()[:20], env.operands[:20], strict=True):
        assert prompt == f"{x}{'+-'[o]}{y}="


def test_splits_are_disjoint_deterministic_and_cover_easy():
    pairs = {}
    for split in ("train", "test"):
        seen = set()
        for seed in (0, 1):
            env = make_env("arithmetic", num_envs=512, seed=seed, split=split)
            env.reset()
            seen |= set(map(tuple, env.operands.tolist()))
        pairs[split] = seen
    assert not pairs["train"] & pairs["test"]
    assert (len(pairs["train"]), len(pairs["test"])) == (80, 20)  # easy: 100 pairs, all seen with 1024 draws
    a, b = np.meshgrid(np.arange(100), np.arange(100))
    held = in_split(pair_key(a.ravel(), 1, b.ravel()), "test", 0.2, salt=7).mean()
    assert 0.18 < held < 0.22


def test_seeding_is_deterministic():
    def run(seed):
        env = make_env("arithmetic", num_envs=8, seed=seed, difficulty="medium")
        rng = np.random.default_rng(0)
        obs = [env.reset().tokens.copy()]
        for _ in range(10):
            obs.append(env.step(env.random_actions(rng))[0].tokens.copy())
        return np.stack(obs)

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_auto_reset_returns_final_observation():
    env = make_env("arithmetic", num_envs=4, seed=0)
    env.reset()
    before = env.prompts()
    obs, r, term, trunc, info = env.step(np.full(4, env.vocab.id("+")))  # always wrong
    assert term.all() and not trunc.any() and (r == -1).all()
    assert info.done_idx.tolist() == [0, 1, 2, 3]
    assert [env.vocab.decode(t[: n - 1]) for t, n in zip(info.final_tokens, info.final_length, strict=True)] == before
    assert (obs.length == env.prompt_length).all()


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_oracle_always_succeeds(difficulty, split):
    env = make_env("arithmetic", num_envs=64, seed=0, split=split, difficulty=difficulty)
    success, _ = rollout(env, env.oracle_actions, episodes=200)
    assert success.mean() == 1.0  # success needs the goal: no truncation, no illegal move


def test_random_policy_baseline_is_low():
    env = make_env("arithmetic", num_envs=256, seed=0)
    rng = np.random.default_rng(0)
    success, _ = rollout(env, lambda: env.random_actions(rng), episodes=6000)
    # measured: ~0.003 (1-2 answer digits + <eos> out of 14 tokens)
    assert len(success) > 5000 and np.mean(success) < 0.02


@pytest.mark.parametrize(
    "options, named",
    [
        ({"num_digits": 5}, "num_digits"),
        ({"operators": "*"}, "operators"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"digit_reward": 0.5}, "digit_reward"),
        ({"wrong_reward": 1.0}, "wrong_reward"),
    ],
)
def test_bad_option_values_are_named(options, named):
    with pytest.raises(ValueError, match=named):
        Options(**options)
