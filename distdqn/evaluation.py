"""Held-out evaluation: greedy decoding (masked argmax) of a weights snapshot on a task split; deterministic per seed.

Episodes are spread over the `num_envs` slots by quota (slot b contributes episodes // num_envs, plus one for the
first episodes % num_envs slots), so short episodes are not over-represented the way "the first N to finish" would
be. Decoding goes through the same incremental `advance` path the actors use.

An `Evaluator` builds its network once and loads each snapshot's weights into it: a run evaluates every
`run.eval_interval_s`, and building the network anew each time would reload a pretrained LM from disk
(`network.trunk: hf`) every time, seconds for a GPT-2-sized model. Entries a snapshot does not carry (a frozen trunk)
keep the values the network was built with, which are the ones training leaves unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from distdqn.config import EnvConfig, NetworkConfig
from distdqn.envs import make_env_from_config, numeric_token_values
from distdqn.exploration import greedy
from distdqn.networks import build_network, load_published


@dataclasses.dataclass
class EvalResult:
    success: float  # mean task success over the episodes
    mean_return: float
    mean_length: float  # env steps per episode
    episodes: int
    examples: list[tuple[str, str, float]]  # (prompt, generation, success) of the first finished episodes


class Evaluator:
    """Greedy held-out evaluation of weights snapshots for one (network, env) configuration; the network is built on
    the first call and reused (module docstring)."""

    def __init__(self, network_config: NetworkConfig, env_config: EnvConfig, num_envs: int = 64):
        self.network_config, self.env_config, self.num_envs = network_config, env_config, num_envs
        self._network: torch.nn.Module | None = None
        self._shape: tuple[int, int] | None = None  # (vocab_size, max_len) the network was built for

    def _network_for(self, env) -> torch.nn.Module:
        shape = (env.vocab_size, env.max_len)
        if self._network is None or self._shape != shape:
            token_values = numeric_token_values(env.vocab.tokens)
            self._network = build_network(self.network_config, *shape, token_values).eval()
            self._shape = shape
        return self._network

    def evaluate(
        self, weights: dict[str, np.ndarray], episodes: int, seed: int, split: str = "test", examples: int = 5
    ) -> EvalResult:
        """Greedy-decode `episodes` episodes of the task on `split` with the given weights."""
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        num_envs = min(self.num_envs, episodes)
        env = make_env_from_config(self.env_config, num_envs=num_envs, seed=seed, split=split)
        network = self._network_for(env)
        load_published(network, weights)
        return _decode(network, env, num_envs, episodes, examples)


def evaluate(
    network_config: NetworkConfig,
    weights: dict[str, np.ndarray],
    env_config: EnvConfig,
    episodes: int,
    seed: int,
    split: str = "test",
    num_envs: int = 64,
    examples: int = 5,
) -> EvalResult:
    """One evaluation with a network built for it (`distdqn eval`); a run keeps an `Evaluator` instead."""
    return Evaluator(network_config, env_config, num_envs).evaluate(weights, episodes, seed, split, examples)


def _decode(network: torch.nn.Module, env, num_envs: int, episodes: int, examples: int) -> EvalResult:
    """Play `episodes` greedy episodes over the env's `num_envs` slots by quota."""
    quota = np.full(num_envs, episodes // num_envs) + (np.arange(num_envs) < episodes % num_envs)
    returns, successes, lengths, shown = [], [], [], []
    ep_return = np.zeros(num_envs)
    ep_len = np.zeros(num_envs, np.int64)
    with torch.inference_mode():
        obs = env.reset()
        state = network.initial_state(num_envs)
        reset = np.ones(num_envs, dtype=bool)
        while (quota > 0).any():
            state, q = network.advance(state, obs.tokens, obs.length, reset)
            actions = greedy(q.numpy(), obs.action_mask)
            prompt_length = env.prompt_length.copy()  # the env resets it for finished slots
            obs, reward, _, _, info = env.step(actions)
            ep_return += reward
            ep_len += 1
            done = info.done_idx
            for i, b in enumerate(done):  # per finished episode only, not per step
                if quota[b] > 0:
                    quota[b] -= 1
                    returns.append(ep_return[b])
                    successes.append(float(info.success[i]))
                    lengths.append(ep_len[b])
                    if len(shown) < examples:
                        tokens, n = info.final_tokens[i], info.final_length[i]
                        shown.append(
                            (
                                env.vocab.decode(tokens[: prompt_length[b]]),
                                env.generated(tokens, n, prompt_length[b]),
                                float(info.success[i]),
                            )
                        )
            ep_return[done] = 0.0
            ep_len[done] = 0
            reset = np.zeros(num_envs, dtype=bool)
            reset[done] = True
    return EvalResult(float(np.mean(successes)), float(np.mean(returns)), float(np.mean(lengths)), len(returns), shown)
