"""spec.validate_transitions: a table of out-of-range values, each named by its field; valid batches pass."""

import numpy as np
import pytest

from distdqn import spec
from distdqn.envs import TaskShape

VOCAB, MAX_LEN = 300, 8  # vocab 300: uint16 ids, so ids >= vocab fit the dtype and must be caught by value
SHAPE = TaskShape(VOCAB, MAX_LEN, with_mask=False, token_values=np.full(VOCAB, np.nan, np.float32))
MASKED = TaskShape(VOCAB, MAX_LEN, with_mask=True, token_values=np.full(VOCAB, np.nan, np.float32))


def valid(n: int = 5, with_mask: bool = False) -> dict[str, np.ndarray]:
    batch = spec.empty_batch(VOCAB, MAX_LEN, n, with_mask)
    batch[spec.TOKENS][:] = np.arange(n * MAX_LEN).reshape(n, MAX_LEN) % VOCAB
    batch[spec.LEN_S][:] = np.arange(n) % (MAX_LEN - 1) + 1
    batch[spec.LEN_NEXT][:] = batch[spec.LEN_S] + 1
    batch[spec.ACTION][:] = VOCAB - 1
    batch[spec.RETURN][:] = -3.5
    batch[spec.DISCOUNT][:] = np.linspace(0.0, 1.0, n)
    if with_mask:
        batch[spec.MASK_NEXT][:] = np.packbits(np.ones((n, VOCAB), bool), axis=-1, bitorder="little")
    return batch


def edit(field, value, row=2):
    def apply(batch):
        batch[field][row] = value

    return apply


def replace(field, array_of):
    def apply(batch):
        batch[field] = array_of(batch[field])

    return apply


CASES = [
    ("token id = vocab", edit(spec.TOKENS, VOCAB), spec.TOKENS),
    ("token id max", edit(spec.TOKENS, 65535), spec.TOKENS),
    ("action = vocab", edit(spec.ACTION, VOCAB), spec.ACTION),
    ("len_s 0", edit(spec.LEN_S, 0), spec.LEN_S),
    ("len_s negative", edit(spec.LEN_S, -1), spec.LEN_S),
    ("len_s > max_len", edit(spec.LEN_S, MAX_LEN + 1), spec.LEN_S),
    ("len_next 0", edit(spec.LEN_NEXT, 0), spec.LEN_NEXT),
    ("len_next > max_len", edit(spec.LEN_NEXT, MAX_LEN + 1), spec.LEN_NEXT),
    ("len_next = len_s", lambda b: b[spec.LEN_NEXT].__setitem__(2, b[spec.LEN_S][2]), spec.LEN_NEXT),
    ("len_next < len_s", lambda b: (edit(spec.LEN_S, 5)(b), edit(spec.LEN_NEXT, 3)(b)), spec.LEN_NEXT),
    ("return NaN", edit(spec.RETURN, np.nan), spec.RETURN),
    ("return inf", edit(spec.RETURN, -np.inf), spec.RETURN),
    ("discount NaN", edit(spec.DISCOUNT, np.nan), spec.DISCOUNT),
    ("discount inf", edit(spec.DISCOUNT, np.inf), spec.DISCOUNT),
    ("discount < 0", edit(spec.DISCOUNT, -0.01), spec.DISCOUNT),
    ("discount > 1", edit(spec.DISCOUNT, 1.01), spec.DISCOUNT),
    ("tokens too wide", replace(spec.TOKENS, lambda a: np.zeros((a.shape[0], MAX_LEN + 1), a.dtype)), spec.TOKENS),
    ("a field missing", lambda b: b.pop(spec.ACTION), spec.ACTION),
    ("a field too short", replace(spec.RETURN, lambda a: a[:-1]), spec.RETURN),
    ("an unexpected mask", lambda b: b.__setitem__(spec.MASK_NEXT, np.zeros((5, 38), np.uint8)), spec.MASK_NEXT),
]


@pytest.mark.parametrize(("name", "corrupt", "field"), CASES, ids=[c[0] for c in CASES])
def test_out_of_range_values_are_named(name, corrupt, field):
    batch = valid()
    spec.validate_transitions(batch, SHAPE)  # the batch is valid before the edit
    corrupt(batch)
    with pytest.raises(spec.FieldError) as error:
        spec.validate_transitions(batch, SHAPE)
    assert error.value.field == field, str(error.value)


MASK_CASES = [
    ("mask one byte short", replace(spec.MASK_NEXT, lambda a: a[:, :-1])),
    ("mask one byte long", replace(spec.MASK_NEXT, lambda a: np.concatenate([a, a[:, :1]], axis=1))),
    ("mask bit for action vocab", lambda b: b[spec.MASK_NEXT].__setitem__((1, -1), 0xFF)),
    ("mask missing", lambda b: b.pop(spec.MASK_NEXT)),
]


@pytest.mark.parametrize(("name", "corrupt"), MASK_CASES, ids=[c[0] for c in MASK_CASES])
def test_masks_of_the_wrong_width_or_with_bits_past_the_vocabulary(name, corrupt):
    batch = valid(with_mask=True)
    spec.validate_transitions(batch, MASKED)
    corrupt(batch)
    with pytest.raises(spec.FieldError) as error:
        spec.validate_transitions(batch, MASKED)
    assert error.value.field == spec.MASK_NEXT


@pytest.mark.parametrize("n", [0, 1, 64])
def test_valid_batches_pass_including_empty_and_priorities(n):
    batch = valid(n)
    batch[spec.PRIORITY] = np.ones(n, np.float32)  # the wire's optional column is allowed alongside
    spec.validate_transitions(batch, SHAPE)


def test_edge_values_are_valid():
    batch = valid(3)
    batch[spec.LEN_S][:] = [1, MAX_LEN - 1, 1]
    batch[spec.LEN_NEXT][:] = [2, MAX_LEN, MAX_LEN]
    batch[spec.DISCOUNT][:] = [0.0, 1.0, 0.5]
    batch[spec.TOKENS][:] = VOCAB - 1
    batch[spec.ACTION][:] = 0
    spec.validate_transitions(batch, SHAPE)


def test_field_error_is_a_value_error_and_the_wire_error_is_one():
    from distdqn import wire

    assert issubclass(spec.FieldError, ValueError) and issubclass(wire.WireError, spec.FieldError)
