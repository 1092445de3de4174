"""The msgpack wire format between actors, replay shards and the learner: columnar envelopes, strictly decoded.

Envelope (one msgpack map):

    {"v": 1, "kind": "transitions" | "sample", "actor": int, "incarnation": int, "seq": int,
     "fields": {name: [dtype_str, shape_list, bytes]}, "meta": {str: scalar}}

`actor` is the sender (an actor index, or the shard id for "sample"), `incarnation` counts its restarts and `seq`
numbers its messages within one incarnation, so a receiver can drop duplicates and count gaps. Each field is one
little-endian blob holding all items; decoding is `np.frombuffer(blob, dtype).reshape(shape)`: zero-copy and
read-only. "meta" carries a few scalars (a shard's priority total, minimum and size on "sample").

Decoding trusts nothing: message size, msgpack structure and limits, version, kind, header types, the exact field
set, a dtype allow-list plus the dtype the schema expects, per-item shapes, equal leading dimensions, the item
limit and every blob's byte length are checked. Any problem raises `WireError(field, reason)` (a ValueError) naming
the field ("message" / "header" for the envelope itself); no other exception type escapes a decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from distdqn import spec

WIRE_VERSION = 1
TRANSITIONS = "transitions"
SAMPLE = "sample"
KINDS = (TRANSITIONS, SAMPLE)

# Little-endian numeric dtypes only: no bool (arbitrary bytes are not valid bools), objects, strings or big-endian.
ALLOWED_DTYPES = frozenset({"|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"})
MAX_MESSAGE_BYTES = 256 << 20
MAX_ITEMS = 1 << 20
MAX_META_ENTRIES = 32
_HEADER_KEYS = frozenset({"v", "kind", "actor", "incarnation", "seq", "fields"})
_MAX_HEADER_INT = (1 << 63) - 1


class WireError(spec.FieldError):
    """A message failed validation; `field` names the offending field ("message"/"header" for the envelope).

    A `spec.FieldError` (a ValueError), as is what `spec.validate_transitions` raises: a receiver catches one type.
    """


@dataclass(frozen=True)
class Message:
    """A decoded envelope: header, read-only field arrays (all with the same leading dimension) and meta."""

    kind: str
    actor: int
    incarnation: int
    seq: int
    fields: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return next(iter(self.fields.values())).shape[0] if self.fields else 0

    @property
    def priorities(self) -> np.ndarray | None:
        return self.fields.get(spec.PRIORITY)


def encode(
    kind: str,
    fields: dict[str, np.ndarray],
    actor: int,
    incarnation: int,
    seq: int,
    meta: dict[str, Any] | None = None,
) -> bytes:
    """Pack columnar `fields` into one envelope; arrays are copied once, into the output buffer."""
    packed = {}
    for name, array in fields.items():
        array = np.asarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        array = np.ascontiguousarray(array)
        if array.dtype.str not in ALLOWED_DTYPES:
            raise WireError(name, f"dtype {array.dtype.str} is not in the allow-list {sorted(ALLOWED_DTYPES)}")
        packed[name] = [array.dtype.str, list(array.shape), memoryview(array.reshape(-1).view(np.uint8))]
    envelope = {
        "v": WIRE_VERSION,
        "kind": kind,
        "actor": int(actor),
        "incarnation": int(incarnation),
        "seq": int(seq),
        "fields": packed,
        "meta": dict(meta or {}),
    }
    return msgpack.packb(envelope, use_bin_type=True)


def decode(
    data: bytes,
    kind: str,
    schema: spec.Schema,
    optional: frozenset[str] = frozenset(),
    max_bytes: int = MAX_MESSAGE_BYTES,
    max_items: int = MAX_ITEMS,
) -> Message:
    """Validate and unpack an envelope of `kind` whose fields are exactly `schema` (minus any of `optional`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError("message", f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise WireError("message", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        # unpackb has no max_buffer_size (an Unpacker option): the size check above plays its role. The other
        # limits stop a small message from declaring huge containers.
        envelope = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_bin_len=max_bytes,
            max_str_len=1024,
            max_array_len=64,
            max_map_len=256,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as error:  # FormatError, StackError, ExtraData, ...
        raise WireError("message", f"not a valid msgpack envelope ({type(error).__name__}: {error})") from None
    header = _check_header(envelope, kind)
    fields = _check_fields(envelope["fields"], schema, optional, max_items)
    meta = _check_meta(envelope.get("meta", {}))
    return Message(kind, header["actor"], header["incarnation"], header["seq"], fields, meta)


def _check_header(envelope: Any, kind: str) -> dict[str, int]:
    if not isinstance(envelope, dict):
        raise WireError("message", f"expected a map, got {type(envelope).__name__}")
    keys = set(envelope)
    if not _HEADER_KEYS <= keys or not keys <= _HEADER_KEYS | {"meta"}:
        raise WireError("header", f"keys {sorted(map(str, keys))}, expected {sorted(_HEADER_KEYS)} (+ 'meta')")
    version = envelope["v"]
    if type(version) is not int or version != WIRE_VERSION:
        raise WireError("v", f"version {version!r}, expected {WIRE_VERSION}")
    if envelope["kind"] != kind:
        raise WireError("kind", f"{envelope['kind']!r}, expected {kind!r}")
    out = {}
    for key in ("actor", "incarnation", "seq"):
        value = envelope[key]
        if type(value) is not int or not 0 <= value <= _MAX_HEADER_INT:
            raise WireError(key, f"expected an int in [0, 2^63), got {value!r}")
        out[key] = value
    if not isinstance(envelope["fields"], dict):
        raise WireError("fields", f"expected a map, got {type(envelope['fields']).__name__}")
    return out


def _check_fields(raw: dict, schema: spec.Schema, optional: frozenset[str], max_items: int) -> dict[str, np.ndarray]:
    names = set(raw)
    missing = set(schema) - names - optional
    extra = names - set(schema)
    if missing or extra:
        bad = str(sorted(missing | extra, key=str)[0])
        raise WireError(bad, f"field set differs: missing {sorted(missing)}, unexpected {sorted(map(str, extra))}")
    out = {}
    count = None
    for name, entry in raw.items():
        dtype, item_shape = schema[name]
        if not isinstance(entry, list) or len(entry) != 3:
            raise WireError(name, "expected [dtype, shape, bytes]")
        dtype_str, shape, blob = entry
        if not isinstance(dtype_str, str) or dtype_str not in ALLOWED_DTYPES:
            raise WireError(name, f"dtype {dtype_str!r} is not in the allow-list")
        if dtype_str != np.dtype(dtype).str:
            raise WireError(name, f"dtype {dtype_str}, expected {np.dtype(dtype).str}")
        if not isinstance(shape, list) or not all(type(d) is int and 0 <= d <= _MAX_HEADER_INT for d in shape):
            raise WireError(name, f"shape {shape!r} is not a list of non-negative ints")
        if tuple(shape[1:]) != tuple(item_shape) or len(shape) != 1 + len(item_shape):
            raise WireError(name, f"shape {shape}, expected [n, {', '.join(map(str, item_shape))}]")
        n = shape[0]
        if n > max_items:
            raise WireError(name, f"{n} items exceeds the limit of {max_items}")
        if count is None:
            count = n
        elif n != count:
            raise WireError(name, f"{n} items, other fields have {count}")
        if not isinstance(blob, bytes):
            raise WireError(name, f"expected bytes, got {type(blob).__name__}")
        itemsize = np.dtype(dtype_str).itemsize
        if len(blob) != math.prod(shape) * itemsize:
            raise WireError(name, f"{len(blob)} bytes, expected {math.prod(shape)} x {itemsize}")
        out[name] = np.frombuffer(blob, dtype=dtype_str).reshape(shape)
    return out


def _check_meta(meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict) or len(meta) > MAX_META_ENTRIES:
        raise WireError("meta", f"expected a map of at most {MAX_META_ENTRIES} scalars")
    for key, value in meta.items():
        if not isinstance(key, str):
            raise WireError("meta", f"key {key!r} is not a string")
        if not isinstance(value, (int, float, str, bool, type(None))):
            raise WireError("meta", f"{key!r}: expected a scalar, got {type(value).__name__}")
    return meta


def encode_transitions(
    batch: dict[str, np.ndarray], priorities: np.ndarray | None, actor: int, incarnation: int, seq: int
) -> bytes:
    """An actor's push: the transition columns plus, optionally, float32 initial |TD| priorities."""
    fields = dict(batch)
    if priorities is not None:
        fields[spec.PRIORITY] = np.asarray(priorities, dtype=np.float32)
    return encode(TRANSITIONS, fields, actor, incarnation, seq)


def decode_transitions(data: bytes, schema: spec.Schema, **limits: int) -> Message:
    """Decode an actor's push; `schema` comes from `spec.transition_dtypes`. Priorities must be finite and >= 0."""
    full = {**schema, spec.PRIORITY: (np.dtype(np.float32), ())}
    message = decode(data, TRANSITIONS, full, optional=frozenset({spec.PRIORITY}), **limits)
    priorities = message.priorities
    if priorities is not None and not np.all(np.isfinite(priorities) & (priorities >= 0)):
        raise WireError(spec.PRIORITY, "priorities must be finite and >= 0")
    return message


def sample_schema(schema: spec.Schema) -> spec.Schema:
    """The columns of a "sample" message: the transition fields plus p_i and the item key."""
    return {
        **schema,
        spec.PRIORITY: (np.dtype(np.float64), ()),
        spec.SLOT: (np.dtype(np.int64), ()),
        spec.GENERATION: (np.dtype(np.int64), ()),
    }


def encode_sample(
    batch: dict[str, np.ndarray], schema: spec.Schema, shard: int, seq: int, meta: dict[str, Any]
) -> bytes:
    """A shard's answer to a sample request: the `sample_schema(schema)` columns of `batch` plus shard `meta`
    (`total`, `min`, `size`, ...); other columns of `batch` (weight, prob) are recomputed by the learner."""
    columns = {name: batch[name] for name in sample_schema(schema)}
    return encode(SAMPLE, columns, shard, 0, seq, meta)


def decode_sample(data: bytes, schema: spec.Schema, **limits: int) -> Message:
    """Decode a shard's sample; `schema` is the transition schema (the sample columns are added here)."""
    return decode(data, SAMPLE, sample_schema(schema), **limits)
