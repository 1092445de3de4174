"""`distdqn tasks`: the list of built-in tasks, and one task's rules, options and presets."""

import dataclasses
import importlib

import pytest

from distdqn.cli import main
from distdqn.envs.registry import BUILTIN_TASKS, DIFFICULTIES, TOKENIZER_TASKS


def test_the_list_names_every_built_in_task_and_ends_cleanly(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert [name for name in listed if name in BUILTIN_TASKS] == list(BUILTIN_TASKS)
    for name in TOKENIZER_TASKS:  # listed without being built: they need a tokenizer
        line = out.splitlines()[out.splitlines().index(next(x for x in out.splitlines() if x.startswith(name))) + 1]
        assert "tokenizer" in line
    assert "distdqn tasks NAME" in out


@pytest.mark.parametrize("name", [n for n in BUILTIN_TASKS if n not in TOKENIZER_TASKS])
def test_one_task_shows_its_rules_every_option_and_its_presets(name, capsys):
    module = importlib.import_module(BUILTIN_TASKS[name])
    assert main(["tasks", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(module.__doc__.strip().splitlines()[0])
    options = out[out.index("options (env.options.KEY)") : out.index("presets (env.difficulty)")]
    for f in dataclasses.fields(module.Options):
        assert f"\n  {f.name}: " in options, f"option {f.name} of {name} not shown"
    presets = out[out.index("presets (env.difficulty)") :].splitlines()[1:]
    for level, line in zip(DIFFICULTIES, presets, strict=True):
        assert line.split()[0] == level
        assert sorted(line.split()[1:]) == sorted(f"{k}={v}" for k, v in module.PRESETS[level].items())


def test_an_unknown_task_is_named_with_the_nearest(capsys):
    assert main(["tasks", "wordel"]) == 2
    assert "did you mean 'wordle'" in capsys.readouterr().err
