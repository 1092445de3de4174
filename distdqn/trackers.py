"""Experiment trackers as metrics sinks: Weights & Biases and MLflow, chosen by `run.trackers` (both optional).

Each tracker is a `distdqn.metrics.Sink`: it receives the same records as `metrics.jsonl` and logs their numeric
values (non-finite ones and text are left out). The run's resolved config is logged once, when the tracker's run is
created. Both work without a network by default: W&B in offline mode (`run.wandb_mode`; `wandb sync
<run_dir>/wandb/offline-run-*` uploads later) and MLflow into a file store under the run directory
(`run.mlflow_uri` '' = `<run_dir>/mlruns`; `MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri
<run_dir>/mlruns` shows it).

The run directory is a run's identity here (a resumed run appends to its metrics.jsonl), so each tracker's run id
is kept in `<run_dir>/trackers.json` and a resumed run continues the same tracker run. The x axis is `env_steps`
(a metric of every record): W&B's own step counter only increases, which a resume (restarting from its checkpoint's
counters) would break.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from distdqn.config import Config
from distdqn.extras import require
from distdqn.metrics import Sink

IDS_FILE = "trackers.json"
PARAMS_PER_BATCH = 100  # MLflow's limit of params per log_batch call


def numeric(record: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a record (bools and text such as `kind` or a checkpoint path are not metrics)."""
    out = {}
    for key, value in record.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"learner": {"lr": 1e-3}}` -> `{"learner.lr": 1e-3}` (trackers show dotted keys as the overrides use)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def _saved_ids(directory: Path) -> dict[str, str]:
    try:
        return json.loads((directory / IDS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _save_id(directory: Path, tracker: str, run_id: str) -> None:
    ids = {**_saved_ids(directory), tracker: run_id}
    (directory / IDS_FILE).write_text(json.dumps(ids, indent=1) + "\n")


class WandbSink:
    """Records to a W&B run (offline by default); the config goes in `wandb.init(config=...)` when it is created."""

    def __init__(self, config: Config, directory: Path):
        wandb = require("wandb", "wandb", "run.trackers: [wandb]")
        run_id = _saved_ids(directory).get("wandb")
        self._run = wandb.init(
            project=config.run.tracker_project,
            name=config.run.name or directory.name,
            dir=str(directory),
            id=run_id,
            resume="allow" if run_id else None,
            mode=config.run.wandb_mode,
            config=None if run_id else config.to_dict(),
            reinit="create_new",  # several runs in one process (a sweep's trials) each get their own
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True, disable_git=True),
        )
        self._run.define_metric("*", step_metric="env_steps")
        _save_id(directory, "wandb", self._run.id)

    def write(self, step: int, record: dict[str, Any]) -> None:
        values = numeric(record)
        values.setdefault("env_steps", float(step))
        self._run.log(values)

    def close(self) -> None:
        self._run.finish()


class MlflowSink:
    """Records to an MLflow run through `MlflowClient` (no global active run, so several can coexist); the config is
    logged once as params (dotted keys) and as `config.json`."""

    def __init__(self, config: Config, directory: Path):
        require("mlflow", "mlflow", "run.trackers: [mlflow]")
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        self._metric = Metric
        uri = config.run.mlflow_uri
        if not uri:
            # MLflow 3.x keeps its file store in "maintenance mode" behind this switch; it is the store that needs
            # no server and no database packages (mlflow-skinny has no SQLAlchemy), as a run directory should.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (directory.resolve() / "mlruns").as_uri()
        self._client = MlflowClient(tracking_uri=uri)
        self.run_id = _saved_ids(directory).get("mlflow")
        if self.run_id is None:
            name = config.run.tracker_project
            found = self._client.get_experiment_by_name(name)
            experiment = found.experiment_id if found else self._client.create_experiment(name)
            self.run_id = self._client.create_run(experiment, run_name=config.run.name or directory.name).info.run_id
            flat = flatten(config.to_dict())
            params = [Param(k, json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in flat.items()]
            for first in range(0, len(params), PARAMS_PER_BATCH):
                self._client.log_batch(self.run_id, params=params[first : first + PARAMS_PER_BATCH])
            self._client.log_dict(self.run_id, config.to_dict(), "config.json")
            _save_id(directory, "mlflow", self.run_id)
        else:
            self._client.update_run(self.run_id, status="RUNNING")

    def write(self, step: int, record: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        metrics = [self._metric(k, v, now, step) for k, v in numeric(record).items()]
        if metrics:
            self._client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self._client.set_terminated(self.run_id)


TRACKERS: dict[str, type] = {"wandb": WandbSink, "mlflow": MlflowSink}


def open_trackers(config: Config, directory: Path) -> list[Sink]:
    """One sink per name in `run.trackers` (the config's type already rejected unknown names)."""
    sinks: list[Sink] = []
    try:
        for name in config.run.trackers:
            sinks.append(TRACKERS[name](config, directory))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks
