"""Tracker sinks without the tracker libraries: the config key, what counts as a metric, and the missing-extra error."""

import sys

import numpy as np
import pytest

from distdqn.config import ConfigError, load_config
from distdqn.extras import MissingExtra
from distdqn.metrics import JsonlSink, open_run_sinks
from distdqn.trackers import flatten, numeric


def test_trackers_key_takes_known_names_and_suggests_the_right_one():
    assert load_config(None, ["run.trackers=[wandb, mlflow]"]).run.trackers == ["wandb", "mlflow"]
    assert load_config(None, []).run.trackers == []
    with pytest.raises(
        ConfigError,
        match=r"run\.trackers\[0\]: expected one of \['wandb', 'mlflow'\], got 'wandbb' "
        r"\(did you mean 'wandb'\?\)",
    ):
        load_config(None, ["run.trackers=[wandbb]"])
    with pytest.raises(ConfigError, match=r"'mlfow' \(did you mean 'mlflow'\?\)"):
        load_config(None, ["run.trackers=[mlfow]"])
    with pytest.raises(ConfigError, match=r"run\.wandb_mode: expected one of \['offline', 'online'\]"):
        load_config(None, ["run.wandb_mode=disabled"])


def test_only_finite_numbers_are_metrics():
    record = {"kind": "eval", "path": "/x", "ok": True, "a": 1, "b": np.float32(0.5), "c": None, "d": float("nan")}
    assert numeric(record) == {"a": 1.0, "b": 0.5}


def test_flatten_gives_dotted_keys():
    assert flatten({"learner": {"lr": 1e-3}, "env": {"options": {}}, "x": [1]}) == {
        "learner.lr": 1e-3,
        "env.options": {},
        "x": [1],
    }


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_missing_tracker_names_its_extra_and_leaves_no_sink_open(name, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, name, None)  # `import wandb` raises ImportError
    closed = []
    monkeypatch.setattr(JsonlSink, "close", lambda self: closed.append(self))
    config = load_config(None, [f"run.trackers=[{name}]"])
    with pytest.raises(MissingExtra, match=rf"run.trackers: \[{name}\] needs {name} .*pip install 'distdqn\[{name}\]'"):
        open_run_sinks(tmp_path, tensorboard=False, config=config)
    assert len(closed) == 1  # metrics.jsonl, opened before the trackers, is closed again
