"""Wire format: round trips over dtypes and shapes (including empty batches) and strict rejection of bad input."""

import msgpack
import numpy as np
import pytest

from distdqn import spec, wire
from distdqn.wire import WireError


def batch_for(vocab: int, max_len: int, n: int, with_mask: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = spec.empty_batch(vocab, max_len, n, with_mask)
    batch[spec.TOKENS][:] = rng.integers(0, vocab, batch[spec.TOKENS].shape)
    batch[spec.RETURN][:] = rng.normal(size=n)
    batch[spec.LEN_S][:] = rng.integers(1, max_len, n)
    return batch


@pytest.mark.parametrize("vocab", [50, 256, 300, 70_000])  # uint8, uint8, uint16, int32 tokens
@pytest.mark.parametrize("n", [0, 1, 33])
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("with_priorities", [False, True])
def test_transitions_round_trip(vocab, n, with_mask, with_priorities):
    schema = spec.transition_dtypes(vocab, 9, with_mask)
    batch = batch_for(vocab, 9, n, with_mask)
    priorities = np.linspace(0, 2, n) if with_priorities else None
    message = wire.decode_transitions(wire.encode_transitions(batch, priorities, 3, 2, 17), schema)
    assert (message.kind, message.actor, message.incarnation, message.seq, len(message)) == ("transitions", 3, 2, 17, n)
    for name, (dtype, shape) in schema.items():
        got = message.fields[name]
        assert got.dtype == dtype and got.shape == (n, *shape) and not got.flags.writeable
        np.testing.assert_array_equal(got, batch[name])
    if with_priorities:
        np.testing.assert_allclose(message.priorities, priorities.astype(np.float32))
    else:
        assert message.priorities is None


def test_sample_round_trip_with_meta():
    schema = spec.transition_dtypes(300, 5)
    batch = batch_for(300, 5, 4)
    batch.update(priority=np.arange(4.0), slot=np.arange(4), generation=np.arange(4) + 10, weight=np.ones(4))
    meta = {"total": 6.5, "min": 0.25, "size": 4, "inserted": 9}
    message = wire.decode_sample(wire.encode_sample(batch, schema, shard=1, seq=5, meta=meta), schema)
    assert message.kind == "sample" and message.actor == 1 and message.meta == meta
    assert spec.WEIGHT not in message.fields
    np.testing.assert_array_equal(message.fields[spec.GENERATION], batch[spec.GENERATION])


SCHEMA = spec.transition_dtypes(300, 8)


def valid_envelope() -> dict:
    data = wire.encode_transitions(batch_for(300, 8, 5), np.ones(5), 1, 0, 0)
    return msgpack.unpackb(data, raw=False)


def repack(envelope: dict) -> bytes:
    return msgpack.packb(envelope, use_bin_type=True)


def mutate(path: tuple, value=None, delete: bool = False):
    envelope = valid_envelope()
    node = envelope
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return repack(envelope)


@pytest.mark.parametrize(
    "data,field",
    [
        (b"", "message"),
        (b"\xc1", "message"),  # never-used msgpack byte
        (repack([1, 2, 3]), "message"),
        (repack(valid_envelope()) + b"\x00", "message"),  # trailing bytes
        (mutate(("v",), 2), "v"),
        (mutate(("v",), True), "v"),
        (mutate(("kind",), "sample"), "kind"),
        (mutate(("actor",), -1), "actor"),
        (mutate(("seq",), "7"), "seq"),
        (mutate(("incarnation",), delete=True), "header"),
        (mutate(("extra",), 1), "header"),
        (mutate(("fields",), []), "fields"),
        (mutate(("fields", spec.ACTION), delete=True), spec.ACTION),
        (mutate(("fields", "bonus"), ["<f4", [5], b"\x00" * 20]), "bonus"),
        (mutate(("fields", spec.TOKENS, 0), "|O"), spec.TOKENS),
        (mutate(("fields", spec.TOKENS, 0), "<i8"), spec.TOKENS),  # allowed dtype, not the schema's
        (mutate(("fields", spec.TOKENS, 1), [5, 7]), spec.TOKENS),  # wrong per-item shape
        (mutate(("fields", spec.TOKENS, 1), [5, 8, 1]), spec.TOKENS),
        (mutate(("fields", spec.TOKENS, 1), [5, -8]), spec.TOKENS),
        (mutate(("fields", spec.TOKENS, 2), b"\x00" * 3), spec.TOKENS),  # byte length
        (mutate(("fields", spec.TOKENS, 2), "text"), spec.TOKENS),
        (mutate(("fields", spec.RETURN, 1), [4]), spec.RETURN),  # unequal leading dimension
        (mutate(("fields", spec.RETURN), ["<f4", [5]]), spec.RETURN),
        (mutate(("fields", spec.PRIORITY, 2), np.full(5, np.nan, np.float32).tobytes()), spec.PRIORITY),
        (mutate(("meta",), {"k": [1, 2]}), "meta"),
        (mutate(("meta",), {1: 2}), "message"),  # strict_map_key
    ],
)
def test_bad_messages_raise_wire_error_naming_the_field(data, field):
    with pytest.raises(WireError) as info:
        wire.decode_transitions(data, SCHEMA)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_limits():
    data = wire.encode_transitions(batch_for(300, 8, 100), None, 0, 0, 0)
    with pytest.raises(WireError, match="exceeds"):
        wire.decode_transitions(data, SCHEMA, max_bytes=len(data) - 1)
    with pytest.raises(WireError, match="items exceeds"):
        wire.decode_transitions(data, SCHEMA, max_items=99)
    with pytest.raises(WireError):
        wire.decode_transitions("not bytes", SCHEMA)  # type: ignore[arg-type]


def test_encode_rejects_disallowed_dtypes():
    with pytest.raises(WireError, match="allow-list"):
        wire.encode("transitions", {"x": np.array(["a"])}, 0, 0, 0)


def test_random_corruption_only_ever_raises_wire_error():
    rng = np.random.default_rng(0)
    data = wire.encode_transitions(batch_for(300, 8, 3), np.ones(3), 1, 0, 0)
    decoded = rejected = 0
    for _ in range(3000):
        corrupt = bytearray(data)
        for pos in rng.integers(0, len(corrupt), rng.integers(1, 4)):
            corrupt[pos] = rng.integers(0, 256)
        if rng.random() < 0.2:
            corrupt = corrupt[: rng.integers(0, len(corrupt))]
        try:
            wire.decode_transitions(bytes(corrupt), SCHEMA)
            decoded += 1
        except WireError:
            rejected += 1
    assert rejected > 0 and decoded + rejected == 3000
