"""The copy head: a pointer-style Q bonus for emitting a token that is already in the text (prompt or generated).

At a position t with trunk feature h_t and the tokens x_0..x_t of the row so far,

    score(t, j) = (W_q h_t) . (W_k e(x_j)) / sqrt(d)          for j <= t with x_j != <pad>
    copy(t, a)  = max { score(t, j) : j <= t, x_j = a }         (0 for tokens a that are not in the text)

and the Q-network adds it to its dueling head: Q(s_t, a) = head(h_t)[a] + copy(t, a). The scoring is by content,
so "emit the prompt's verb now" is one query whichever verb the prompt holds. The dueling head alone has to learn an
output row per word from the combinations it was trained on, and on keyword-constrained generation it memorises
them: held-out prompts get a training partner of the subject ("bird runs <sep>" -> "the bird sings"). This is the
pointer-generator idea (See et al. 2017, "Get To The Point") for Q-values instead of probabilities; e(x_j) is the
trunk's own input embedding, so the head adds two small projections and no vocabulary-sized weights.

With `max_len` (network.copy_positions, the default), each key also carries a learned embedding of its position,
W_k e(x_j) + p_j, so a query can point by place as well as by content: "the token i places after the start" (copy
a list), "the one i places before <sep>" (reverse it). p starts at zero, so a new network scores by content alone
and learns where place matters. On copy, reverse and sort easy (no tuned config) it took the default configuration
from 0.76 held-out in 180 s / 144 s / 112 s to 0.9 in 51 s / 51 s / 61 s (README).

Cost: one [B, K, L] score matrix and a scatter-max into [B, K, V] for K query positions; the actor evaluates it at
its one current position per step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PAD_ID = 0  # the <pad> id: envs.base.Vocab puts it first (networks.PAD_ID, which imports this module)
_FLOOR = -1e9  # the scatter's start value: a token that is not in the text keeps it and gets a bonus of 0


class CopyHead(nn.Module):
    """copy(t, a) of the module docstring for K query positions per row."""

    def __init__(self, feature_dim: int, embed_dim: int, vocab_size: int, dim: int = 32, max_len: int = 0):
        super().__init__()
        self.query = nn.Linear(feature_dim, dim)
        self.key = nn.Linear(embed_dim, dim)
        self.position = None  # max_len > 0: p_j of the module docstring, one row per position, zero at the start
        if max_len > 0:
            self.position = nn.Embedding(max_len, dim)
            nn.init.zeros_(self.position.weight)
        self.vocab_size = vocab_size
        self.scale = 1.0 / math.sqrt(dim)

    def keys(self, embeds: torch.Tensor) -> torch.Tensor:
        """embeds [B, L, E] of a row -> its keys [B, L, dim]: content, plus place when the head has positions."""
        keys = self.key(embeds)
        if self.position is None:
            return keys
        length = embeds.shape[1]
        if length > self.position.num_embeddings:
            raise ValueError(
                f"rows of {length} tokens, but the copy head knows {self.position.num_embeddings} positions"
            )
        return keys + self.position.weight[:length]

    def forward(
        self, features: torch.Tensor, embeds: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """features [B, K, H] (the trunk's output at `positions` [B, K]), embeds [B, L, E] and tokens [B, L] of the
        whole row -> the bonus [B, K, V]. Only tokens at or before each query position count (causal)."""
        b, k = positions.shape
        length = tokens.shape[1]
        scores = torch.einsum("bkd,bld->bkl", self.query(features), self.keys(embeds)) * self.scale  # [B, K, L]
        j = torch.arange(length, device=tokens.device)
        visible = (j[None, None, :] <= positions[:, :, None]) & (tokens[:, None, :] != PAD_ID)
        scores = scores.masked_fill(~visible, _FLOOR)
        index = tokens[:, None, :].expand(b, k, length)
        bonus = torch.full((b, k, self.vocab_size), _FLOOR, dtype=scores.dtype, device=scores.device)
        bonus = bonus.scatter_reduce(2, index, scores, reduce="amax", include_self=True)
        return torch.where(bonus > _FLOOR / 2, bonus, torch.zeros_like(bonus))

    def bonus_of(
        self, features: torch.Tensor, embeds: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor, actions
    ) -> torch.Tensor:
        """copy(t, a) for ONE action per row: features [B, H] at `positions` [B], embeds [B, L, E], tokens [B, L],
        actions [B] -> [B]. Equals `forward(...)` read at `actions`, but is a max over the row's L positions instead
        of a scatter-max into [B, V] (whose backward dominates a large vocabulary's update): the learner's loss only
        needs Q(s, a) of the action taken. Ties (the action twice in the text) share the gradient as in `forward`."""
        scores = torch.einsum("bd,bld->bl", self.query(features), self.keys(embeds)) * self.scale  # [B, L]
        j = torch.arange(tokens.shape[1], device=tokens.device)
        match = (j[None, :] <= positions[:, None]) & (tokens != PAD_ID) & (tokens == actions[:, None])
        best = scores.masked_fill(~match, _FLOOR).amax(dim=1)  # [B]
        return torch.where(best > _FLOOR / 2, best, torch.zeros_like(best))
