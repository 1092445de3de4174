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
from distdqn.envs.translation import bleu2, translate

DIFFICULTIES = ["easy", "medium", "hard"]


@pytest.mark.parametrize(
    "subject, verb, obj, adverb, source, target",
    [
        (("su", "dax", None, False), "mib", None, None, "su dax mib", "a cat run +s"),
        (("ka", "blick", "lum", True), "mib", None, None, "ka blick lum ri mib", "the red dog +s run"),
        (("su", "wug", None, True), "kel", None, None, "su wug ri kel", "some bird +s sleep"),
        (("ka", "blick", None, False), "pel", ("su", "dax", "gorp", True), "vo",
         "ka blick vo pel su dax gorp ri", "the dog see +s some big cat +s quickly"),
    ],
)  # fmt: skip
def test_translation_rules(subject, verb, obj, adverb, source, target):
    src, tgt = translate(subject, verb, obj, adverb)
    assert " ".join(src) == source and " ".join(tgt) == target


def _bleu(hyp, ref):
    h, r = [[ord(c) for c in s] for s in (hyp, ref)]
    width = max(len(h), len(r), 1)
    pad = lambda x: np.array([x + [0] * (width - len(x))])  # noqa: E731
    return float(bleu2(pad(h), np.array([len(h)]), pad(r), np.array([len(r)]))[0])


@pytest.mark.parametrize(
    "hyp, ref, expected",
    [
        ("abcd", "abcd", 1.0),
        ("", "abcd", 0.0),
        ("abcd", "abce", np.sqrt(3 / 4 * 3 / 4)),  # p1 = 3/4; bigrams ab, bc match: (2 + 1) / (3 + 1)
        ("ab", "abcd", np.exp(1 - 2) * np.sqrt(1.0 * 1.0)),  # brevity penalty exp(1 - 4/2)
        ("aaaa", "abcd", np.sqrt(1 / 4 * 1 / 4)),  # clipping: 'a' counts once; no bigram matches: (0 + 1) / (3 + 1)
        ("dcba", "abcd", np.sqrt(1.0 * 1 / 4)),
    ],
)
def test_bleu2_table(hyp, ref, expected):
    assert _bleu(hyp, ref) == pytest.approx(expected)


def _env(source, **options):
    env = make_env("translation", num_envs=1, seed=0, **options)
    env.reset()
    pid = [" ".join(s) for s in env.splits["train"]].index(source)
    env.prompt_id[0] = pid
    return env


@pytest.mark.parametrize(
    "answer, reward, success",
    [
        ("a cat run +s <eos>", 1.0, 1.0),
        ("a cat run <eos>", 0.5 * np.exp(1 - 4 / 3) * np.sqrt(1.0 * 1.0), 0.0),  # agreement missing
        ("cat a run +s <eos>", 0.5 * np.sqrt(1.0 * 2 / 4), 0.0),  # word order wrong
        ("<eos>", 0.0, 0.0),  # immediate <eos>
    ],
)
def test_translation_rewards(answer, reward, success):
    env = _env("su dax mib")
    _, r, term, _, info = step_words(env, answer.split())
    assert term[0] and info.success[0] == success
    assert r[0] == pytest.approx(reward, abs=1e-6)


def test_translation_truncation():
    env = _env("su dax mib")
    outs = [env.step(np.array([env.vocab.id("cat")])) for _ in range(env.max_steps)]
    assert outs[-1][3][0] and not outs[-1][2][0] and outs[-1][1][0] == 0.0 and outs[-1][4].success[0] == 0.0


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_translation_oracle_always_succeeds(difficulty, split):
    env = make_env("translation", num_envs=64, difficulty=difficulty, split=split)
    success, returns = rollout(env, env.oracle_actions, 200)
    assert success.mean() == 1.0 and np.allclose(returns, 1.0)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_translation_random_policy_never_succeeds(difficulty):
    env = make_env("translation", num_envs=256, difficulty=difficulty)
    rng = np.random.default_rng(0)
    success, returns = rollout(env, lambda: env.random_actions(rng), 1000)
    assert success.mean() < 0.01 and returns.max() < 1.0


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_translation_seeding_splits_and_reset(difficulty):
    check_seeding("translation", difficulty)
    check_splits("translation", difficulty)
    check_auto_reset(make_env("translation", num_envs=8, difficulty=difficulty))
    env = make_env("translation", difficulty=difficulty)
    adjectives = {"lum", "gorp", "nix", "tiv", "bam", "sul"}

    def pairs(sentences):
        return {(s[i + 1], s[i]) for s in sentences for i in range(len(s) - 1) if s[i + 1] in adjectives}

    train_pairs, test_pairs = pairs(env.splits["train"]), pairs(env.splits["test"])
    assert test_pairs - train_pairs  # the test split holds adjective-noun pairs never seen in train
    assert {w for s in env.splits["test"] for w in s} <= {w for s in env.splits["train"] for w in s}


def test_translation_errors():
    check_option_errors("translation", {"partial_scale": 1.5})
    check_action_errors("translation")


def test_translation_prefix_credit_pays_along_the_reference_and_keeps_an_exact_answer_at_one():
    env = _env("su dax mib", prefix_credit=0.4)  # reference: a cat run +s
    rewards, _, success = word_rewards(env, "a cat run +s <eos>".split())
    assert rewards[:4] == pytest.approx([0.1] * 4) and sum(rewards) == pytest.approx(1.0) and success == 1.0
    # off the track once, no more credit, even for later tokens that match the reference in place
    rewards, _, success = word_rewards(_env("su dax mib", prefix_credit=0.4), "a dog run +s <eos>".split())
    assert rewards[:4] == pytest.approx([0.1, 0, 0, 0]) and success == 0.0


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_translation_prefix_credit_cannot_be_farmed(difficulty):
    """Reward hacking regression: a policy that collects the credit and stops one token short (or runs past the end)
    succeeds never and earns less than an exact answer; the oracle still earns exactly 1."""
    env = make_env("translation", num_envs=64, difficulty=difficulty, prefix_credit=0.5)
    success, returns = rollout(env, env.oracle_actions, 200)
    assert success.mean() == 1.0 and np.allclose(returns, 1.0)

    def short_of_the_answer():
        plan = env.oracle_actions()
        last = env.steps >= env.ref_len[env.prompt_id] - 1
        return np.where(last, env.eos_id, plan)

    def past_the_answer():
        plan = env.oracle_actions()
        at_end = env.steps == env.ref_len[env.prompt_id]
        return np.where(at_end, env.ref[env.prompt_id, 0], plan)  # a repeated word instead of <eos>

    for policy in (short_of_the_answer, past_the_answer):
        success, returns = rollout(env, policy, 200)
        assert success.mean() == 0.0 and returns.max() < 0.95


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_translation_action_mask_is_the_target_side(difficulty):
    env = make_env("translation", num_envs=64, difficulty=difficulty, action_mask=True)
    obs = env.reset(seed=0)
    legal = set(np.flatnonzero(obs.action_mask[0]).tolist())
    assert env.eos_id in legal and env.vocab.id("ka") not in legal and env.vocab.id("<sep>") not in legal
    for _ in range(100):  # the oracle's answer is always inside the mask
        actions = env.oracle_actions()
        assert obs.action_mask[np.arange(64), actions].all()
        obs, *_ = env.step(actions)
    rng = np.random.default_rng(0)
    success, _ = rollout(env, lambda: env.random_actions(rng), 1000)
    assert success.mean() < 0.01
