import numpy as np
import pytest
from env_checks import (
    check_action_errors,
    check_auto_reset,
    check_option_errors,
    check_seeding,
    check_splits,
    rollout,
    step_words,
)

from distdqn.envs import make_env
from distdqn.envs.sentiment import compound

DIFFICULTIES = ["easy", "medium", "hard"]


def _end(words, difficulty="easy", **options):
    env = make_env("sentiment", num_envs=1, seed=0, difficulty=difficulty, **options)
    env.reset()
    _, r, term, trunc, info = step_words(env, words)
    return float(r[0]), bool(term[0]), bool(trunc[0]), (float(info.success[0]) if info.done_idx.size else None)


@pytest.mark.parametrize(
    "words, difficulty, reward, success",
    [
        ("great <eos>", "easy", compound("great"), 1.0),
        ("wonderful and lovely <eos>", "easy", compound("wonderful and lovely"), 1.0),
        ("very good <eos>", "easy", compound("very good"), 0.0),  # 0.49: just under the 0.5 threshold
        ("terrible <eos>", "easy", compound("terrible"), 0.0),
        ("long <eos>", "easy", 0.0, 0.0),  # neutral
        ("not bad <eos>", "medium", compound("not bad"), 0.0),  # VADER handles the negation
        ("<eos>", "easy", -1.0, 0.0),  # immediate <eos>: the empty continuation does not parse
        ("great great", "easy", -1.0, 0.0),  # ungrammatical, ends at once
        ("great and great <eos>", "easy", -0.5, 0.0),  # repetition gate
    ],
)
def test_sentiment_rewards(words, difficulty, reward, success):
    r, term, _, succ = _end(words.split(), difficulty)
    assert term and succ == success
    assert r == pytest.approx(reward, abs=1e-6)


def test_sentiment_gates_stop_reward_hacking():
    """Raw VADER loves repetition; the gates make it worthless."""
    assert compound("great great great great") > 0.9
    r, term, _, succ = _end("great great great great <eos>".split(), end_on_error=False, max_steps=5)
    assert term and r == -1.0 and succ == 0.0  # not in the grammar
    r, _, _, succ = _end("so great and so lovely <eos>".split(), "hard", min_distinct_ratio=1.0)
    assert r == -0.5 and succ == 0.0  # "so" repeated: the repetition gate
    r, _, _, succ = _end("so great and really lovely <eos>".split(), "hard")
    assert r == pytest.approx(compound("so great and really lovely")) and succ == 1.0


def test_sentiment_truncation():
    r, term, trunc, succ = _end("very great and".split(), max_steps=3)
    assert trunc and not term and r == 0.0 and succ == 0.0


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_sentiment_oracle_always_succeeds(difficulty, split):
    env = make_env("sentiment", num_envs=64, difficulty=difficulty, split=split)
    success, returns = rollout(env, env.oracle_actions, 200)
    assert success.mean() == 1.0 and returns.min() >= env.opts.success_threshold


@pytest.mark.parametrize("difficulty, bound", [("easy", 0.02), ("medium", 0.01), ("hard", 0.01)])
def test_sentiment_random_policy_rarely_succeeds(difficulty, bound):
    env = make_env("sentiment", num_envs=256, difficulty=difficulty)
    rng = np.random.default_rng(0)
    success, _ = rollout(env, lambda: env.random_actions(rng), 2000)
    assert success.mean() < bound


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_sentiment_seeding_splits_and_reset(difficulty):
    check_seeding("sentiment", difficulty)
    check_splits("sentiment", difficulty)
    check_auto_reset(make_env("sentiment", num_envs=8, difficulty=difficulty))
    env = make_env("sentiment", difficulty=difficulty)
    assert 50 <= env.vocab_size <= 150


def test_sentiment_errors():
    check_option_errors("sentiment", {"min_distinct_ratio": 0.0})
    check_action_errors("sentiment")
