"""Operating a running job: `distdqn status` reads what the run publishes (live and finished), `distdqn scale`
changes its actor count while it trains (2 -> 4 -> 1, on Ray and in one process), and SIGTERM / SIGINT to a real
`distdqn train` process write a final checkpoint and exit 0; a second signal exits at once."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from distdqn import checkpoint as ck
from distdqn import control
from distdqn.cli import main
from distdqn.config import load_config
from distdqn.exploration import epsilon_ladder
from distdqn.trainer import build_supervisor
from tests.fakes import SUPERVISED_RUN

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

BASE = [
    *SUPERVISED_RUN,
    "actor.eps_decay_steps=0",  # epsilons sit on the ladder from the start
]


def wait_for(predicate, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_scale_up_and_down_while_training(runtime, tmp_path, capsys):
    config = load_config(None, [*BASE, f"run.run_dir={tmp_path}", "actor.num_actors=2", "run.max_updates=1000000"])
    supervisor = build_supervisor(config, tmp_path, runtime, quiet=True)
    seen = {}

    def operate():
        try:
            if runtime == "ray":  # more actors than the Ray instance's 4 CPUs hold: refused, and nothing changes
                wait_for(lambda: running_with_updates(tmp_path, 30), what="training")
                assert main(["scale", str(tmp_path), "--actors", "40", "--wait", "60"]) == 2
                seen["refused"] = control.read_status(tmp_path)
            for n in (4, 1):
                before = wait_for(lambda: running_with_updates(tmp_path, 30), what="training")
                assert main(["scale", str(tmp_path), "--actors", str(n), "--wait", "120"]) == 0
                after = wait_for(
                    lambda b=before: (
                        (s := control.read_status(tmp_path))["inserted"] > b["inserted"] + 500
                        and s["updates"] > b["updates"] + 50
                        and s
                    ),
                    what="progress after scaling",
                )
                seen[n] = after
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # stop the run (checkpoint, then stop)

    thread = threading.Thread(target=operate, daemon=True)
    thread.start()
    try:
        summary = supervisor.run()
    finally:
        supervisor.close()
    thread.join(timeout=10)
    if runtime == "ray":
        refused = seen.pop("refused")
        assert refused["actors_target"] == 2 and "need 19 more CPUs" in refused["control_refused"]
        assert "the run refused 40 actors" in capsys.readouterr().err
    assert set(seen) == {4, 1}, seen
    for n, status in seen.items():
        assert status["actors_alive"] == status["actors_target"] == n
        ladder = sorted(epsilon_ladder(i, n, config.actor.eps_base, config.actor.eps_alpha) for i in range(n))
        assert sorted(status["epsilons"].values()) == pytest.approx(ladder, abs=1e-6)
    assert summary["stop_reason"] == "interrupted (SIGINT)"
    assert ck.saved_config(ck.find_checkpoint(tmp_path)).actor.num_actors == 1  # a resume keeps the new count
    final = control.read_status(tmp_path)
    assert final["state"] == "finished" and not final["live"] and final["updates"] == summary["updates"]
    assert final["actors_alive"] == 0 and final["actors_target"] == 1  # the run is over: no actor lives


def test_status_of_a_finished_run_and_errors(tmp_path, capsys):
    config = load_config(None, [*BASE, f"run.run_dir={tmp_path}", "run.max_updates=60"])
    supervisor = build_supervisor(config, tmp_path, "local", quiet=True)
    try:
        summary = supervisor.run()
    finally:
        supervisor.close()
    assert main(["status", str(tmp_path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"] == "finished" and status["live"] is False
    assert status["updates"] == summary["updates"] and status["last_checkpoint"]
    assert main(["status", str(tmp_path)]) == 0
    assert "state      finished" in capsys.readouterr().out
    assert main(["scale", str(tmp_path), "--actors", "3"]) == 2  # not running: one line, no request written
    assert "not running" in capsys.readouterr().err
    assert main(["status", str(tmp_path / "nope")]) == 2


def start_training(run_dir: Path, *extra: str, local: bool = True) -> subprocess.Popen:
    args = [sys.executable, "-m", "distdqn", "train", *(["--local"] if local else []), "--quiet", "--examples", "0"]
    args += ["--run-dir", str(run_dir), *BASE, "run.max_updates=10000000", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def running_with_updates(run_dir: Path, n: int):
    try:
        status = control.read_status(run_dir)
    except (FileNotFoundError, ValueError):
        return None
    return status["state"] == "running" and status["updates"] >= n and status


@pytest.mark.parametrize(("signum", "local"), [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_stop_signal_to_a_real_process_checkpoints_and_exits_0(tmp_path, signum, local):
    proc = start_training(tmp_path, local=local)
    try:
        wait_for(lambda: running_with_updates(tmp_path, 40), timeout=180, what="a running job")
        signalled = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    took = time.monotonic() - signalled
    assert proc.returncode == 0, err
    assert took < 60  # bounded: the queued work lands, one evaluation, one checkpoint
    status = control.read_status(tmp_path)
    assert status["stop_reason"] == f"interrupted ({signal.Signals(signum).name})"
    assert ck.load_counters(tmp_path).updates == status["updates"] >= 40


def test_second_signal_exits_at_once_and_leaves_no_partial_checkpoint(tmp_path):
    proc = start_training(tmp_path, "checkpoint.include_replay=true", local=False)
    try:
        wait_for(lambda: running_with_updates(tmp_path, 40), timeout=180, what="a running job")
        proc.send_signal(signal.SIGTERM)
        # the second one while the run stops (the Ray runtime lets its queued slices land first: about a second)
        wait_for(lambda: control.read_status(tmp_path)["state"] == "stopping", timeout=30, what="stopping")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "second signal" in err
    checkpoints = tmp_path / "checkpoints"
    assert not list(checkpoints.glob(".tmp-*")) if checkpoints.exists() else True
    for complete in ck.list_checkpoints(checkpoints):
        ck.load_learner_state(complete)  # whatever is there is complete and readable
