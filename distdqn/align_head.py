"""The alignment head: a Q bonus read from the text through a learned token-to-token lexicon (off by default).

At a position t with trunk feature h_t and the tokens x_0..x_t of the row so far,

    alpha(t, j) = softmax_j { (W_q h_t) . (W_k e(x_j) + p_j) / sqrt(d) }    over j <= t with x_j != <pad>
    align(t, a) = sum_j alpha(t, j) * T[x_j, a]

and the Q-network adds it to its dueling head (and the copy head): Q(s_t, a) = head(h_t)[a] + align(t, a). The
attention picks *which* earlier token to work from, by content and place (p_j, a learned position embedding); the
lexicon T [V, V] says what that token turns into. It is the attention-plus-lexicon idea of neural machine
translation (Bahdanau et al. 2015 for the alignment; Arthur et al. 2016, "Incorporating Discrete Translation
Lexicons into NMT", for the lexicon term), for Q-values instead of probabilities.

Why a task needs it: a transduction (translation, say) maps each source word to a target word, in an order set by
the sentence's structure. The dueling head alone has one output row per target word and learns it from whole
training sentences, so it memorises which words went together; held-out sentences that combine known words anew
(an adjective never seen with that noun) get a training partner instead. Here the word-to-word map is one entry of
T per pair, shared by every sentence that contains the word, and the attention has to learn only where the next
word comes from. The copy head is the special case T = identity with a max instead of the softmax.

T starts at zero, so a new network's Q-values are those without the head. Cost: a [B, K, L] attention and a
[B, K, L] x [L, V] product per row (V*V parameters: meant for task vocabularies of tens to a few hundred tokens, not
a language model's 50k; the head refuses vocabularies above `MAX_VOCAB`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from distdqn.copy_head import PAD_ID

MAX_VOCAB = 4096  # T is V x V floats: 64 MiB at this size
_FLOOR = -1e9  # the score of a hidden position: finite, so a row with nothing visible stays finite (not NaN)


class AlignHead(nn.Module):
    """align(t, a) of the module docstring for K query positions per row."""

    def __init__(self, feature_dim: int, embed_dim: int, vocab_size: int, dim: int, max_len: int):
        super().__init__()
        if vocab_size > MAX_VOCAB:
            raise ValueError(
                f"network.align_head keeps a {vocab_size} x {vocab_size} lexicon; it is meant for task vocabularies "
                f"of at most {MAX_VOCAB} tokens (turn it off for a language model's vocabulary)"
            )
        self.query = nn.Linear(feature_dim, dim)
        self.key = nn.Linear(embed_dim, dim)
        self.position = nn.Embedding(max_len, dim)
        self.lexicon = nn.Embedding(vocab_size, vocab_size)  # row x_j: what token x_j turns into
        nn.init.zeros_(self.lexicon.weight)
        self.scale = 1.0 / math.sqrt(dim)

    def attention(
        self, features: torch.Tensor, embeds: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """alpha [B, K, L] for features [B, K, H] at `positions` [B, K] of rows embeds [B, L, E] / tokens [B, L]."""
        length = tokens.shape[1]
        if length > self.position.num_embeddings:
            raise ValueError(
                f"rows of {length} tokens, but the align head knows {self.position.num_embeddings} positions"
            )
        keys = self.key(embeds) + self.position.weight[:length]  # [B, L, d]
        scores = torch.einsum("bkd,bld->bkl", self.query(features), keys) * self.scale
        j = torch.arange(length, device=tokens.device)
        visible = (j[None, None, :] <= positions[:, :, None]) & (tokens[:, None, :] != PAD_ID)
        return torch.softmax(scores.masked_fill(~visible, _FLOOR), dim=-1)

    def forward(
        self, features: torch.Tensor, embeds: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """The bonus [B, K, V]; only tokens at or before each query position count (causal)."""
        alpha = self.attention(features, embeds, tokens, positions)
        return torch.bmm(alpha, self.lexicon(tokens))  # [B, K, L] x [B, L, V]

    def bonus_of(
        self, features: torch.Tensor, embeds: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor, actions
    ) -> torch.Tensor:
        """align(t, a) for ONE action per row: features [B, H] at `positions` [B], actions [B] -> [B]; equals
        `forward(...)` read at `actions` without building the [B, V] bonus (the learner's loss needs Q(s, a) only)."""
        alpha = self.attention(features[:, None], embeds, tokens, positions[:, None])[:, 0]  # [B, L]
        lex = self.lexicon.weight[tokens, actions[:, None]]  # [B, L]: T[x_j, a]
        return (alpha * lex).sum(dim=1)
