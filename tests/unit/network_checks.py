"""Shared check of the Q-network tests: the actor's incremental path gives the learner's Q-values."""

import numpy as np
import torch

from distdqn.envs import make_env
from distdqn.networks import QNetwork


def check_advance_matches_q_all(make_net, task: str, num_envs: int = 5, steps: int = 12) -> None:
    """Step `num_envs` envs of `task` with random actions through several episodes per slot (resets and, for tasks
    that append feedback, multi-token advances) and compare `advance` with `q_all` at every step.
    `make_net(env)` builds the network for the env."""
    env = make_env(task, num_envs=num_envs, seed=1)
    net: QNetwork = make_net(env)
    rng = np.random.default_rng(0)
    obs = env.reset()
    reset = np.ones(num_envs, dtype=bool)
    rows = torch.arange(num_envs)
    with torch.no_grad():
        state = net.initial_state(num_envs)
        for _ in range(steps):
            state, q = net.advance(state, obs.tokens, obs.length, reset)
            full = net.q_all(torch.from_numpy(obs.tokens).long(), torch.from_numpy(obs.length))
            want = full[rows, torch.from_numpy(obs.length).long() - 1]
            torch.testing.assert_close(q, want, atol=1e-5, rtol=1e-5)
            obs, _, _, _, info = env.step(env.random_actions(rng))
            reset = np.zeros(num_envs, dtype=bool)
            reset[info.done_idx] = True


def check_causal(net: QNetwork, vocab: int = 10, length: int = 12) -> None:
    """Changing the tokens after position 5 leaves Q at positions 0..5 unchanged."""
    a = torch.randint(1, vocab, (2, length))
    b = a.clone()
    b[:, 6:] = torch.randint(1, vocab, (2, length - 6))
    with torch.no_grad():
        torch.testing.assert_close(net.q_all(a)[:, :6], net.q_all(b)[:, :6])
