"""Held-out evaluation: greedy decoding (masked argmax) of a weights snapshot on a task split; deterministic per seed.

Episodes are spread over the `num_envs` slots by quota (slot b contributes episodes // num_envs, plus one for the
first episodes % num_envs slots), so short episodes are not over-represented the way "the first N to finish" would
be. Decoding goes through the same incremental `advance` path the actors use.
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
    """Greedy-decode `episodes` episodes of `env_config.task` on `split` with the given weights."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    num_envs = min(num_envs, episodes)
    env = make_env_from_config(env_config, num_envs=num_envs, seed=seed, split=split)
    token_values = numeric_token_values(env.vocab.tokens)
    network = build_network(network_config, env.vocab_size, env.max_len, token_values).eval()
    load_published(network, weights)
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
