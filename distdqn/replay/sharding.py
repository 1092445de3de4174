"""Client-side maths of sharded replay: split a batch across shards and compute global importance weights.

K shards hold disjoint items with priority totals T_k (sum of p_i^alpha over shard k). Drawing the batch size per
shard from Multinomial(batch_size, T_k / sum_j T_j) and then, inside shard k, drawing items proportionally to p_i
gives every item the marginal probability P(i) = p_i / sum_j T_j per draw: the union is a draw from the global
proportional distribution. (Inside a shard the draws are stratified; that lowers the variance, not the marginals.)

The importance weights must then use global quantities, N = sum_k N_k and P_min = min_k min_k(p) / sum_j T_j:

    w_i = (N * P(i)) ** -beta / (N * P_min) ** -beta = (p_i / p_min_global) ** -beta
"""

from __future__ import annotations

import numpy as np


def allocate(batch_size: int, totals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Items to draw from each shard: Multinomial(batch_size, totals / sum); shards with total <= 0 get 0."""
    totals = np.asarray(totals, dtype=np.float64)
    weights = np.where(np.isfinite(totals) & (totals > 0), totals, 0.0)
    mass = weights.sum()
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
    if not mass > 0:
        raise ValueError(f"no shard has a positive priority total: {totals.tolist()}")
    return rng.multinomial(batch_size, weights / mass).astype(np.int64)


def global_weights(p_alpha: np.ndarray, total_sum: float, size_sum: int, min_p_alpha: float, beta: float) -> np.ndarray:
    """w_i = (N P(i))^-beta / (N P_min)^-beta with P(i) = p_alpha_i / total_sum, P_min = min_p_alpha / total_sum.

    N = size_sum cancels, as does total_sum; both stay in the signature so the formula reads as in the paper.
    """
    p = np.asarray(p_alpha, dtype=np.float64)
    prob = p / total_sum
    prob_min = min_p_alpha / total_sum
    return ((size_sum * prob) ** -beta / (size_sum * prob_min) ** -beta).astype(np.float32)
