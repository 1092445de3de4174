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
    word_rewards,
)

from distdqn.envs import make_env

DIFFICULTIES = ["easy", "medium", "hard"]


def _env(concepts, **options):
    """A one-slot env whose prompt is replaced by `concepts` (only the scoring state matters)."""
    env = make_env("keyword", num_envs=1, seed=0, **options)
    env.reset()
    ids = env.vocab.encode(concepts)
    env.concepts[0] = -1
    env.concepts[0, : len(ids)] = ids
    env.covered[0] = env.concepts[0] < 0
    env.credit[0] = env.opts.concept_credit / len(ids)
    return env


def _return(env, words):
    rewards, terminated, success = word_rewards(env, words)
    return sum(rewards), terminated, success


@pytest.mark.parametrize(
    "concepts, sentence, ret, success",
    [
        (["dog", "runs"], "the dog runs <eos>", 1.0, 1.0),
        (["dog", "runs"], "a happy dog runs <eos>", 1.0, 1.0),
        (["cat", "eats"], "the cat eats the cake <eos>", 1.0, 1.0),
        (["dog", "runs"], "the dog sleeps <eos>", 0.15, 0.0),  # plausible, one concept missing: partial credit
        (["dog", "runs"], "the cat sleeps <eos>", 0.0, 0.0),  # no concept
        (["dog", "runs"], "<eos>", -1.0, 0.0),  # immediate <eos>
        (["dog", "runs"], "the dog <eos>", -1.0 + 0.15, 0.0),  # incomplete sentence
        (["dog", "runs"], "dog", -1.0, 0.0),  # ungrammatical start ends at once (end_on_error), no credit
        (["dog", "runs"], "the dog eats the dog", 0.15 - 0.5, 0.0),  # grammatical so far, but dogs are not food
    ],
)
def test_keyword_rewards(concepts, sentence, ret, success):
    env = _env(concepts)
    total, terminated, succ = _return(env, sentence.split())
    assert terminated and succ == success
    assert total == pytest.approx(ret, abs=1e-6)


def test_keyword_selectional_restrictions_block_implausible_sentences():
    """'the red park sleeps' is grammatical but implausible: it must not score, whatever the concepts."""
    env = _env(["park", "sleeps"], lexicon="medium", end_on_error=False, max_steps=10)
    total, terminated, succ = _return(env, "the red park sleeps <eos>".split())
    assert terminated and succ == 0.0 and total < 0
    env = _env(["park", "sleeps"], lexicon="medium", end_on_error=False, max_steps=10)
    total, _, succ = _return(env, "the park sleeps <eos>".split())
    assert succ == 0.0 and total == pytest.approx(-0.5)  # no credit: "the park" is already implausible
    env = _env(["boy", "cake", "eats"], lexicon="medium", max_steps=10)
    total, _, succ = _return(env, "the hungry boy eats the sweet cake <eos>".split())
    assert succ == 1.0 and total == pytest.approx(1.0)


def test_keyword_truncation_gives_no_success():
    env = _env(["dog", "runs"], max_steps=4)
    _, r, term, trunc, info = step_words(env, "the dog eats the".split())
    assert trunc[0] and not term[0] and info.success[0] == 0.0


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_keyword_oracle_always_succeeds(difficulty, split):
    env = make_env("keyword", num_envs=64, difficulty=difficulty, split=split)
    success, returns = rollout(env, env.oracle_actions, 200)
    assert success.mean() == 1.0 and np.allclose(returns, 1.0)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_keyword_random_policy_rarely_succeeds(difficulty):
    env = make_env("keyword", num_envs=256, difficulty=difficulty)
    rng = np.random.default_rng(0)
    success, _ = rollout(env, lambda: env.random_actions(rng), 2000)
    assert success.mean() < 0.01


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_keyword_prompts_seeding_splits_and_reset(difficulty):
    check_seeding("keyword", difficulty)
    check_splits("keyword", difficulty)
    check_auto_reset(make_env("keyword", num_envs=8, difficulty=difficulty))
    env = make_env("keyword", num_envs=32, difficulty=difficulty)
    obs = env.reset()
    sep = env.vocab.id("<sep>")
    assert (obs.tokens[np.arange(32), obs.length - 1] == sep).all()
    # every test concept also occurs in some train prompt: held out are the combinations, not the words
    train_words = {w for c in env.splits["train"] for w in c}
    assert {w for c in env.splits["test"] for w in c} <= train_words


def test_keyword_easy_is_small():
    env = make_env("keyword", difficulty="easy")
    assert 20 <= env.vocab_size <= 30 and env.max_steps <= 8
    assert all(len(c) == 2 for c in env.splits["train"] + env.splits["test"])


def test_keyword_errors():
    check_option_errors("keyword", {"max_concepts": 4})
    check_action_errors("keyword")


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_keyword_action_mask_admits_the_oracle_and_only_finishable_plausible_sentences(difficulty):
    env = make_env("keyword", num_envs=64, difficulty=difficulty, action_mask=True)
    assert env.has_action_mask
    obs = env.reset(seed=1)
    for _ in range(200):  # the oracle's sentence is always inside the mask
        actions = env.oracle_actions()
        assert obs.action_mask[np.arange(64), actions].all()
        obs, *_ = env.step(actions)
    # a random policy inside the mask never writes an implausible or unfinished sentence ...
    rng = np.random.default_rng(0)
    env.reset(seed=2)
    ends, returns, ret = [], [], np.zeros(64)
    while len(returns) < 2000:
        _, r, term, trunc, info = env.step(env.random_actions(rng))  # uniform over the masked-in tokens
        ret += r
        assert not trunc.any()
        ends += term[info.done_idx].tolist()
        returns += ret[info.done_idx].tolist()
        ret[info.done_idx] = 0.0
    assert all(ends) and min(returns) >= 0.0
    # ... yet the mask says nothing of the concepts: it still rarely succeeds (reward hacking regression)
    success, _ = rollout(env, lambda: env.random_actions(rng), 2000)
    assert success.mean() < 0.1
