"""W&B (offline) and MLflow (file store) sinks with the real libraries, fed by a real short run and its resume."""

import json

import pytest

wandb = pytest.importorskip("wandb", reason="the wandb extra (pip install 'distdqn[wandb]') is not installed")
mlflow = pytest.importorskip("mlflow", reason="the mlflow extra (pip install 'distdqn[mlflow]') is not installed")

from mlflow.tracking import MlflowClient  # noqa: E402

from distdqn.checkpoint import config_for_resume  # noqa: E402
from distdqn.config import load_config  # noqa: E402
from distdqn.trainer import train  # noqa: E402
from tests.fakes import COPY_RUN  # noqa: E402

TINY = [*COPY_RUN, "run.eval_interval_s=0.5", "run.log_interval_s=0.2", "checkpoint.interval_s=0"]


def test_a_run_and_its_resume_log_to_both_trackers_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # offline must not need it: nothing listens there
    run = tmp_path / "run"
    config = load_config(
        None, [*TINY, "run.trackers=[wandb, mlflow]", "run.name=tracked", "run.max_updates=60", f"run.run_dir={run}"]
    )
    first = train(config, run, "local", quiet=True, examples=0)
    ids = json.loads((run / "trackers.json").read_text())
    assert set(ids) == {"wandb", "mlflow"}

    client = MlflowClient(tracking_uri=(run / "mlruns").as_uri())
    logged = client.get_run(ids["mlflow"])
    assert logged.info.status == "FINISHED" and logged.info.run_name == "tracked"
    assert logged.data.params["learner.lr"] == "0.003" and logged.data.params["run.trackers"] == '["wandb", "mlflow"]'
    assert client.get_experiment(logged.info.experiment_id).name == "distdqn"
    evals = client.get_metric_history(ids["mlflow"], "eval.success")
    assert evals and evals[-1].value == pytest.approx(first["final_success"]) and evals[-1].step == first["env_steps"]
    rates = client.get_metric_history(ids["mlflow"], "rate.env_steps_per_s")  # one per log line: how many is timing
    assert rates and all(m.value > 0 and 0 < m.step <= first["env_steps"] for m in rates)

    (offline,) = (run / "wandb").glob(f"offline-run-*-{ids['wandb']}")
    history = (offline / f"run-{ids['wandb']}.wandb").read_bytes()
    assert b"eval.success" in history and b"learner.loss" in history and b"env_steps" in history
    assert b"tests.fakes:CopyEnv" in history  # the config, logged with the run

    # A resume (with a changed actor count) continues both tracker runs; the config is not logged a second time.
    config, _ = config_for_resume(run, ["actor.num_actors=3", "run.max_updates=120"])
    second = train(config, run, "local", resume=run, quiet=True, examples=0)
    assert json.loads((run / "trackers.json").read_text()) == ids
    assert len(client.search_runs([logged.info.experiment_id])) == 1
    resumed = client.get_run(ids["mlflow"])
    assert resumed.info.status == "FINISHED" and resumed.data.params["actor.num_actors"] == "2"
    evals = client.get_metric_history(ids["mlflow"], "eval.success")
    assert max(m.step for m in evals) == second["env_steps"] > first["env_steps"]
    assert len(list((run / "wandb").glob(f"offline-run-*-{ids['wandb']}"))) in (1, 2)  # one per session (or merged)
