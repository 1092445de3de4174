"""Evaluation: greedy decoding is deterministic per seed, counts episodes by quota, and reports examples."""

import numpy as np
import torch

from distdqn.config import EnvConfig, NetworkConfig
from distdqn.evaluation import evaluate
from distdqn.networks import build_network

torch.set_num_threads(1)
NET = NetworkConfig(embed_dim=8, hidden_dim=16)


def weights(seed):
    torch.manual_seed(seed)
    return {k: v.numpy() for k, v in build_network(NET, 10, 12).state_dict().items()}


def test_deterministic_and_counts_episodes():
    env = EnvConfig(task="tests.fakes:FeedbackEnv")
    a = evaluate(NET, weights(0), env, episodes=23, seed=1, num_envs=8, examples=3)
    b = evaluate(NET, weights(0), env, episodes=23, seed=1, num_envs=8, examples=3)
    assert a == b
    assert a.episodes == 23 and 0.0 <= a.success <= 1.0 and 1 <= a.mean_length <= 3
    assert len(a.examples) == 3
    prompt, generation, success = a.examples[0]
    assert isinstance(prompt, str) and prompt and isinstance(generation, str) and success in (0.0, 1.0)


def test_different_weights_decode_differently():
    env = EnvConfig(task="tests.fakes:FeedbackEnv")
    results = [evaluate(NET, weights(s), env, episodes=16, seed=0, num_envs=16, examples=16) for s in range(3)]
    assert len({tuple(g for _, g, _ in r.examples) for r in results}) > 1


def test_fewer_episodes_than_envs():
    r = evaluate(NET, weights(0), EnvConfig(task="tests.fakes:FeedbackEnv"), episodes=3, seed=0, num_envs=64)
    assert r.episodes == 3 and np.isfinite(r.mean_return)
