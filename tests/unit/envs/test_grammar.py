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
from distdqn.envs.base import Vocab
from distdqn.envs.cfg import DEAD, FINAL, Grammar, compile_grammar
from distdqn.envs.grammar import BOS

DIFFICULTIES = ["easy", "medium", "hard"]


def test_cfg_compiles_a_finite_grammar_to_a_minimal_dfa():
    g = Grammar.from_dict("S", {"S": ["NP V", "NP V NP"], "NP": ["the N", "a N"], "N": ["dog", "cat"], "V": ["sees"]})
    vocab = Vocab(["<pad>", "<eos>", "the", "a", "dog", "cat", "sees"])
    dfa = compile_grammar(g, vocab)
    assert dfa is compile_grammar(g, vocab)  # cached
    enc = vocab.encode
    assert dfa.accepts(enc("the dog sees".split())) and dfa.accepts(enc("a cat sees the dog".split()))
    for bad in ["", "the dog", "dog sees", "the dog sees the", "the dog sees sees"]:
        assert not dfa.accepts(enc(bad.split())), bad
    assert dfa.dist[dfa.start] == 4  # three words and <eos>
    # DEAD, FINAL, start, after det, after noun, after verb (accepting), after det 2, after noun 2 (accepting)
    assert dfa.num_states == 8
    assert dfa.run(enc("the dog sees".split()).tolist() + [1]) == FINAL
    assert dfa.run([0]) == DEAD  # <pad> is never part of a sentence


def test_cfg_rejects_recursion_and_unknown_words():
    with pytest.raises(ValueError, match="recursive"):
        compile_grammar(Grammar.from_dict("S", {"S": ["a S", "a"]}), Vocab(["<eos>", "a"]))
    with pytest.raises(ValueError, match="missing"):
        compile_grammar(Grammar.from_dict("S", {"S": ["b"]}), Vocab(["<eos>", "a"]))


def _env(**options):
    env = make_env("grammar", num_envs=1, seed=0, **options)
    env.reset()
    return env


@pytest.mark.parametrize(
    "words, reward, terminated, success",
    [
        (["runs", "<eos>"], 1.0, True, 1.0),  # a valid completion of the opening
        (["<eos>"], -1.0, True, 0.0),  # immediate <eos>: the opening alone is not a sentence
        (["runs", "runs"], -1.0, True, 0.0),  # ends at the first error (end_on_error)
        (["eats", "the", "cake", "<eos>"], 1.0, True, 1.0),
        (["eats", "the", "dog", "<eos>"], -1.0, True, 0.0),  # "eats" needs an edible object
        (["eats", "the"], 0.0, False, 0.0),  # mid-sentence
    ],
)
def test_grammar_rewards(words, reward, terminated, success):
    env = _env()
    _set_opening(env, ["the", "dog"])
    _, r, term, _, info = step_words(env, words)
    assert r[0] == pytest.approx(reward) and term[0] == terminated
    if terminated:
        assert info.success[0] == success


def test_grammar_without_end_on_error_waits_for_eos_and_truncates():
    env = _env(end_on_error=False, max_steps=3)
    outs = [env.step(np.array([env.vocab.id("runs")])) for _ in range(3)]
    assert [o[2][0] for o in outs] == [False] * 3 and outs[-1][3][0]  # truncated after the budget, never terminated
    assert [o[1][0] for o in outs] == [0.0] * 3 and outs[-1][4].success[0] == 0.0


def _set_opening(env, words):
    env.tokens[0, 1:3] = env.vocab.encode(words)
    env.state[0] = env.dfa.run(env.vocab.encode(words))


def test_grammar_novelty_bonus_penalises_repeats():
    env = _env(novelty_bonus=0.5)
    rewards = []
    for words in [["runs"], ["runs"], ["sleeps"], ["runs"]]:
        _set_opening(env, ["the", "dog"])
        rewards.append(step_words(env, words + ["<eos>"])[1][0])
    assert rewards == [1.0, 0.5, 1.0, 0.5]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_grammar_oracle_always_succeeds(difficulty, split):
    env = make_env("grammar", num_envs=64, difficulty=difficulty, split=split)
    success, returns = rollout(env, env.oracle_actions, 200)
    assert success.mean() == 1.0 and returns.min() >= 0.5 and returns.max() <= 1.0


@pytest.mark.parametrize("difficulty, bound", [("easy", 0.05), ("medium", 0.02), ("hard", 0.01)])
def test_grammar_random_policy_rarely_succeeds(difficulty, bound):
    env = make_env("grammar", num_envs=256, difficulty=difficulty)
    rng = np.random.default_rng(0)
    success, _ = rollout(env, lambda: env.random_actions(rng), 2000)
    assert success.mean() < bound


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_grammar_seeding_splits_and_reset(difficulty):
    check_seeding("grammar", difficulty)
    check_splits("grammar", difficulty)
    check_auto_reset(make_env("grammar", num_envs=8, difficulty=difficulty))
    env = make_env("grammar", num_envs=8, difficulty=difficulty)
    assert (env.reset().tokens[:, 0] == env.vocab.id(BOS)).all()


def test_grammar_errors():
    check_option_errors("grammar", {"opening_words": 5})
    check_action_errors("grammar")
