"""The Q-network: a causal model over token sequences with a per-position dueling head of width |vocab|.

Two trunks sit behind one interface (DESIGN.md section 4):

- `GRUTrunk` (default): cheap incremental steps for actors;
- `TransformerTrunk`: small pre-LN causal Transformer with learned, rotary or no positions, for a faster learner on
  GPU.

Two input options (`network.positions`, `network.numeric_embedding`) change the inductive bias, not the interface.
Without positions (`positions: none`) the Transformer sees a prefix as a bag of tokens read from the last one (order
only enters through the causal mask), so `3+4=` and `4+3=` give the same Q-values by construction. Rotary positions
(`positions: rotary`, RoPE, Su et al. 2021) rotate each head's queries and keys by their position, so attention
scores depend on the offset between two tokens and not on where they sit: "the token two back" means the same thing
whether the prompt before it was three tokens long or five.
`numeric_embedding` is the xVal-style input of `NumericFeature`: integer tokens share one embedding plus
`value * w`, so operand sums are linear in embedding space. Together they let the arithmetic task generalise to
operand pairs it never saw in training (configs/arithmetic_easy.yaml has the measurements).

Learner side: `q_all(tokens, length) -> [B, L, V]` and `q_at(tokens, positions) -> [B, K, V]`, which runs the trunk
once and applies the head only at the K positions a loss needs (one forward gives Q(s, .) and Q(s', .) of a stored
transition, and the [B, L, V] tensor is never built); the Transformer's last block also runs for those K positions
only (`features_at`).

Actor side: `initial_state(batch)` and `advance(state, tokens, length, reset) -> (state, q [B, V])`. The state
remembers how many tokens of each slot the trunk has consumed; `advance` brings every slot to its current length
and returns Q at its last position. The common case (every slot grew by exactly one token) is one fused GRU-cell
step for the whole batch; slots that were reset or grew by several tokens (tasks appending feedback) go through one
sub-batch sequence forward over just their new tokens (a freshly reset slot starts from the zero state at 0).

The Transformer's actor path keeps a key/value cache per layer ([B, heads, max_len, dh], `KVCache`): `advance`
runs only each slot's new tokens, as queries at their own positions against the cached keys of the slot's earlier
tokens, so a step costs O(B * L * d) instead of recomputing the prefix's O(B * L^2 * d). A reset slot's cache is
simply overwritten from position 0 (attention never reads past a query's own position).

A third trunk, a pretrained Hugging Face causal LM (`network.trunk: hf`), lives in `distdqn/lm_network.py` behind
the same interface; `build_network` picks it. Networks name the state-dict entries training changes
(`published_names`): the learner publishes only those and actors load them with `load_published`.

Token 0 (`<pad>`) is never an action: `mask_q` sets it to -inf together with the task's masked actions, and the
actor, the evaluation and the loss's bootstrap all go through it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distdqn.align_head import AlignHead
from distdqn.config import NetworkConfig
from distdqn.copy_head import CopyHead

PAD_ID = 0
# Transformer actors: slots that grew by up to this many tokens go in one pass padded to the longest (cheaper than a
# second pass); longer growths (a new long prompt) go as their own sub-batch (scripts/bench_decode.py)
_PAD_SPAN = 8


def mask_q(q: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Q with illegal actions at -inf (out of place): the pad token always, and `mask == False` entries ([B, V] bool)
    when a mask is given. Use before every max/argmax over actions."""
    q = q.clone()
    q[..., PAD_ID] = -math.inf
    if mask is not None:
        q = q.masked_fill(~mask.bool(), -math.inf)
    return q


def unpack_mask(packed: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """[B, ceil(V/8)] uint8 packed with `np.packbits(mask, axis=-1, bitorder='little')` -> [B, V] bool."""
    bits = torch.arange(8, device=packed.device, dtype=torch.uint8)
    unpacked = (packed.unsqueeze(-1) >> bits) & 1  # [B, nbytes, 8]
    return unpacked.reshape(*packed.shape[:-1], -1)[..., :vocab_size].bool()


@dataclasses.dataclass
class KVCache:
    """The Transformer's keys and values of every slot's consumed tokens: per block, [B, heads, max_len, dh] each
    (position p of slot b holds token p's key; positions at or past `consumed[b]` are stale and never attended)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    def rows(self, rows: torch.Tensor) -> KVCache:
        """A copy of some slots' caches (for `peek`, which must not change the state)."""
        return KVCache([k[rows] for k in self.keys], [v[rows] for v in self.values])


@dataclasses.dataclass
class ActorState:
    """Incremental state of B slots: `consumed[b]` tokens of slot b are folded into `hidden` (GRU: [layers, B, H])
    or `cache` (Transformer); the other one is None."""

    consumed: np.ndarray
    hidden: torch.Tensor | None
    cache: KVCache | None = None


class DuelingHead(nn.Module):
    """Per-position Q = V + A - mean(A) (or a plain linear head when dueling is off)."""

    def __init__(self, hidden_dim: int, vocab_size: int, dueling: bool):
        super().__init__()
        self.dueling = dueling
        self.advantage = nn.Linear(hidden_dim, vocab_size)
        self.value = nn.Linear(hidden_dim, 1) if dueling else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        adv = self.advantage(features)
        if self.value is None:
            return adv
        return self.value(features) + adv - adv.mean(dim=-1, keepdim=True)

    def q_of(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q of one action per row: features [B, H], actions [B] -> [B]; `forward(features)[b, actions[b]]` without
        the [B, V] product. mean_a(A) = features . mean_a(W_a) + mean_a(b_a) (the same value, summed in another
        order, so equal to float rounding)."""
        w, b = self.advantage.weight, self.advantage.bias  # [V, H], [V]
        adv = (features * w[actions]).sum(-1) + b[actions]
        if self.value is None:
            return adv
        return self.value(features)[:, 0] + adv - (features @ w.mean(0) + b.mean())


class NumericFeature(nn.Module):
    """xVal-style numeric input (Golkar et al. 2023) for the vocabulary's integer tokens ("0", "7", "12", "-3").

    Every integer token reads one shared embedding row (the first integer token's) plus `value * w`, with w a learned
    vector and values scaled by the largest |value| in the vocabulary; other tokens keep their own rows. Numbers then
    differ only by their value along one direction, so a sum of operands is linear in embedding space and a model
    that pools the operands (attention over a prompt) sees a function of their sum rather than of their identities.
    The other integer tokens' rows of the embedding table are left unused.
    """

    def __init__(self, token_values: np.ndarray, dim: int):
        super().__init__()
        raw = np.asarray(token_values, dtype=np.float32)  # [V]: the integer value of a token, NaN when it is none
        numeric = torch.as_tensor(~np.isnan(raw))
        values = torch.as_tensor(np.nan_to_num(raw, nan=0.0))
        scale = float(values.abs().max()) or 1.0
        ids = torch.arange(len(raw))
        if numeric.any():
            ids = torch.where(numeric, ids[numeric][0], ids)
        # derived from the vocabulary at construction, so kept out of the state dict (and out of published weights)
        self.register_buffer("values", values / scale, persistent=False)
        self.register_buffer("embed_ids", ids, persistent=False)
        self.direction = nn.Parameter(torch.randn(dim))

    def embed(self, table: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [...] -> [..., dim]: the (shared, for integers) embedding row plus value * w."""
        return table(self.embed_ids[tokens]) + self.values[tokens].unsqueeze(-1) * self.direction


def _embed(trunk: GRUTrunk | TransformerTrunk, tokens: torch.Tensor) -> torch.Tensor:
    """The trunk's input embedding of tokens [...] -> [..., dim]."""
    return trunk.embed(tokens) if trunk.numeric is None else trunk.numeric.embed(trunk.embed, tokens)


class GRUTrunk(nn.Module):
    """Embedding + stacked single-layer GRUs (kept separate so every layer's state at any position is available)."""

    def __init__(
        self, vocab_size: int, embed_dim: int, hidden_dim: int, num_layers: int, numeric: NumericFeature | None = None
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.numeric = numeric
        dims = [embed_dim] + [hidden_dim] * num_layers
        self.layers = nn.ModuleList(nn.GRU(dims[i], hidden_dim, batch_first=True) for i in range(num_layers))
        self.hidden_dim = hidden_dim

    def forward(self, tokens: torch.Tensor, h0: torch.Tensor | None = None) -> list[torch.Tensor]:
        """tokens [B, T] -> per-layer outputs [layers][B, T, H] (the last one is the feature sequence)."""
        x = _embed(self, tokens)
        outs = []
        for i, gru in enumerate(self.layers):
            x, _ = gru(x, None if h0 is None else h0[i : i + 1].contiguous())
            outs.append(x)
        return outs

    def step(self, token: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """One token per slot: token [B], hidden [layers, B, H] -> new hidden [layers, B, H]."""
        x = _embed(self, token)
        new = []
        for i, gru in enumerate(self.layers):
            x = torch.gru_cell(x, hidden[i], gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
            new.append(x)
        return torch.stack(new)


def rotary_tables(length: int, head_dim: int, base: float = 10_000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [length, head_dim / 2] of RoPE: pair i of a head turns by position * base ** (-2i / head_dim)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE of x [..., T, dh]: the pairs (x[2i], x[2i+1]) turned by the angles of `cos`/`sin` [T, dh / 2]."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


class TransformerTrunk(nn.Module):
    """Pre-LN causal Transformer (`scaled_dot_product_attention(is_causal=True)`) with learned, rotary or no
    positions (`positions`: "learned", "rotary", "none")."""

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        dim: int,
        num_layers: int,
        num_heads: int,
        positions: str = "learned",
        numeric: NumericFeature | None = None,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden_dim ({dim}) must be divisible by num_heads ({num_heads})")
        if positions not in ("learned", "rotary", "none"):
            raise ValueError(f"positions must be 'learned', 'rotary' or 'none', got {positions!r}")
        if positions == "rotary" and (dim // num_heads) % 2:
            raise ValueError(f"rotary positions need an even head width; hidden_dim / num_heads = {dim // num_heads}")
        self.embed = nn.Embedding(vocab_size, dim)
        self.numeric = numeric
        self.pos = nn.Embedding(max_len, dim) if positions == "learned" else None
        self.rotary = positions == "rotary"
        if self.rotary:  # fixed tables, not parameters: buffers outside the state dict (and so never published)
            cos, sin = rotary_tables(max_len, dim // num_heads)
            self.register_buffer("rotary_cos", cos, persistent=False)
            self.register_buffer("rotary_sin", sin, persistent=False)
        self.blocks = nn.ModuleList(_Block(dim, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)
        self.max_len = max_len

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B, T] -> features [B, T, H], or [B, K, H] at `positions` [B, K] only.

        With `positions` the last block attends from those positions alone (every earlier block still runs over
        all T, since they are the keys and values): the same features to float rounding, at about 1/num_layers
        less work. A loss needs two positions of a row and a target only one."""
        t = tokens.shape[1]
        if t > self.max_len:
            raise ValueError(f"sequence length {t} exceeds the network's max_len {self.max_len}")
        x = _embed(self, tokens)
        if self.pos is not None:
            x = x + self.pos.weight[:t]
        rotary = (self.rotary_cos[:t], self.rotary_sin[:t]) if self.rotary else None
        for block in self.blocks[:-1]:
            x = block(x, rotary)
        return self.norm(self.blocks[-1](x, rotary, positions))

    def empty_cache(self, batch: int) -> KVCache:
        block = self.blocks[0]
        dh = self.embed.embedding_dim // block.num_heads
        shape = (batch, block.num_heads, self.max_len, dh)
        return KVCache([torch.zeros(shape) for _ in self.blocks], [torch.zeros(shape) for _ in self.blocks])

    def extend(
        self,
        cache: KVCache,
        slots: torch.Tensor | None,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        valid: torch.Tensor,
    ) -> torch.Tensor:
        """Run new tokens against the cache: tokens [k, T] of the cache's rows `slots` [k] (None: all of them, in
        order) at `positions` [k, T] (each row's next positions), `valid` [k, T] bool (False pads a row with fewer
        new tokens; those never reach the cache). Writes their keys and values into `cache` (in place) and returns
        the features [k, T, H] of every new position."""
        if int(positions.max()) >= self.max_len:
            raise ValueError(f"sequence length {int(positions.max()) + 1} exceeds the network's max_len {self.max_len}")
        x = _embed(self, tokens)
        if self.pos is not None:
            x = x + self.pos(positions)
        rotary = (self.rotary_cos[positions], self.rotary_sin[positions]) if self.rotary else None  # [k, T, dh/2]
        rows, cols = valid.nonzero(as_tuple=True)
        # key position j is visible from query position p iff j <= p (the slot's earlier tokens and the new ones);
        # keys past the furthest query are never visible, so attention reads only the first `width`
        width = int(positions.max()) + 1
        visible = torch.arange(width) <= positions[:, None, :, None]  # [k, 1, T, width]
        at = positions[rows, cols]
        slot = rows if slots is None else slots[rows]
        for block, keys, values in zip(self.blocks, cache.keys, cache.values, strict=True):
            x = block.extend(x, keys, values, slots, (slot, rows, cols, at), visible, rotary)
        return self.norm(x)


class _Block(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(
        self,
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [B, T, H] -> [B, T, H], or [B, K, H] for the queries at `positions` [B, K] only (keys: all T)."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            q, k = rotate(q, *rotary), rotate(k, *rotary)
        if positions is None:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, heads, T, dh]
        else:
            q = q.gather(2, positions[:, None, :, None].expand(-1, q.shape[1], -1, q.shape[-1]))  # [B, heads, K, dh]
            causal = torch.arange(k.shape[2], device=x.device) <= positions[:, None, :, None]  # [B, 1, K, T]
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
            x = x.gather(1, positions.unsqueeze(-1).expand(-1, -1, d))  # [B, K, H]
        x = x + self.proj(att.transpose(1, 2).reshape(b, -1, d))  # T or K query positions
        return x + self.mlp(self.ln2(x))

    def extend(
        self,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        slots: torch.Tensor | None,
        where: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
        visible: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> torch.Tensor:
        """New positions only (`TransformerTrunk.extend`): x [k, T, H] -> [k, T, H]. The valid entries' keys and
        values go into `keys`/`values` [B, heads, max_len, dh]: `where` = (cache row, x row, x column, position)."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            cos, sin = (r.unsqueeze(1) for r in rotary)  # [k, 1, T, dh/2]: one angle per row and position
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        slot, rows, cols, at = where
        keys[slot, :, at] = k[rows, :, cols]
        values[slot, :, at] = v[rows, :, cols]
        width = visible.shape[-1]
        if slots is None:
            keys, values = keys[:, :, :width], values[:, :, :width]
        else:
            keys, values = keys[slots, :, :width], values[slots, :, :width]
        att = F.scaled_dot_product_attention(q, keys, values, attn_mask=visible)  # [k, heads, T, dh]
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class QNetwork(nn.Module):
    """Causal Q-network: a trunk (GRU or Transformer) and a per-position dueling head. See the module docstring."""

    def __init__(
        self,
        trunk: GRUTrunk | TransformerTrunk,
        hidden_dim: int,
        vocab_size: int,
        dueling: bool,
        copy_head: CopyHead | None = None,
        align_head: AlignHead | None = None,
    ):
        super().__init__()
        self.trunk = trunk
        self.head = DuelingHead(hidden_dim, vocab_size, dueling)
        self.copy = copy_head
        self.align = align_head
        # the heads that read the tokens of the text (same interface: forward and bonus_of), in the order Q adds them
        self._text_heads = tuple(h for h in (copy_head, align_head) if h is not None)
        self.vocab_size = vocab_size
        self.recurrent = isinstance(trunk, GRUTrunk)

    def q_from_features(self, feats: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Q [B, K, V] from the features [B, K, H] at `positions` [B, K] of the rows `tokens` [B, L]: the dueling
        head, plus the copy and alignment heads' bonuses from the tokens of each prefix when the network has them."""
        q = self.head(feats)
        if self._text_heads:
            embeds = _embed(self.trunk, tokens)
            for head in self._text_heads:
                q = q + head(feats, embeds, tokens, positions)
        return q

    def _q_last(self, feats: torch.Tensor, tokens: np.ndarray, length: np.ndarray) -> torch.Tensor:
        """Q [B, V] at position length-1 from the features there [B, H] (the actor's path; numpy rows)."""
        if not self._text_heads:
            return self.head(feats)
        tok, pos = _last_position_rows(tokens, length)
        return self.q_from_features(feats.unsqueeze(1), tok, pos)[:, 0]

    # ---- learner side ---------------------------------------------------------------------------------------
    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, L] -> [B, L, H]. Causal: position i sees tokens[:, :i+1] only, so padding is harmless."""
        return self.trunk(tokens)[-1] if self.recurrent else self.trunk(tokens)

    def features_at(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens [B, L], positions [B, K] long -> the features there, [B, K, H]: `features` gathered, which the
        Transformer computes in its last block for those positions only."""
        if not self.recurrent:
            return self.trunk(tokens, positions)
        feats = self.trunk(tokens)[-1]
        return feats.gather(1, positions.unsqueeze(-1).expand(-1, -1, feats.shape[-1]))

    def q_all(self, tokens: torch.Tensor, length: torch.Tensor | None = None) -> torch.Tensor:
        """Q at every position: [B, L, V]. Positions >= length hold values of padded prefixes (ignore them)."""
        b, t = tokens.shape
        return self.q_from_features(self.features(tokens), tokens, torch.arange(t, device=tokens.device).expand(b, t))

    def q_at(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Q at chosen positions: tokens [B, L], positions [B, K] long -> [B, K, V]; one trunk pass."""
        return self.q_from_features(self.features_at(tokens, positions), tokens, positions)

    def q_taken(
        self, feats: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """Q(s, a) of one action per row from the features [B, H] at `positions` [B] of the rows `tokens` [B, L]:
        [B], equal (to float rounding) to `q_from_features(...)[b, 0, actions[b]]`, at O(B * (H + L)) instead of
        O(B * V * H): the gradient of the TD loss flows through this one entry only."""
        q = self.head.q_of(feats, actions)
        if self._text_heads:
            embeds = _embed(self.trunk, tokens)
            for head in self._text_heads:
                q = q + head.bonus_of(feats, embeds, tokens, positions, actions)
        return q

    def published_names(self) -> list[str]:
        """State-dict entries that training changes (all of them for this network)."""
        return list(self.state_dict())

    # ---- actor side -----------------------------------------------------------------------------------------
    def initial_state(self, batch: int) -> ActorState:
        consumed = np.zeros(batch, dtype=np.int64)
        if self.recurrent:
            return ActorState(consumed, torch.zeros(len(self.trunk.layers), batch, self.trunk.hidden_dim))
        return ActorState(consumed, None, self.trunk.empty_cache(batch))

    def advance(
        self, state: ActorState, tokens: np.ndarray, length: np.ndarray, reset: np.ndarray | None = None
    ) -> tuple[ActorState, torch.Tensor]:
        """Bring every slot from `state.consumed` tokens to `length` and return Q at position length-1: [B, V].

        tokens [B, L] and length [B] are numpy (the env's arrays); `reset` [B] bool marks slots holding a new
        episode (their consumed count restarts at 0). A slot that is not reset must have grown (length > consumed).
        The state is updated in place and returned. CPU only (the actor's path).
        """
        length = np.asarray(length)
        consumed = state.consumed
        if reset is not None and reset.any():
            consumed[reset] = 0
            if state.hidden is not None:
                state.hidden[:, torch.from_numpy(np.flatnonzero(reset))] = 0.0
        delta = length - consumed
        if (delta < 1).any():
            bad = np.flatnonzero(delta < 1)[:5].tolist()
            raise ValueError(f"slots {bad} did not grow since the last advance and were not marked reset")
        if self.recurrent:
            state.hidden = self._fold(state.hidden, consumed, tokens, length)
            q = self._q_last(state.hidden[-1], tokens, length)
        else:
            q = self._q_last(self._extend(state.cache, consumed, tokens, length), tokens, length)
        consumed[:] = length
        return state, q

    def _extend(self, cache: KVCache, start: np.ndarray, tokens: np.ndarray, end: np.ndarray) -> torch.Tensor:
        """Transformer: run tokens[b, start[b]:end[b]] against the cache (updated in place); features at end-1 [k, H].
        One pass padded to the longest growth, unless some slot grew by more than `_PAD_SPAN` tokens (a new long
        prompt) beside one-token growths: then, as in `_fold`, the two kinds go as separate sub-batches, so one long
        prompt does not pad every slot's step to its length."""
        span = end - start
        if span.max() <= _PAD_SPAN or (span > 1).all():
            return self._extend_rows(cache, None, start, tokens, end)
        feats = torch.empty(len(end), self.trunk.embed.embedding_dim)
        for rows in (np.flatnonzero(span == 1), np.flatnonzero(span > 1)):
            i = torch.from_numpy(rows)
            feats[i] = self._extend_rows(cache, i, start[rows], tokens[rows], end[rows])
        return feats

    def _extend_rows(
        self, cache: KVCache, slots: torch.Tensor | None, start: np.ndarray, tokens: np.ndarray, end: np.ndarray
    ) -> torch.Tensor:
        span = end - start
        t = int(span.max())
        valid = np.arange(t) < span[:, None]  # [k, T]; past a row's end: padding, which repeats its last token
        cols = np.where(valid, start[:, None] + np.arange(t), end[:, None] - 1)
        chunk = torch.from_numpy(np.take_along_axis(tokens, cols, axis=1).astype(np.int64))
        feats = self.trunk.extend(cache, slots, chunk, torch.from_numpy(cols), torch.from_numpy(valid))
        return feats[torch.arange(len(end)), torch.from_numpy(span - 1)]

    def peek(self, state: ActorState, rows: np.ndarray, tokens: np.ndarray, length: np.ndarray) -> torch.Tensor:
        """Q at position length-1 of `tokens` [k, L] for slots `rows`, continuing from their current state without
        changing it: [k, V]. The actor uses it for the final observation of a truncated episode before the reset."""
        i = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        if not self.recurrent:
            return self._q_last(self._extend(state.cache.rows(i), state.consumed[rows], tokens, length), tokens, length)
        hidden = self._fold(state.hidden[:, i], state.consumed[rows], tokens, length)
        return self._q_last(hidden[-1], tokens, length)

    def _fold(self, hidden: torch.Tensor, start: np.ndarray, tokens: np.ndarray, end: np.ndarray) -> torch.Tensor:
        """Fold tokens[b, start[b]:end[b]] into hidden [layers, k, H] (k = len(tokens)); returns the new hidden."""
        delta = end - start
        rows = np.arange(len(end))
        if (delta == 1).all():  # the common case: one fused cell step for the whole batch
            return self.trunk.step(torch.from_numpy(tokens[rows, end - 1].astype(np.int64)), hidden)
        hidden = hidden.clone()
        one = np.flatnonzero(delta == 1)
        if one.size:
            i = torch.from_numpy(one)
            hidden[:, i] = self.trunk.step(torch.from_numpy(tokens[one, end[one] - 1].astype(np.int64)), hidden[:, i])
        many = np.flatnonzero(delta > 1)
        i = torch.from_numpy(many)
        hidden[:, i] = self._run_new_tokens(hidden[:, i], tokens[many], start[many], end[many])
        return hidden

    def _run_new_tokens(self, h0: torch.Tensor, tokens: np.ndarray, start: np.ndarray, end: np.ndarray):
        """Sub-batch sequence forward over tokens[b, start:end] from h0 [layers, k, H]; the hidden at end-1."""
        span = end - start
        t = int(span.max())
        cols = np.minimum(start[:, None] + np.arange(t), tokens.shape[1] - 1)  # the tail past `end` is ignored
        chunk = torch.from_numpy(np.take_along_axis(tokens, cols, axis=1).astype(np.int64))
        outs = self.trunk(chunk, h0)
        k, last = torch.arange(len(end)), torch.from_numpy(span - 1)
        return torch.stack([out[k, last] for out in outs])


def _last_position_rows(tokens: np.ndarray, length: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The actor's numpy rows as (tokens [B, max(length)] long, positions [B, 1] = length - 1) for `q_at`/`_q`."""
    tok = torch.from_numpy(np.ascontiguousarray(tokens[:, : int(length.max())]).astype(np.int64, copy=False))
    return tok, torch.from_numpy(length.astype(np.int64) - 1).unsqueeze(1)


def load_published(network: nn.Module, weights: dict[str, np.ndarray]) -> None:
    """Load published weights (numpy, possibly read-only: every name of `network.published_names()`, or a whole
    state dict from a checkpoint) into `network`; entries not given (a frozen trunk) stay as built."""
    missing = sorted(set(network.published_names()) - set(weights))[:3]
    extra = sorted(set(weights) - set(network.state_dict()))[:3]
    if missing or extra:
        raise ValueError(f"published weights do not match the network: missing {missing}, unexpected {extra}")
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}  # a copy: Ray hands read-only views
    network.load_state_dict(tensors, strict=False)


def build_network(
    network_config: NetworkConfig, vocab_size: int, max_len: int, token_values: np.ndarray | None = None
) -> QNetwork:
    """The Q-network described by `network_config` for a task's vocabulary size and maximum sequence length.

    `token_values` ([V], see `numeric_token_values(env.vocab.tokens)`) is needed when `network.numeric_embedding` is
    on and ignored otherwise."""
    c = network_config
    if c.trunk == "hf":
        from distdqn.lm_network import build_lm_network  # imports transformers: only when asked for

        return build_lm_network(c, vocab_size, max_len)
    numeric = None
    if c.numeric_embedding:
        if token_values is None or len(token_values) != vocab_size:
            got = "none" if token_values is None else f"{len(token_values)} values"
            raise ValueError(
                f"network.numeric_embedding needs the task's token values, one per token ({vocab_size}); got {got}: "
                "pass token_values=numeric_token_values(env.vocab.tokens)"
            )
        numeric = NumericFeature(token_values, c.embed_dim if c.trunk == "gru" else c.hidden_dim)
    if c.trunk == "gru":
        trunk = GRUTrunk(vocab_size, c.embed_dim, c.hidden_dim, c.num_layers, numeric)
    elif c.trunk == "transformer":
        trunk = TransformerTrunk(vocab_size, max_len, c.hidden_dim, c.num_layers, c.num_heads, c.positions, numeric)
    else:
        raise ValueError(f"network.trunk must be 'gru', 'transformer' or 'hf', got {c.trunk!r}")
    copy_head = None
    if c.copy_head:
        copy_head = CopyHead(
            c.hidden_dim, trunk.embed.embedding_dim, vocab_size, c.copy_dim, max_len if c.copy_positions else 0
        )
    align_head = None
    if c.align_head:
        align_head = AlignHead(c.hidden_dim, trunk.embed.embedding_dim, vocab_size, c.align_dim, max_len)
    return QNetwork(trunk, c.hidden_dim, vocab_size, c.dueling, copy_head, align_head)
