"""Strict construction of typed dataclasses from plain dicts (YAML, CLI overrides, task options).

Every config-like object in distdqn is a dataclass with defaults; `build` turns a nested dict into one and fails at
once on an unknown key (naming its dotted path and the nearest valid key), a value of the wrong type (naming the
expected type and the value) or a number outside the range declared next to its field
(`lr: Annotated[float, Range(gt=0)]`). Errors are collected, so one run reports every problem at the same time.

Values arrive in two forms. YAML values keep their YAML types and are only checked (an int is accepted for a float,
an integral float for an int, an int for a Literal of strings such as "0" | "1"). Command-line overrides arrive as
`Text` and are parsed by the declared type of the field they land on: a str field takes the text as is, so
`run.name=2024` is the name "2024", and a Literal matches the text against its choices. Non-finite floats (nan, inf)
are rejected everywhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from typing import Annotated, Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """One or more problems in a configuration; `problems` lists them, the message shows them all."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed interval of a numeric field, declared as `Annotated[float, Range(gt=0)]` (one bound each side)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __post_init__(self):
        if self.ge is not None and self.gt is not None or self.le is not None and self.lt is not None:
            raise ValueError(f"{self}: give at most one lower bound (ge | gt) and one upper bound (le | lt)")

    def __str__(self) -> str:
        lower = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else None
        upper = f"{self.le:g}]" if self.le is not None else f"{self.lt:g})" if self.lt is not None else None
        if lower and upper:
            return f"in {lower}, {upper}"
        if lower:
            return f"{'>=' if self.ge is not None else '>'} {lower[1:]}"
        if upper:
            return f"{'<=' if self.le is not None else '<'} {upper[:-1]}"
        return "finite"

    def check(self, value: float) -> str | None:
        """None when `value` is finite and inside the range, else the problem ('must be > 0, got nan')."""
        inside = (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )
        if not inside:  # nan lands here: every comparison with it is False
            return f"must be {self}, got {value}"
        if not math.isfinite(value):
            return f"must be finite{'' if str(self) == 'finite' else ' and ' + str(self)}, got {value}"
        return None


# The common ranges by name (pydantic's names), for fields to declare their range in their type.
PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]  # 0 often means "no limit" or "disabled": each field says
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
UnitInterval = Annotated[float, Range(ge=0, le=1)]  # probabilities, fractions, exponents in [0, 1]


@dataclasses.dataclass(frozen=True)
class Text:
    """A value given as text (a `key=value` override), parsed by the declared type of the field it lands on."""

    text: str


# YAML 1.1 (PyYAML) reads '1e-4' and '1e6' as strings; config files and text for dict/list/Any fields read them as floats.
class YamlLoader(yaml.SafeLoader):
    pass


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_NONE = {"null", "none", "~"}


def parse_yaml(text: str) -> Any:
    """Text for a field without a scalar type (dict, list, Any): YAML, with '1e-4' a float; bad YAML stays text."""
    try:
        return yaml.load(text, Loader=YamlLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError:
        return text


def suggest(key: str, valid: typing.Iterable[str], prefix: str = "") -> str:
    """' (did you mean X?)' for the nearest valid key (shown under `prefix`), or '' when nothing is close."""
    match = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f" (did you mean '{prefix + '.' if prefix else ''}{match[0]}'?)" if match else ""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _from_text(text: str, tp: Any, path: str) -> Any:
    """Parse override text by the type `tp`; text that does not parse is returned as is, for the type check to name."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _from_text(text, typing.get_args(tp)[0], path)
    if tp is str:
        return text
    if tp is bool:
        word = text.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else text
    if tp is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)  # '1e6' is the int 1000000; '2.5' stays text and fails the int check
        except ValueError:
            return text
        return int(number) if number.is_integer() else text
    if tp is float:
        try:
            return float(text)
        except ValueError:
            return text
    if origin is typing.Literal:
        return next((c for c in typing.get_args(tp) if str(c) == text), text)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in _NONE:
            return None
        for arg in args:
            if arg is type(None):
                continue
            trial: list[str] = []
            value = _from_text(text, arg, path)
            _coerce(value, arg, path, trial)
            if not trial:
                return value
        return text
    return parse_yaml(text)  # dict, list, tuple, a dataclass section, Any


def _untext(value: Any) -> Any:
    """Text left inside a dict/list value (`env.options.k=v` lands in an untyped dict) read as YAML."""
    if isinstance(value, Text):
        return parse_yaml(value.text)
    if isinstance(value, dict):
        return {k: _untext(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_untext(v) for v in value)
    return value


def _coerce(value: Any, tp: Any, path: str, problems: list[str], finite: bool = True) -> Any:
    """Check (and gently coerce: int -> float, list -> tuple, Text -> the field's type) `value` against `tp`."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *extras = typing.get_args(tp)
        ranges = [e for e in extras if isinstance(e, Range)]
        before = len(problems)
        out = _coerce(value, base, path, problems, finite=not ranges)  # a Range names the bounds for nan/inf too
        if len(problems) == before:
            problems.extend(f"{path}: {p}" for r in ranges if (p := r.check(out)))
        return out
    if isinstance(value, Text):
        value = _from_text(value.text, tp, path)
    if tp is Any:
        return _untext(value)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            trial: list[str] = []
            out = _coerce(value, arg, path, trial)
            if not trial:
                return out
        problems.append(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return value
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and str(value) in choices:
            return str(value)  # YAML `learner_num_gpus: 1` is the choice "1"
        problems.append(
            f"{path}: expected one of {list(choices)}, got {value!r}{suggest(str(value), map(str, choices))}"
        )
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping for section {tp.__name__}, got {value!r}")
            return tp()
        return _build(tp, value, path, problems)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{path}: expected a list, got {value!r}")
            return value
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {value!r}")
        return _untext(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected float, got {value!r}")
            return value
        if finite and not math.isfinite(value):
            problems.append(f"{path}: must be finite, got {value}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            problems.append(f"{path}: expected int, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{path}: expected bool, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            problems.append(f"{path}: expected str, got {value!r}")
        return value
    return _untext(value)


def _build(cls: type[T], data: dict, prefix: str, problems: list[str]) -> T:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    start = len(problems)
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            problems.append(f"unknown key '{path}'{suggest(str(key), fields, prefix)}")
            continue
        before = len(problems)
        coerced = _coerce(value, hints[key], path, problems)
        if len(problems) == before:  # a value of the wrong type must not reach the dataclass's own checks
            kwargs[key] = coerced
    if len(problems) > start:  # don't run the dataclass's own checks on a config already known to be wrong
        return None  # type: ignore[return-value]
    return cls(**kwargs)


def build(cls: type[T], data: dict | None, prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict (values or `Text`), raising ConfigError listing every problem."""
    problems: list[str] = []
    obj = _build(cls, dict(data or {}), prefix, problems)
    if problems:
        raise ConfigError(problems)
    return obj


def ranges(cls: type) -> dict[str, Range | None]:
    """Each int/float field (optional or not) of dataclass `cls` and the Range declared for it (None where none is)."""
    out: dict[str, Range | None] = {}
    for name, tp in typing.get_type_hints(cls, include_extras=True).items():
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(members) == 1:
            tp = members[0]  # Optional[X]
        extras = typing.get_args(tp)[1:] if typing.get_origin(tp) is Annotated else ()
        base = typing.get_args(tp)[0] if extras else tp
        if base in (int, float):
            out[name] = next((e for e in extras if isinstance(e, Range)), None)
    return out


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain dicts/lists (tuples become lists), ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
