"""typed.build: override text parsed by the declared type, declared ranges, non-finite floats, Optional/Union."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Literal

import pytest

from distdqn.typed import ConfigError, PositiveInt, Range, Text, build, ranges


@dataclasses.dataclass
class Options:
    count: PositiveInt = 1
    scale: Annotated[float, Range(gt=0, le=2)] = 1.0
    free: float = 0.0  # no range: only finiteness is checked
    level: Literal[1, 2, 3] = 1
    label: str = ""
    limit: int | None = None
    either: int | str = 0
    sizes: tuple[int, ...] = ()


@pytest.mark.parametrize(
    ("bounds", "text"),
    [
        (Range(gt=0), "> 0"),
        (Range(ge=1), ">= 1"),
        (Range(lt=5), "< 5"),
        (Range(le=0.5), "<= 0.5"),
        (Range(ge=0, le=1), "in [0, 1]"),
        (Range(gt=0, le=1), "in (0, 1]"),
        (Range(ge=0, lt=1), "in [0, 1)"),
        (Range(), "finite"),
    ],
)
def test_range_describes_itself(bounds, text):
    assert str(bounds) == text


@pytest.mark.parametrize(
    ("bounds", "value", "problem"),
    [
        (Range(gt=0), 1e-9, None),
        (Range(gt=0), 0, "must be > 0, got 0"),
        (Range(gt=0), math.nan, "must be > 0, got nan"),
        (Range(gt=0), math.inf, "must be finite and > 0, got inf"),
        (Range(ge=0, le=1), -math.inf, "must be in [0, 1], got -inf"),
        (Range(), math.nan, "must be finite, got nan"),
    ],
)
def test_range_check(bounds, value, problem):
    assert bounds.check(value) == problem


def test_range_takes_one_bound_each_side():
    with pytest.raises(ValueError):
        Range(ge=0, gt=0)


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("count", "7", 7),
        ("count", "1e3", 1000),
        ("scale", "0.5", 0.5),
        ("level", "2", 2),  # a Literal of ints matches the text against each choice
        ("label", "42", "42"),
        ("label", "  spaced ", "  spaced "),
        ("limit", "null", None),
        ("limit", "None", None),
        ("limit", "5", 5),
        ("either", "5", 5),  # Union members are tried in order
        ("either", "five", "five"),
        ("sizes", "[1, 2]", (1, 2)),
    ],
)
def test_text_parsed_by_declared_type(key, text, value):
    got = getattr(build(Options, {key: Text(text)}), key)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("count", Text("0"), "o.count: must be >= 1, got 0"),
        ("scale", Text("3"), "o.scale: must be in (0, 2], got 3.0"),
        ("scale", Text("nan"), "o.scale: must be in (0, 2], got nan"),
        ("free", Text("inf"), "o.free: must be finite, got inf"),
        ("free", math.nan, "o.free: must be finite, got nan"),
        ("level", Text("4"), "o.level: expected one of [1, 2, 3], got '4'"),
        ("limit", Text("x"), "o.limit: expected int | None, got 'x'"),
        ("sizes", Text("[1, a]"), "o.sizes[1]: expected int, got 'a'"),
        ("label", 3, "o.label: expected str, got 3"),
    ],
)
def test_bad_values_are_one_line_each(key, value, problem):
    with pytest.raises(ConfigError) as e:
        build(Options, {key: value}, prefix="o")
    assert e.value.problems == [problem]


def test_ranges_lists_numeric_fields_and_their_declared_range():
    declared = ranges(Options)
    assert declared["count"] == Range(ge=1) and declared["scale"] == Range(gt=0, le=2)
    assert declared["free"] is None and declared["limit"] is None  # an Optional[int] needs a range too
    assert "label" not in declared and "either" not in declared and "level" not in declared
