"""Actor: transitions in the spec layout, priorities consistent with the network, epsilon, weights, state."""

import numpy as np
import pytest
import torch

from distdqn import spec
from distdqn.actor import Actor
from distdqn.config import ActorConfig, EnvConfig, NetworkConfig
from distdqn.exploration import masked

torch.set_num_threads(1)
NET = NetworkConfig(embed_dim=8, hidden_dim=16)


def make_actor(task="tests.fakes:CopyEnv", index=0, num_actors=2, seed=0, net=NET, **actor_kw):
    env = EnvConfig(task=task, envs_per_actor=8)
    # the Ape-X paper's ladder, no warm-up: the tests below check epsilons against these numbers
    actor_kw = {"eps_base": 0.4, "eps_alpha": 7.0, "eps_decay_steps": 0, **actor_kw}
    return Actor(env, net, ActorConfig(n_step=2, gamma=0.9, **actor_kw), index, num_actors, seed)


@pytest.mark.parametrize("task", ["tests.fakes:CopyEnv", "tests.fakes:FeedbackEnv"])
@pytest.mark.parametrize("trunk", ["gru", "transformer"])
@pytest.mark.parametrize("bootstrap", [False, True])
def test_collect_layout_and_priorities_match_the_network(task, trunk, bootstrap):
    net = NetworkConfig(trunk=trunk, embed_dim=8, hidden_dim=16, num_heads=2)
    actor = make_actor(task, net=net, bootstrap_on_truncation=bootstrap)
    out = actor.collect(10)
    t = out.transitions
    n = len(out.priorities)
    assert n > 0 and out.env_steps == 80 and out.priorities.dtype == np.float32
    for name, (dtype, shape) in spec.transition_dtypes(actor.vocab_size, actor.max_len).items():
        assert t[name].dtype == dtype and t[name].shape == (n, *shape), name
    assert (t[spec.LEN_NEXT] > t[spec.LEN_S]).all()
    assert (t[spec.TOKENS][np.arange(n), t[spec.LEN_S]] == t[spec.ACTION]).all()
    assert_priorities_match_network(actor, out)


def assert_priorities_match_network(actor, out):
    """Recompute the initial priorities from the stored rows with the actor's network."""
    t, n = out.transitions, len(out.priorities)
    tokens = torch.from_numpy(t[spec.TOKENS].astype(np.int64))
    pos = torch.from_numpy(np.stack([t[spec.LEN_S], t[spec.LEN_NEXT]], 1).astype(np.int64) - 1)
    with torch.no_grad():
        q = actor.network.q_at(tokens, pos).numpy()
    q_sa = q[np.arange(n), 0, t[spec.ACTION]]
    boot = np.where(t[spec.DISCOUNT] > 0, masked(q[:, 1]).max(1), 0.0)
    want = np.abs(t[spec.RETURN] + t[spec.DISCOUNT] * boot - q_sa)
    np.testing.assert_allclose(out.priorities, want, atol=1e-4)


def test_episode_stats_with_an_oracle_like_greedy_network():
    actor = make_actor()
    out = actor.collect(12)
    assert out.episodes.count > 0 and 0 <= out.episodes.mean_success <= 1
    assert out.episodes.epsilon == pytest.approx(0.4)


def test_epsilon_ladder_and_decay():
    assert make_actor(index=1, num_actors=2).epsilon == pytest.approx(0.4**8)
    actor = make_actor(eps_decay_steps=160)
    assert actor.epsilon == 1.0
    actor.collect(10)  # 80 env steps
    assert actor.epsilon == pytest.approx(1.0 + 0.5 * (0.4 - 1.0))


def test_same_seed_same_transitions_and_load_weights_changes_behaviour():
    a, b = make_actor(seed=3), make_actor(seed=3)
    ta, tb = a.collect(6).transitions, b.collect(6).transitions
    assert all(np.array_equal(ta[k], tb[k]) for k in ta)
    other = make_actor(seed=4)
    weights = {k: v.numpy().copy() for k, v in other.network.state_dict().items()}
    a.load_weights(7, weights)
    assert a.weights_version == 7
    for k, v in a.network.state_dict().items():
        assert np.array_equal(v.numpy(), weights[k])
    a.collect(2)  # completes the n-step windows begun before the load (their Q(s, a) is the old weights')
    assert_priorities_match_network(a, a.collect(4))  # states recomputed under the new weights


def test_state_dict_round_trip():
    a = make_actor(eps_decay_steps=1000)
    a.collect(5)
    b = make_actor(eps_decay_steps=1000)
    b.load_state_dict(a.state_dict())
    assert b.env_steps == a.env_steps == 40 and b.epsilon == a.epsilon
    assert b.rng.random() == a.rng.random()


@pytest.mark.parametrize(("bootstrap", "expect_bootstrap"), [(False, False), (True, True)])
def test_budget_cut_is_terminal_unless_asked_to_bootstrap(bootstrap, expect_bootstrap):
    """FeedbackEnv episodes that never say <eos> end by the step budget (truncated): by default their last window
    does not bootstrap (the state shows the budget is spent); with bootstrap_on_truncation it does."""
    actor = make_actor("tests.fakes:FeedbackEnv", bootstrap_on_truncation=bootstrap, eps_base=1.0)
    t = actor.collect(40).transitions
    at_budget = t[spec.LEN_NEXT] >= actor.max_len - 2  # windows that end at the end of the token budget
    assert at_budget.any()
    assert (t[spec.DISCOUNT][at_budget] > 0).any() == expect_bootstrap


def test_softmax_exploration_draws_from_the_networks_own_q():
    """actor.explore 'softmax': the random action is a draw from softmax(Q / T) over the legal tokens; a cold
    temperature gives the greedy token, a hot one spreads like the uniform draw."""
    cold = make_actor(explore="softmax", explore_temperature=1e-6, seed=1)
    cold.collect(1)
    rows = np.arange(cold.num_envs)
    for _ in range(5):
        np.testing.assert_array_equal(cold._random_actions(rows), cold._mq.argmax(axis=1))
    hot = make_actor(explore="softmax", explore_temperature=1e6, seed=1)
    hot.collect(1)
    draws = np.concatenate([hot._random_actions(rows) for _ in range(50)])
    assert len(set(draws.tolist())) == hot.vocab_size - 1  # every legal token (all but <pad>) comes up
