"""The data vocabulary: field names and dtypes of one n-step transition, shared by actor, wire, replay and loss.

One replay item is one n-step transition stored in a fixed-width token row (DESIGN.md section 3):

  tokens[L]   the sequence up to step t+n; s_t is tokens[:len_s], s_{t+n} is tokens[:len_next]
  len_s       length of s_t (>= 1)
  len_next    length of s_{t+n} (> len_s)
  action      a_t, the token chosen at s_t
  return_n    G = sum_{k<m} gamma^k r_{t+k}, m = steps actually taken in the window (m <= n)
  discount_n  gamma^m when s_{t+m} is not terminal (bootstrap), 0 when the episode terminated inside the window;
              truncation still bootstraps
  mask_next   optional, [ceil(V/8)] uint8: packed action mask of s_{t+n} (tasks with action masks only),
              `np.packbits(mask, axis=-1, bitorder="little")` (bit i of byte j = action 8j+i)

Because the Q-network is causal, one forward pass over `tokens` gives Q(s_t, .) at position len_s-1 and
Q(s_{t+n}, .) at position len_next-1.
"""

from __future__ import annotations

import numpy as np

TOKENS = "tokens"
LEN_S = "len_s"
LEN_NEXT = "len_next"
ACTION = "action"
RETURN = "return_n"
DISCOUNT = "discount_n"
MASK_NEXT = "mask_next"

# Item keys and sampling extras: columns a replay adds to a sampled batch (the key (shard, slot, generation) is
# what a priority update carries back; see replay/prioritized.py).
WEIGHT = "weight"  # float32 importance weight w_i, normalised by the largest possible weight
PROB = "prob"  # float64 P(i), the probability the item was drawn with
PRIORITY = "priority"  # float64 p_i = (|delta_i| + eps) ** alpha; on the wire's "transitions", float32 initial |TD|
SHARD = "shard"  # int32 shard id
SLOT = "slot"  # int64 position in the shard's ring
GENERATION = "generation"  # int64 items added to the shard before this one

# Replay snapshots (replay/prioritized.py `state_dict`): one array per stored field, named with this prefix, plus the
# stored items' priorities p_i (alpha applied) in slot order.
SNAPSHOT_FIELD_PREFIX = "field."
SNAPSHOT_PRIORITIES = "priorities"

CORE_FIELDS = (TOKENS, LEN_S, LEN_NEXT, ACTION, RETURN, DISCOUNT)

Schema = dict[str, tuple[np.dtype, tuple[int, ...]]]  # field -> (dtype, per-item shape): a replay's or a message's


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds every token id."""
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)


def transition_dtypes(vocab_size: int, max_len: int, with_mask: bool = False) -> Schema:
    """Field -> (dtype, per-item shape) of one stored transition."""
    tok = token_dtype(vocab_size)
    fields = {
        TOKENS: (tok, (max_len,)),
        LEN_S: (np.dtype(np.int16), ()),
        LEN_NEXT: (np.dtype(np.int16), ()),
        ACTION: (tok, ()),
        RETURN: (np.dtype(np.float32), ()),
        DISCOUNT: (np.dtype(np.float32), ()),
    }
    if with_mask:
        fields[MASK_NEXT] = (np.dtype(np.uint8), ((vocab_size + 7) // 8,))
    return fields


def empty_batch(vocab_size: int, max_len: int, n: int = 0, with_mask: bool = False) -> dict[str, np.ndarray]:
    return {
        k: np.zeros((n, *shape), dtype=dt)
        for k, (dt, shape) in transition_dtypes(vocab_size, max_len, with_mask).items()
    }
