"""Joining a cluster: an unreachable address fails within seconds with one line; a missing token is named."""

import socket
import subprocess
import sys
import time

import pytest

from distdqn.config import ClusterConfig
from distdqn.distributed.launcher import ClusterConnectError, check_reachable, init_ray


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket goes


def test_unreachable_address_fails_fast():
    start = time.monotonic()
    with pytest.raises(ClusterConnectError, match="cannot reach the Ray cluster at 127.0.0.1"):
        check_reachable(f"127.0.0.1:{_closed_port()}")
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("address", ["nonsense", "host:", ":6379"])
def test_malformed_address(address):
    with pytest.raises(ClusterConnectError, match="host:port"):
        check_reachable(address)


def test_missing_token_is_explained(monkeypatch, tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
        monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
        # set, not deleted: init_ray sets a missing RAY_AUTH_MODE, and monkeypatch only undoes its own changes (a
        # leaked token mode breaks every later embedded Ray instance in this process)
        monkeypatch.setenv("RAY_AUTH_MODE", "token")
        with pytest.raises(ClusterConnectError, match="ray get-auth-token"):
            init_ray(ClusterConfig(address=f"127.0.0.1:{port}"))


def test_cli_unreachable_address_is_one_line():
    port = _closed_port()
    start = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "distdqn",
            "train",
            "--address",
            f"127.0.0.1:{port}",
            "--max-updates",
            "1",
            "--run-dir",
            "/tmp/distdqn-unreachable-test",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert time.monotonic() - start < 60
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert lines == [
        f"distdqn: error: cannot reach the Ray cluster at 127.0.0.1:{port} (Connection refused); "
        "is the head node running (`ray start --head`) and the port open?"
    ]


class FakeCluster:
    """Stands in for ray.cluster_resources / available_resources: nodes join after `joins_after` polls."""

    def __init__(self, joins_after: int):
        self.polls, self.joins_after = 0, joins_after

    def total(self):
        return {"CPU": 8.0 if self.polls > self.joins_after else 2.0}

    def free(self):
        self.polls += 1
        return self.total()


def test_resource_check_counts_what_can_be_scheduled_now(monkeypatch):
    import distdqn.distributed.launcher as launcher

    monkeypatch.setattr(launcher.ray, "cluster_resources", lambda: {"CPU": 8.0})
    monkeypatch.setattr(launcher.ray, "available_resources", lambda: {"CPU": 1.5})  # the rest is taken
    with pytest.raises(
        ClusterConnectError, match=r"needs 3 CPUs .* can schedule 1.5 CPUs and 0 GPUs now \(of 8 and 0\)"
    ):
        launcher.check_resources(3.0, 0.0, "2 actors x 1 + learner 1 = 3", grace_s=0.05)


def test_resource_check_waits_quietly_for_resources_a_finished_run_hands_back(monkeypatch):
    import distdqn.distributed.launcher as launcher

    frees = [{"CPU": 1.0}, {"CPU": 1.0}]  # the previous run's workers are gone on the 3rd poll
    monkeypatch.setattr(launcher.ray, "cluster_resources", lambda: {"CPU": 8.0})
    monkeypatch.setattr(launcher.ray, "available_resources", lambda: frees.pop(0) if frees else {"CPU": 8.0})
    monkeypatch.setattr(launcher.time, "sleep", lambda s: None)
    said = []
    launcher.check_resources(3.0, 0.0, "...", say=said.append)
    assert said == []
    with pytest.raises(ClusterConnectError, match="can schedule 8 CPUs .* now \\(of 8"):
        launcher.check_resources(16.0, 0.0, "...", say=said.append)  # more than the cluster has: no grace


def test_resource_check_waits_for_an_autoscaling_cluster(monkeypatch):
    import distdqn.distributed.launcher as launcher

    cluster = FakeCluster(joins_after=2)
    monkeypatch.setattr(launcher.ray, "cluster_resources", cluster.total)
    monkeypatch.setattr(launcher.ray, "available_resources", cluster.free)
    said = []
    launcher.check_resources(4.0, 0.0, "...", wait_s=5.0, say=said.append, poll_s=0.01)
    assert cluster.polls == 3 and len(said) == 1 and "waiting up to 5 s" in said[0]
    with pytest.raises(ClusterConnectError, match="cluster.wait_for_resources_s"):
        launcher.check_resources(64.0, 0.0, "...", wait_s=0.05, say=said.append, poll_s=0.01)
