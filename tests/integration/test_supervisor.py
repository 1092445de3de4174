"""One supervisor, two runtimes: budgets, the target stop, evaluation and checkpoint cadence, and stop signals
behave the same on the local runtime and on Ray (each test runs once per runtime)."""

import json
import signal
import threading
import time

import pytest

from distdqn import checkpoint as ck
from distdqn.config import load_config
from distdqn.trainer import build_supervisor
from tests.fakes import SUPERVISED_RUN

pytestmark = pytest.mark.integration

BASE = [
    *SUPERVISED_RUN,
]


def run(runtime, tmp_path, *overrides, during=None):
    """Train a tiny CopyEnv run to its end; (summary, metrics records). `during(supervisor)` runs in a thread."""
    config = load_config(None, [*BASE, f"run.run_dir={tmp_path}", *overrides])
    supervisor = build_supervisor(config, tmp_path, runtime, quiet=True)
    if during is not None:
        threading.Thread(target=during, args=(supervisor,), daemon=True).start()
    try:
        summary = supervisor.run()
    finally:
        supervisor.close()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return summary, records


@pytest.mark.parametrize(
    ("budget", "stop"),
    [
        ("run.max_updates=120", "update budget reached"),
        ("run.max_env_steps=4000", "env-step budget reached"),
        ("run.max_seconds=3", "time budget reached"),
    ],
)
def test_budgets_stop_the_run(runtime, tmp_path, budget, stop):
    summary, _ = run(runtime, tmp_path, budget)
    assert summary["stop_reason"].startswith(stop)
    key, value = budget.split("=")
    field = {"run.max_updates": "updates", "run.max_env_steps": "env_steps", "run.max_seconds": "wall_s"}[key]
    assert summary[field] >= float(value)
    if field == "updates":
        assert summary["updates"] == 120  # both runtimes stop exactly on an update budget (Ray's learner idles there)
    # the final checkpoint holds the run's end
    assert ck.load_counters(tmp_path).updates == summary["updates"] > 0


def test_target_stops_the_run_when_held_out_success_reaches_it(runtime, tmp_path):
    summary, records = run(
        runtime, tmp_path, "run.target_success=0.9", "run.eval_interval_s=0.5", "run.max_seconds=120"
    )
    assert summary["stop_reason"].startswith("target reached")
    assert summary["time_to_target_s"] is not None and summary["final_success"] >= 0.9
    evals = [r for r in records if r["kind"] == "eval"]
    assert evals[-1]["eval.success"] >= 0.9 and all(r["eval.success"] < 0.9 for r in evals[:-1])
    assert summary["env_steps_to_target"] == evals[-1]["env_steps"]


def test_evaluation_and_checkpoint_cadence(runtime, tmp_path):
    # On Ray a checkpoint (the learner's state fetched, the files written) takes ~1 s while the learner goes on, at
    # up to ~200 updates/s on this test's network: 900 updates leave room for 3 periodic ones on a fast machine.
    summary, records = run(
        runtime,
        tmp_path,
        "run.eval_interval_s=0.5",
        "run.max_updates=300" if runtime == "local" else "run.max_updates=900",
        "checkpoint.interval_updates=60",
        "checkpoint.keep_last=20",
    )
    evals = [r for r in records if r["kind"] == "eval"]
    # one per 0.5 s of training plus the final one; the interval counts from the end of the previous evaluation
    # and the supervisor looks every 0.25 s (or after a round of the local runtime), so a loaded machine stretches it
    assert summary["wall_s"] / 1.0 - 1 <= len(evals) <= summary["wall_s"] / 0.5 + 2
    gaps = [b["wall_s"] - a["wall_s"] for a, b in zip(evals[:-2], evals[1:-1], strict=True)]
    assert all(gap >= 0.45 for gap in gaps)
    saved = [r["updates"] for r in records if r["kind"] == "checkpoint"]
    assert saved[-1] == summary["updates"]  # the final checkpoint
    periodic = saved[:-1]
    assert len(periodic) >= 3 and all(b - a >= 60 for a, b in zip(periodic, periodic[1:], strict=False))
    if runtime == "local":
        assert periodic == list(range(60, 60 * len(periodic) + 1, 60))  # it stops exactly where one is due
    assert len(ck.list_checkpoints(tmp_path / "checkpoints")) == len(set(saved))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_checkpoints_then_stops(runtime, tmp_path, signum):
    def interrupt(supervisor):
        while supervisor.tracker.counters.updates < 40:
            time.sleep(0.05)
        signal.raise_signal(signum)

    before = signal.getsignal(signum)
    summary, records = run(runtime, tmp_path, "run.max_updates=1000000", during=interrupt)
    assert summary["stop_reason"] == f"interrupted ({signal.Signals(signum).name})"
    assert summary["updates"] >= 40 and summary["final_success"] is not None
    assert records[-1]["kind"] == "checkpoint"
    assert ck.load_counters(tmp_path).updates == summary["updates"]
    assert signal.getsignal(signum) == before  # the supervisor's handlers are gone after the run
