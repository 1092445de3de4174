"""`distdqn plot` without drawing: reading metrics.jsonl, series across a resume, labels, and its clear errors."""

import json
import sys

import pytest

from distdqn.extras import MissingExtra
from distdqn.plot import plot_runs, read_records, run_labels, series


def write_metrics(directory, records, torn_tail=False):
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in records]
    text = "\n".join(lines) + "\n" + ('{"kind": "train", "env_st' if torn_tail else "")
    (directory / "metrics.jsonl").write_text(text)
    return directory


def test_series_picks_records_with_the_metric_and_drops_what_a_resume_superseded():
    records = [
        {"kind": "train", "env_steps": 100, "wall_s": 1.0, "learner.loss": 0.5},
        {"kind": "eval", "env_steps": 150, "wall_s": 1.5, "eval.success": 0.1},
        {"kind": "train", "env_steps": 200, "wall_s": 2.0, "learner.loss": 0.4},
        {"kind": "train", "env_steps": 300, "wall_s": 3.0, "learner.loss": None},  # non-finite, written as null
        {"kind": "train", "env_steps": 400, "wall_s": 4.0, "learner.loss": 0.3},
        # resumed from the checkpoint at env step 200: the session's records replace the ones after it
        {"kind": "train", "env_steps": 250, "wall_s": 2.5, "learner.loss": 0.35},
        {"kind": "train", "env_steps": 500, "wall_s": 5.0, "learner.loss": 0.2},
    ]
    assert series(records, "learner.loss") == ([100.0, 200.0, 250.0, 500.0], [0.5, 0.4, 0.35, 0.2])
    assert series(records, "learner.loss", x="wall_s") == ([1.0, 2.0, 2.5, 5.0], [0.5, 0.4, 0.35, 0.2])
    assert series(records, "eval.success") == ([150.0], [0.1])
    assert series(records, "absent") == ([], [])


def test_a_torn_last_line_is_skipped(tmp_path):
    run = write_metrics(tmp_path / "r", [{"env_steps": 1, "eval.success": 0.5}], torn_tail=True)
    assert read_records(run) == [{"env_steps": 1, "eval.success": 0.5}]
    assert read_records(run / "metrics.jsonl") == read_records(run)


def test_labels_are_run_names_with_the_parent_when_two_share_one(tmp_path):
    assert run_labels([tmp_path / "a" / "lr3e-4", tmp_path / "b" / "lr1e-3"]) == ["lr3e-4", "lr1e-3"]
    assert run_labels([tmp_path / "a" / "run", tmp_path / "b" / "run" / "metrics.jsonl"]) == ["a/run", "b/run"]


def test_errors_name_the_problem(tmp_path):
    run = write_metrics(tmp_path / "r", [{"kind": "eval", "env_steps": 1, "eval.success": 0.5}])
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        plot_runs([tmp_path / "missing"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"'eval\.succes' is in no run's metrics.jsonl \(did you mean 'eval\.success'"):
        plot_runs([run], tmp_path / "x.png", metrics=["eval.succes"])
    with pytest.raises(ValueError, match="x axis must be one of"):
        plot_runs([run], tmp_path / "x.png", x="updates")
    assert not (tmp_path / "x.png").exists()


def test_without_matplotlib_the_error_names_the_extra(tmp_path, monkeypatch):
    run = write_metrics(tmp_path / "r", [{"kind": "eval", "env_steps": 1, "eval.success": 0.5}])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    with pytest.raises(MissingExtra, match=r"distdqn plot needs matplotlib .*pip install 'distdqn\[plot\]'"):
        plot_runs([run], tmp_path / "x.png")
