"""Where a run writes: a new run never mixes into a directory that holds another run (the default `runs/<name>`
moves on to `runs/<name>-2`, an explicit `--run-dir` is refused in favour of `--resume`), a run without a name is
named after its task, and a configuration the task rejects leaves the directory untouched."""

from pathlib import Path

import pytest

from distdqn.cli import main
from distdqn.config import load_config, run_dir, task_run_name
from distdqn.run import holds_run, prepare_run_dir


def started(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "metrics.jsonl").write_text("{}\n")
    return directory


def test_a_run_without_a_name_is_named_after_its_task():
    assert task_run_name(load_config(None, ["env.task=grammar", "env.difficulty=hard"]).env) == "grammar_hard"
    assert task_run_name(load_config(None, ["env.task=my.tasks:Rhyme Task"]).env) == "Rhyme_Task_easy"
    assert run_dir(load_config(None, ["env.task=copy"])) == Path("runs/copy_easy")
    assert run_dir(load_config(None, ["env.task=copy", "run.name=mine"])) == Path("runs/mine")


def test_the_default_directory_moves_on_past_earlier_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    said = []
    first = load_config(None, ["env.task=copy"])
    assert prepare_run_dir(first, say=said.append) == Path("runs/copy_easy") and first.run.name == "copy_easy"
    assert not said and not holds_run(Path("runs/copy_easy"))  # a config alone is not a run
    started(tmp_path / "runs/copy_easy/checkpoints/0000000010")
    started(tmp_path / "runs/copy_easy-2")
    again = load_config(None, ["env.task=copy"])
    assert prepare_run_dir(again, say=said.append) == Path("runs/copy_easy-3")
    assert again.run.name == "copy_easy-3" and run_dir(again) == Path("runs/copy_easy-3")  # every part agrees
    assert "runs/copy_easy holds an earlier run" in said[0] and "--resume runs/copy_easy" in said[0]
    assert (tmp_path / "runs/copy_easy-3/config.yaml").exists()
    resumed = load_config(None, ["env.task=copy", "run.name=copy_easy"])
    assert prepare_run_dir(resumed, resuming=True) == Path("runs/copy_easy")  # --resume continues in place


def test_an_explicit_directory_holding_a_run_is_refused(tmp_path):
    directory = started(tmp_path / "run")
    config = load_config(None, [f"run.run_dir={directory}"])
    with pytest.raises(ValueError, match=r"already holds a run: continue it with `--resume .*run`"):
        prepare_run_dir(config)
    assert prepare_run_dir(config, resuming=True) == directory and config.run.name == "run"


def test_a_rejected_task_option_writes_nothing(tmp_path, capsys):
    directory = tmp_path / "run"
    code = main(["train", "--local", "--task", "keyword", "--run-dir", str(directory), "env.options.num_concepts=2"])
    assert code == 2 and "did you mean 'env.options.min_concepts'" in capsys.readouterr().err
    assert not directory.exists()
