"""The `distdqn` command end to end in local mode (no Ray): train with budgets and --json, eval and generate from
the run directory, resume with a different actor count, and clear one-line errors for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import COPY_RUN

REPO = Path(__file__).resolve().parents[2]
COPY = [
    *COPY_RUN,
    "run.eval_interval_s=2",
]


def distdqn(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "distdqn", *args], capture_output=True, text=True, env=env, timeout=300, cwd=REPO
    )
    if check and out.returncode != 0:
        raise AssertionError(f"distdqn {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def test_train_eval_generate_resume(tmp_path):
    run = tmp_path / "run"
    trained = distdqn(
        "train",
        "--local",
        "--quiet",
        "--run-dir",
        str(run),
        "--max-updates",
        "150",
        "--actors",
        "2",
        "--json",
        str(tmp_path / "train.json"),
        "--examples",
        "2",
        *COPY,
    )
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["updates"] >= 150 and summary["env_steps"] > 0 and summary["wall_s"] > 0
    assert summary["final_success"] is not None
    # the generations shown are from the evaluation the final success comes from
    header = f"held-out generations (greedy; the evaluation at {summary['updates']:,} updates, success "
    assert header + f"{summary['final_success']:.3f})" in trained.stdout, trained.stdout
    assert len([line for line in trained.stdout.splitlines() if " -> " in line]) == 2
    assert (run / "config.yaml").is_file() and (run / "metrics.jsonl").is_file()
    assert any((run / "tb").iterdir())  # TensorBoard event file
    assert (run / "checkpoints" / "latest").is_file()

    distdqn("eval", str(run), "--episodes", "64", "--json", str(tmp_path / "eval.json"))
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation["episodes"] == 64 and 0.0 <= evaluation["final_success"] <= 1.0

    generated = distdqn("generate", str(run), "--episodes", "4")
    assert generated.stdout.count("copy ") >= 4  # prompts printed with their generations

    # budgets count the whole run: resuming with the budget already spent says so instead of stopping at once
    spent = distdqn("train", "--local", "--resume", str(run), "--max-updates", "150", check=False)
    assert spent.returncode == 2 and "nothing to resume" in spent.stderr and "update budget reached" in spent.stderr
    # a new run into a directory that holds one is refused, and the run's files stay as they were
    config = (run / "config.yaml").read_text()
    again = distdqn("train", "--local", "--run-dir", str(run), "--max-updates", "10", *COPY, check=False)
    assert again.returncode == 2 and f"continue it with `--resume {run}`" in again.stderr
    assert (run / "config.yaml").read_text() == config

    # resume with more actors and a larger update budget: counters continue
    distdqn(
        "train",
        "--local",
        "--quiet",
        "--resume",
        str(run),
        "--actors",
        "3",
        "--max-updates",
        "250",
        "--json",
        str(tmp_path / "resumed.json"),
        "--examples",
        "0",
    )
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["updates"] >= 250
    assert resumed["env_steps"] > summary["env_steps"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["updates"] >= 250


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--local", "learner.lrr=1"], "unknown key 'learner.lrr' (did you mean 'learner.lr'?)"),
        (["train", "--local", "--task", "keywrd"], "unknown task 'keywrd' (did you mean 'keyword'?)"),
        (["eval", "/nonexistent/run"], "no such run directory or checkpoint"),
        (["train", "--local", "--task", "arithmetic", "env.options={num_digits: 9}"], "num_digits"),
    ],
)
def test_bad_input_is_one_clear_error(args, message):
    out = (
        distdqn(*args, "--run-dir", "/tmp/distdqn-bad-input", check=False)
        if args[0] == "train"
        else distdqn(*args, check=False)
    )
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_show_config_applies_overrides():
    out = distdqn("show-config", "-c", "configs/keyword_easy.yaml", "actor.n_step=5")
    assert "n_step: 5" in out.stdout and "task: keyword" in out.stdout


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("distdqn:")]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_failure_paths_end_with_one_line(tmp_path):
    """A run directory that cannot be created, a task that raises mid-run, and a checkpoint whose state.json is
    corrupt or of the wrong shape: each ends with one line naming the cause, never a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    line = one_line_error(distdqn("train", "--local", "--run-dir", str(blocker / "run"), *COPY, check=False))
    assert "NotADirectoryError" in line or "Not a directory" in line

    run = tmp_path / "flaky"
    out = distdqn(
        "train", "--local", "--quiet", "--run-dir", str(run), *COPY, "env.task=tests.fakes:FlakyCopyEnv",
        "env.options={fail_after_steps: 40}", "--examples", "0", "--json", str(tmp_path / "flaky.json"), check=False,
    )  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    summary = json.loads((tmp_path / "flaky.json").read_text())
    assert summary["stop_reason"] == "failed: RuntimeError: flaky task: step 41 fails on purpose"
    state = json.loads(next((run / "checkpoints").glob("0*/state.json")).read_text())  # the final checkpoint
    assert state["counters"]["updates"] == summary["updates"]

    checkpoint = next((run / "checkpoints").glob("0*"))
    (checkpoint / "state.json").write_text('{"format": 1, "counters": {"updates": "x", "nonsense": 1}}')
    line = one_line_error(distdqn("train", "--local", "--resume", str(run), check=False))
    assert "state.json" in line and "wrong shape" in line
    (checkpoint / "state.json").write_text("{not json")
    for command in (["train", "--local", "--resume", str(run)], ["eval", str(run)], ["generate", str(run)]):
        line = one_line_error(distdqn(*command, check=False))
        assert "state.json: corrupt JSON" in line
