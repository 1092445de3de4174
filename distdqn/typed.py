"""Strict construction of typed dataclasses from plain dicts (YAML, CLI overrides, task options).

Every config-like object in distdqn is a dataclass with defaults; `build` turns a nested dict into one and fails at
once on an unknown key (naming its dotted path and the nearest valid key) or a value of the wrong type (naming the
expected type and the value). Errors are collected, so one run reports every problem at the same time.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """One or more problems in a configuration; `problems` lists them, the message shows them all."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


def suggest(key: str, valid: typing.Iterable[str], prefix: str = "") -> str:
    """' (did you mean X?)' for the nearest valid key (shown under `prefix`), or '' when nothing is close."""
    match = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f" (did you mean '{prefix + '.' if prefix else ''}{match[0]}'?)" if match else ""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str, problems: list[str]) -> Any:
    """Check (and gently coerce: int -> float, list -> tuple) `value` against the annotation `tp`."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
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
        if value not in choices:
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
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected float, got {value!r}")
            return value
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
    return value


def _build(cls: type[T], data: dict, prefix: str, problems: list[str]) -> T:
    hints = typing.get_type_hints(cls)
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
        if len(problems) == before:  # a value of the wrong type must not reach the dataclass's range checks
            kwargs[key] = coerced
    if len(problems) > start:  # don't run the dataclass's own checks on a config already known to be wrong
        return None  # type: ignore[return-value]
    return cls(**kwargs)


def build(cls: type[T], data: dict | None, prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict, raising ConfigError listing every unknown key and bad type."""
    problems: list[str] = []
    obj = _build(cls, dict(data or {}), prefix, problems)
    if problems:
        raise ConfigError(problems)
    return obj


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain dicts/lists (tuples become lists), ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
