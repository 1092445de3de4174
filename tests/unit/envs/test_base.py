"""The batched env API: action checks, auto-reset, the prefix-extension invariant, truncation vs termination."""

import numpy as np
import pytest

from distdqn.envs import EOS, PAD, TextEnv, Vocab, make_env


class ToyEnv(TextEnv):
    """Prompt `p` * (1..3); actions `a`/`b` continue, `<eos>` terminates (success 1); after every action the env
    appends `extra` feedback tokens `f` (0 = none)."""

    name = "toy"

    def __init__(self, num_envs=4, max_len=12, max_steps=5, extra=0, seed=0):
        super().__init__(num_envs, Vocab([PAD, EOS, "p", "a", "b", "f"]), max_len, max_steps, seed=seed)
        self.extra = extra

    def _reset_slots(self, idx):
        n = self.rng.integers(1, 4, size=len(idx))
        self.tokens[idx, :3] = np.where(np.arange(3) < n[:, None], self.vocab.id("p"), 0)
        self.length[idx] = n

    def _score(self, actions):
        eos = actions == self.vocab.id(EOS)
        if self.extra:
            self._append(self._all, np.full((self.num_envs, self.extra), self.vocab.id("f")))
        return eos * 1.0, eos, eos * 1.0


def act(env, token):
    return np.full(env.num_envs, env.vocab.id(token))


@pytest.mark.parametrize(
    "actions, error, match",
    [
        (np.zeros(3, dtype=np.int64), ValueError, r"shape \(4,\)"),
        (np.zeros((4, 1), dtype=np.int64), ValueError, r"shape \(4,\)"),
        (np.full(4, 0.0), TypeError, "integers"),
        (np.array([0, 1, 6, 2]), ValueError, r"\[0, 6\).*\[6\]"),
        (np.array([-1, 1, 1, 1]), ValueError, r"\[-1\]"),
    ],
)
def test_bad_actions_are_rejected(actions, error, match):
    env = ToyEnv()
    env.reset()
    with pytest.raises(error, match=match):
        env.step(actions)


@pytest.mark.parametrize(
    "max_len, max_steps, extra, actions, expect",
    [
        # (terminated, truncated) after the last action, for slot 0 whose prompt we fix to length 1
        (12, 3, 0, ["a", "a", "a"], (False, True)),  # the step budget truncates
        (12, 3, 0, ["a", "a", "<eos>"], (True, False)),  # <eos> on the last allowed step: terminated wins
        (4, 10, 0, ["a", "b", "a"], (False, True)),  # the token budget (max_len) truncates
        (7, 10, 2, ["a", "a"], (False, True)),  # env-appended feedback fills max_len: truncated
        (12, 10, 0, ["<eos>"], (True, False)),
    ],
)
def test_truncation_vs_termination(max_len, max_steps, extra, actions, expect):
    env = ToyEnv(num_envs=1, max_len=max_len, max_steps=max_steps, extra=extra)
    env.reset()
    env.tokens[0] = 0
    env.tokens[0, 0] = env.vocab.id("p")
    env.length[0] = env.prompt_length[0] = 1
    for i, token in enumerate(actions):
        _, reward, terminated, truncated, info = env.step(act(env, token))
        done = i == len(actions) - 1
        assert (bool(terminated[0]), bool(truncated[0])) == (expect if done else (False, False))
    assert info.done_idx.tolist() == [0]
    assert info.final_length[0] == min(1 + len(actions) * (1 + extra), max_len)
    assert info.success[0] == float(expect[0])


def test_auto_reset_keeps_the_final_observation():
    env = ToyEnv(num_envs=3, max_steps=2)
    env.reset(seed=0)
    prompts = env.tokens.copy(), env.length.copy()
    env.step(np.array([3, 3, 1]))  # a, a, <eos>
    obs, _, terminated, truncated, info = env.step(np.array([4, 1, 3]))
    # slot 2 finished on step 1 and restarted; slot 0 truncated, slot 1 terminated, both on step 2
    assert terminated.tolist() == [False, True, False] and truncated.tolist() == [True, False, False]
    assert info.done_idx.tolist() == [0, 1]
    for k, b in enumerate(info.done_idx):
        n = prompts[1][b]
        assert np.array_equal(info.final_tokens[k, :n], prompts[0][b, :n])
        assert info.final_tokens[k, n : n + 2].tolist() == [3, [4, 1][k]]
    assert (obs.length[[0, 1]] == env.prompt_length[[0, 1]]).all() and (env.steps[[0, 1]] == 0).all()
    assert obs.length[2] == env.prompt_length[2] + 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: ToyEnv(num_envs=16, extra=1, max_len=10),
        lambda: make_env("arithmetic", num_envs=16, difficulty="medium"),
        lambda: make_env("shortest_path", num_envs=16, action_mask=True),
        lambda: make_env("wordle", num_envs=16),
    ],
)
def test_prefix_extension_invariant(make):
    """Within an episode, every observation extends the previous one; a finished slot's final row does too."""
    env = make()
    rng = np.random.default_rng(0)
    obs = env.reset(seed=0)
    for _ in range(60):
        old_tokens, old_length = obs.tokens.copy(), obs.length.copy()
        actions = env.oracle_actions() if rng.random() < 0.5 and env.name != "toy" else env.random_actions(rng)
        obs, _, terminated, truncated, info = env.step(actions)
        done = terminated | truncated
        live = np.flatnonzero(~done)
        assert (obs.length[live] > old_length[live]).all()
        for b in live:
            assert np.array_equal(obs.tokens[b, : old_length[b]], old_tokens[b, : old_length[b]])
            assert (obs.tokens[b, obs.length[b] :] == 0).all()
        for k, b in enumerate(info.done_idx):
            assert info.final_length[k] > old_length[b]
            assert np.array_equal(info.final_tokens[k, : old_length[b]], old_tokens[b, : old_length[b]])
        assert obs.tokens.dtype == np.int32 and obs.length.dtype == np.int32


def test_vocab_basics():
    vocab = Vocab(["a", "b"])
    assert vocab.tokens == [PAD, "a", "b"] and vocab.id("b") == 2 and "a" in vocab and len(vocab) == 3
    assert vocab.decode(np.array([1, 0, 2])) == "a b"
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(["a", "a"])
    with pytest.raises(KeyError, match="'z'"):
        vocab.id("z")


def test_reset_seed_is_deterministic():
    a, b = ToyEnv(seed=1), ToyEnv(seed=2)
    assert np.array_equal(a.reset(seed=7).tokens, b.reset(seed=7).tokens)
