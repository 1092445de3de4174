"""Exploration: the Ape-X epsilon ladder, its decay schedule, and vectorised action selection over masked Q (numpy).

The epsilon ladder (Horgan et al. 2018, Ape-X): actor i of N explores with

    eps_i = eps_base ** (1 + alpha * i / (N - 1)),      i = 0 .. N-1     (eps_base when N == 1)

so actor 0 uses eps_base (0.4 by default) and actor N-1 uses eps_base ** (1 + alpha) (0.4 ** 8 ~ 0.00066 with
alpha = 7): a fixed spread from broad exploration to near-greedy, instead of one annealed epsilon. With few actors
the ladder is coarse, so `decayed_epsilon` optionally starts every actor at 1.0 and lowers it linearly to its
ladder value over `decay_steps` env steps (a deviation from Ape-X, key `actor.eps_decay_steps`).

Action selection works on numpy Q-values [B, V]. Token 0 (`<pad>`) is never an action, and an optional task mask
[B, V] bool removes further actions. Random actions are uniform over the legal ones; or (`actor.explore: softmax`,
`boltzmann`) drawn from the network's own softmax(Q / T), so tokens already found bad are rarely retried; or
(`actor.explore: lm`, `lm_sample`) drawn from a language model's next-token distribution cut to its top-k tokens and
top-p nucleus: with a 50k-token vocabulary a uniform draw is almost always a token no text would have there, so
uniform exploration mostly fills the replay with one-step failures, while the LM's draw explores among plausible
continuations.
"""

from __future__ import annotations

import numpy as np

PAD_ID = 0


def epsilon_ladder(actor_index: int, num_actors: int, eps_base: float = 0.4, alpha: float = 7.0) -> float:
    """eps_i = eps_base ** (1 + alpha * i / (N - 1)); eps_base when N == 1."""
    if not 0 <= actor_index < num_actors:
        raise ValueError(f"actor_index must be in [0, {num_actors}), got {actor_index}")
    if num_actors == 1:
        return float(eps_base)
    return float(eps_base ** (1.0 + alpha * actor_index / (num_actors - 1)))


def decayed_epsilon(env_steps: int, final_eps: float, decay_steps: int, start_eps: float = 1.0) -> float:
    """Linear from `start_eps` at step 0 to `final_eps` at `decay_steps`, constant after (final_eps if decay_steps <= 0)."""
    if decay_steps <= 0:
        return float(final_eps)
    frac = min(max(env_steps, 0) / decay_steps, 1.0)
    return float(start_eps + frac * (final_eps - start_eps))


def masked(q: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """A copy of q [B, V] with illegal actions (pad, and mask == False) at -inf."""
    out = np.where(mask, q, -np.inf) if mask is not None else q.copy()
    out[:, PAD_ID] = -np.inf
    return out


def greedy(q: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """argmax over legal actions: [B] int64."""
    return masked(q, mask).argmax(axis=1)


def random_legal(rng: np.random.Generator, batch: int, vocab_size: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Uniform over legal actions: [B] int64 (with a mask: argmax of uniform noise over the legal entries)."""
    if mask is None:
        return rng.integers(1, vocab_size, size=batch)
    noise = rng.random((batch, vocab_size))
    noise[:, PAD_ID] = -1.0
    return np.where(mask, noise, -1.0).argmax(axis=1)


def epsilon_greedy(
    q: np.ndarray, epsilon: float | np.ndarray, rng: np.random.Generator, mask: np.ndarray | None = None
) -> np.ndarray:
    """With probability epsilon (a scalar or [B]) a uniform legal action, else the greedy one: [B] int64."""
    actions = greedy(q, mask)
    explore = np.flatnonzero(rng.random(q.shape[0]) < epsilon)
    if explore.size:
        sub_mask = None if mask is None else mask[explore]
        actions[explore] = random_legal(rng, explore.size, q.shape[1], sub_mask)
    return actions


def boltzmann(
    q: np.ndarray, temperature: float, rng: np.random.Generator, mask: np.ndarray | None = None
) -> np.ndarray:
    """Sample a ~ softmax(q / temperature) over legal actions: [B] int64 (Gumbel-max, no normalisation pass)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    gumbel = -np.log(-np.log(rng.random(q.shape) + 1e-20) + 1e-20)
    return masked(q / temperature + gumbel, mask).argmax(axis=1)


def lm_sample(
    rng: np.random.Generator, logp: np.ndarray, top_k: int, top_p: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """One action per row from softmax(logp) over legal actions, kept to the `top_k` most likely (0: all) and then
    to the smallest prefix of them holding `top_p` of the mass (the most likely token always stays): [B] int64."""
    scores = masked(logp, mask)  # [B, V], -inf where illegal
    b, v = scores.shape
    k = v if top_k <= 0 else min(top_k, v)
    order = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < v else np.tile(np.arange(v), (b, 1))
    top = np.take_along_axis(scores, order, axis=1)
    by_score = np.argsort(-top, axis=1)
    order, top = np.take_along_axis(order, by_score, axis=1), np.take_along_axis(top, by_score, axis=1)
    probs = np.where(np.isfinite(top), np.exp(top - top[:, :1]), 0.0)
    probs /= probs.sum(axis=1, keepdims=True)
    before = np.cumsum(probs, axis=1) - probs  # mass of the more likely tokens
    probs = np.where(before < top_p, probs, 0.0)
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    choice = np.minimum((rng.random((b, 1)) >= cdf).sum(axis=1), k - 1)
    return order[np.arange(b), choice].astype(np.int64)
