"""A real two-node Ray cluster (head + worker, separate `ray start` processes on loopback, token auth with the
cluster's own token): `distdqn train --address` from a node, `cluster/submit.sh` from a clean clone, and the resume
of a submitted run. Each run must have placed its workers on both nodes; nothing of the cluster is left afterwards."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("local_cluster", REPO / "scripts" / "local_cluster.py")
local_cluster = sys.modules["local_cluster"] = importlib.util.module_from_spec(_spec)  # (dataclasses look it up)
_spec.loader.exec_module(local_cluster)

TRAIN = [
    "--task",
    "tests.fakes:CopyEnv",
    "env.options={held_out: false}",
    "env.envs_per_actor=16",
    "network.embed_dim=16",
    "network.hidden_dim=32",
    "replay.capacity=4000",
    "replay.min_size_to_sample=256",
    "learner.lr=3e-3",
    "run.eval_episodes=64",
    "--actors",
    "2",
    "--quiet",
    "--examples",
    "0",
    # 2 x 0.5 + 0.5 + 1 shard x 0.25 = 1.75 CPUs: more than one node has (1 CPU each), so the run must span both
    "cluster.actor_num_cpus=0.5",
    "cluster.learner_num_cpus=0.5",
]

# which nodes each job's actors ran on, from Ray's state API (the dashboard of the head)
NODES_BY_JOB = """
import json, sys
from collections import defaultdict
from ray.util.state import list_actors
nodes = defaultdict(set)
for a in list_actors(address=sys.argv[1], detail=True, limit=10000, raise_on_missing_output=False):
    if a.class_name in ("ActorWorker", "LearnerWorker", "ReplayShardWorker") and a.node_id:
        nodes[a.job_id].add(a.node_id)
print(json.dumps({job: sorted(ids) for job, ids in nodes.items()}))
"""


@pytest.fixture(scope="module")
def cluster():
    # PYTHONPATH on the nodes plays the role of distdqn installed on every node (the `--address` path needs it);
    # submitted jobs bring their own code (working_dir), which Ray puts first on the path. The venv is not on the
    # nodes' PATH (as when Ray is started as `.venv/bin/ray start`): jobs must name the cluster's Python.
    venv_bin = Path(sys.executable).parent
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p) != venv_bin)
    c = local_cluster.LocalCluster(workers=1, num_cpus=1, env={"PYTHONPATH": str(REPO), "PATH": path})
    c.start()
    yield c
    c.stop()
    assert local_cluster.marked_pids(c.state.cluster_id) == [], "processes of the test cluster left running"


def nodes_by_job(cluster) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", NODES_BY_JOB, cluster.dashboard_url],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def assert_new_job_spanned_nodes(cluster, before: dict[str, list[str]]) -> None:
    after = nodes_by_job(cluster)
    new = {job: nodes for job, nodes in after.items() if job not in before}
    assert len(new) == 1, f"expected one new job with distdqn workers, got {new}"
    (nodes,) = new.values()
    assert len(nodes) == 2, f"the run's workers all ran on one node: {nodes}"


def run(cmd, cluster, cwd, timeout=300, **env):
    out = subprocess.run(
        cmd, cwd=cwd, env=cluster.env | env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert out.returncode == 0, f"{cmd[:4]} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


def test_train_address_on_a_cluster_node(cluster, tmp_path):
    before = nodes_by_job(cluster)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "distdqn", "train", *TRAIN, "--max-updates", "200"]
    cmd += ["--address", cluster.address, "--run-dir", str(run_dir), "--json", str(run_dir / "summary.json")]
    run(cmd, cluster, tmp_path, PYTHONPATH=str(REPO))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["updates"] >= 200 and summary["stop_reason"].startswith("update budget")
    assert_new_job_spanned_nodes(cluster, before)


def read_status(run_dir: Path) -> dict:
    from distdqn import control

    try:
        return control.read_status(run_dir)
    except (FileNotFoundError, ValueError):
        return {}


def test_submit_from_clean_clone_stop_with_ray_job_stop_then_resume(cluster, tmp_path):
    """The submitted-job life cycle: submit from a fresh clone, preempt it with `ray job stop` (SIGTERM, then
    SIGKILL after RAY_JOB_STOP_WAIT_TIME_S) once it has trained, and resume it as a second submitted job."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    assert not (clone / ".venv").exists()
    submit = ["bash", str(clone / "cluster" / "submit.sh"), cluster.dashboard_url, "--python", sys.executable]
    run_dir = tmp_path / "runs" / "submitted"  # absolute, outside the job's working directory
    client = {"PYTHON": sys.executable}  # the submitting machine's Python (with ray); not the cluster's

    before = nodes_by_job(cluster)
    train = [*TRAIN, "--max-updates", "100000", "--run-dir", str(run_dir), "--json", str(run_dir / "summary.json")]
    run([*submit, "--no-wait", "--submission-id", "first", "--", *train], cluster, tmp_path, **client)
    ray_cli = [str(Path(sys.executable).parent / "ray"), "job"]
    address = ["--address", cluster.dashboard_url]
    deadline = time.monotonic() + 240
    while read_status(run_dir).get("updates", 0) < 100:
        if time.monotonic() > deadline:  # what the job said, to tell a slow start from a stuck or failed one
            logs = subprocess.run([*ray_cli, "logs", *address, "first"], env=cluster.env, capture_output=True,
                                  text=True, timeout=60)  # fmt: skip
            pytest.fail(f"the submitted run did not train: {read_status(run_dir)}\n{logs.stdout[-4000:]}{logs.stderr}")
        time.sleep(0.5)
    run([*ray_cli, "stop", *address, "first"], cluster, tmp_path, timeout=180)  # waits until the job has ended
    assert "was stopped" in run([*ray_cli, "status", *address, "first"], cluster, tmp_path).stdout  # STOPPED
    first = json.loads((run_dir / "summary.json").read_text())  # the run stopped itself: summary, final checkpoint
    assert first["run_dir"] == str(run_dir) and first["stop_reason"] == "interrupted (SIGTERM)", first
    assert first["updates"] >= 100 and (run_dir / "checkpoints" / "latest").exists()
    assert_new_job_spanned_nodes(cluster, before)

    before = nodes_by_job(cluster)
    budget = first["updates"] + 200
    resume = ["--resume", str(run_dir), "--max-updates", str(budget), "--quiet", "--examples", "0"]
    resume += ["--json", str(run_dir / "resumed.json")]
    out = run([*submit, "--", *resume], cluster, tmp_path, **client)
    assert "SUCCEEDED" in out.stdout
    resumed = json.loads((run_dir / "resumed.json").read_text())
    assert resumed["run_dir"] == str(run_dir)
    assert resumed["updates"] >= budget, resumed  # counted on from the stopped run's checkpoint
    assert_new_job_spanned_nodes(cluster, before)


def test_losing_a_node_moves_its_workers_to_the_rest(cluster, tmp_path):
    """Every process of the worker node is killed mid-run (what losing a machine looks like): its actors (and the
    shard or learner when they were there) are rebuilt on the head, and training goes on. Runs last: the node stays
    dead."""

    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "distdqn", "train", *TRAIN, "--max-updates", "100000", "--run-dir", str(run_dir)]
    # everything fits on the head alone once the worker node is gone (0.25 x 2 + 0.25 + 0.25 <= 1 CPU)
    cmd += ["--address", cluster.address, "cluster.actor_num_cpus=0.25", "cluster.learner_num_cpus=0.25"]
    cmd += ["cluster.call_timeout_s=20", "checkpoint.interval_updates=50"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=cluster.env | {"PYTHONPATH": str(REPO)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip

    def status():
        return read_status(run_dir)

    def wait_until(predicate, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(s := status()):
                return s
            assert proc.poll() is None, proc.communicate()[0][-4000:]
            time.sleep(0.5)
        raise AssertionError(f"timed out; last status {status()}")

    try:
        before = wait_until(lambda s: s.get("state") == "running" and s.get("updates", 0) >= 60, 240)
        assert len(before["actors_by_node"]) == 2, before["actors_by_node"]  # spread over both nodes
        assert cluster.kill_node("worker1")
        after = wait_until(
            lambda s: sum(s["restarts"].values()) >= 1 and s["updates"] >= before["updates"] + 150
            and s["actors_alive"] == 2 and len(s["actors_by_node"]) == 1,
            240,
        )  # fmt: skip
        assert after["inserted"] > before["inserted"]
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output[-4000:]
    finally:
        proc.kill()


def test_a_cluster_not_up_in_time_is_retried_then_named_with_its_logs(tmp_path, capfd):
    """A start whose nodes are not all alive in time is stopped and tried again; the last failure says how many
    nodes were alive and ends with the nodes' logs, and nothing of either try is left running or on disk."""
    c = local_cluster.LocalCluster(workers=1, num_cpus=1, start_timeout_s=0.1, start_attempts=2)
    ids = []
    stop_cluster = local_cluster.stop_cluster

    def recording_stop(state, *args):
        ids.append(state.cluster_id)
        stop_cluster(state, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(local_cluster, "stop_cluster", recording_stop)
        with pytest.raises(TimeoutError, match=r"2 nodes not alive within 0.1s \(alive: .*\)[\s\S]*head\.log"):
            c.start()
    assert len(set(ids)) == 2, f"expected two tries, each stopped: {ids}"
    assert "start 1 of 2 failed, retrying" in capfd.readouterr().err
    assert all(local_cluster.marked_pids(i) == [] for i in ids)
    assert not c.directory.exists()
