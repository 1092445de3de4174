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
  mask_s      demonstrations only (never stored in the replay or sent on the wire): the same for s_t, so the
              large-margin loss can compare the demonstrated token with the legal ones alone
  row         demonstration batches of whole episodes only (`learner.demo_episodes`): `tokens` then holds one row
              per episode ([R, L], each the episode's final sequence, of which every s_t and s_{t+n} is a prefix)
              and `row` [N] names each transition's; the other fields stay per transition

Because the Q-network is causal, one forward pass over `tokens` gives Q(s_t, .) at position len_s-1 and
Q(s_{t+n}, .) at position len_next-1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

TOKENS = "tokens"
LEN_S = "len_s"
LEN_NEXT = "len_next"
ACTION = "action"
RETURN = "return_n"
DISCOUNT = "discount_n"
MASK_NEXT = "mask_next"
MASK_S = "mask_s"  # demonstration batches only (distdqn/demonstrations.py)
ROW = "row"  # episode demonstration batches only: each transition's row of `tokens`

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


class FieldError(ValueError):
    """A transition (or a message carrying transitions) failed validation; `field` names the offending field."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Sizes(Protocol):
    """What `validate_transitions` needs to know of a task (an `envs.TaskShape` is one)."""

    vocab_size: int
    max_len: int
    with_mask: bool


def validate_transitions(batch: Mapping[str, np.ndarray], shape: Sizes) -> None:
    """Raise `FieldError` naming the first field whose values a well-behaved actor cannot have produced.

    Checked (vectorised, a few passes over the columns; dtypes and byte counts are the wire decoder's job):
    exactly the fields of `shape.transition_dtypes()` (plus, optionally, `priority`), each with its per-item shape
    (so a mask of the wrong width is named), equal item counts; token ids and the
    action in [0, vocab_size); 1 <= len_s < len_next <= max_len; return_n finite; discount_n finite, in [0, 1];
    mask_next (when present) exactly ceil(V/8) bytes wide with the padding bits past V clear.
    """
    vocab, max_len = int(shape.vocab_size), int(shape.max_len)
    schema = transition_dtypes(vocab, max_len, bool(shape.with_mask))
    extra = sorted(set(batch) - set(schema) - {PRIORITY})
    if extra:
        raise FieldError(extra[0], f"not a transition field of this task (fields: {sorted(schema)})")
    n = None
    for name, (_, item_shape) in schema.items():
        if name not in batch:
            raise FieldError(name, "missing")
        array = np.asarray(batch[name])
        if array.shape[1:] != item_shape:
            raise FieldError(name, f"per-item shape {array.shape[1:]}, expected {item_shape}")
        if n is None:
            n = array.shape[0]
        elif array.shape[0] != n:
            raise FieldError(name, f"{array.shape[0]} items, other fields have {n}")
    if not n:
        return
    for name in (TOKENS, ACTION):
        ids = batch[name]
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab:
            raise FieldError(name, f"ids in [{low}, {high}], expected [0, {vocab})")
    len_s, len_next = batch[LEN_S], batch[LEN_NEXT]
    if int(len_s.min()) < 1 or int(len_s.max()) > max_len:
        raise FieldError(LEN_S, f"lengths in [{len_s.min()}, {len_s.max()}], expected [1, {max_len}]")
    if int(len_next.min()) < 1 or int(len_next.max()) > max_len:
        raise FieldError(LEN_NEXT, f"lengths in [{len_next.min()}, {len_next.max()}], expected [1, {max_len}]")
    if not (len_next > len_s).all():
        bad = int(np.argmin(len_next > len_s))
        raise FieldError(LEN_NEXT, f"item {bad}: len_next {len_next[bad]} <= len_s {len_s[bad]}")
    if not np.isfinite(batch[RETURN]).all():
        raise FieldError(RETURN, "not finite (NaN or inf)")
    discount = batch[DISCOUNT]
    if not (np.isfinite(discount).all() and discount.min() >= 0.0 and discount.max() <= 1.0):
        raise FieldError(DISCOUNT, f"values in [{discount.min()}, {discount.max()}], expected finite in [0, 1]")
    if MASK_NEXT in batch and vocab % 8:
        padding = np.uint8(0xFF << (vocab % 8) & 0xFF)  # little bit order: bits vocab % 8 .. 7 of the last byte
        if (batch[MASK_NEXT][:, -1] & padding).any():
            raise FieldError(MASK_NEXT, f"bits set for actions >= vocab_size {vocab}")
