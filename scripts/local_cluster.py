"""A real multi-node Ray cluster on loopback: one head and N worker nodes, each its own `ray start` process tree.

For tests and for trying the cluster paths (`distdqn train --address`, `ray job submit`) on one machine:

    python scripts/local_cluster.py start --dir /tmp/lc --workers 1 --num-cpus 1   # prints the addresses
    python scripts/local_cluster.py stop --dir /tmp/lc

    with LocalCluster(workers=1, num_cpus=1) as cluster:   # in Python (tests)
        cluster.address, cluster.dashboard_url, cluster.env

Every node gets its own ports (no clash with another cluster on the machine, nor with the defaults 6379/8265), a
custom resource naming it (`node:head`, `node:worker1`, ... as `{"lc_head": 1}`, `{"lc_worker1": 1}`), and token
authentication with a token file in the cluster's directory (HOME points there too, so ~/.ray is never touched).

Stopping never uses Ray's own stop command (it kills every Ray process of the user, other clusters included): each node is
started as `ray start --block` in a new session, and every process the cluster spawned carries an environment
marker (LOCAL_CLUSTER_ID) that its children inherit, so `stop` signals exactly those processes, by PID (SIGTERM,
then SIGKILL after a grace period), and checks that none is left.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

MARKER = "LOCAL_CLUSTER_ID"
NODE_MARKER = "LOCAL_CLUSTER_NODE"  # which node a process belongs to (its raylet's workers inherit it)
STATE_FILE = "cluster.json"


def _ray_bin() -> str:
    """The `ray` next to this Python (the venv's), so start and client use one installation."""
    here = Path(sys.executable).parent / "ray"
    return str(here) if here.exists() else "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ports(*names: str) -> list[str]:
    """`--name=PORT` for each name, each a port that was free a moment ago (Ray's defaults would clash)."""
    return [f"--{name}={_free_port()}" for name in names]


def marked_pids(cluster_id: str, node: str | None = None) -> list[int]:
    """PIDs of this user's processes whose environment carries `LOCAL_CLUSTER_ID=cluster_id` (and, with `node`,
    `LOCAL_CLUSTER_NODE=node`)."""
    needle = f"{MARKER}={cluster_id}".encode()
    node_needle = f"{NODE_MARKER}={node}".encode() if node else None
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if needle in environ and (node_needle is None or node_needle in environ):
                pids.append(int(entry.name))
        except OSError:  # gone, or another user's process
            continue
    return sorted(pids)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited (its parent has not reaped it yet)


@dataclass
class ClusterState:
    """What `stop` needs, saved in DIR/cluster.json by `start`."""

    cluster_id: str
    directory: str
    address: str  # GCS address: `distdqn train --address` / ray.init(address=...)
    dashboard_url: str  # job server: `ray job submit --address`
    node_pids: list[int] = field(default_factory=list)  # the `ray start --block` processes, head first
    node_names: list[str] = field(default_factory=list)


class LocalCluster:
    """Start a head and `workers` worker nodes on 127.0.0.1; `stop()` ends every process they started.

    `num_cpus`: logical CPUs per node (an int for all nodes, or a list, head first). `env`: extra environment for
    every node (e.g. PYTHONPATH so the workers import the code under test, as an installed package would be).
    """

    def __init__(
        self,
        workers: int = 1,
        num_cpus: int | list[int] = 1,
        directory: str | Path | None = None,
        env: dict[str, str] | None = None,
        dashboard_port: int | None = None,
        start_timeout_s: float = 180.0,
        start_attempts: int = 2,
    ):
        self.num_nodes = workers + 1
        cpus = num_cpus if isinstance(num_cpus, list) else [num_cpus] * self.num_nodes
        if len(cpus) != self.num_nodes:
            raise ValueError(f"num_cpus has {len(cpus)} entries for {self.num_nodes} nodes (head + {workers})")
        self.cpus = cpus
        # short: Ray's socket paths (DIR/session_*/sockets/...) must stay under ~107 characters
        self.own_directory = directory is None  # made here: removed by stop()
        self.directory = Path(directory or tempfile.mkdtemp(prefix="lc-", dir="/tmp")).resolve()
        self.extra_env = dict(env or {})
        self.dashboard_port = dashboard_port
        self.start_timeout_s = start_timeout_s
        self.start_attempts = start_attempts
        self.state: ClusterState | None = None

    # ---- the environment every node and client of this cluster shares ----------------------------------------
    @property
    def token_path(self) -> Path:
        return self.directory / "home" / ".ray" / "auth_token"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client of this cluster (`distdqn train --address`, `ray job submit`): token auth with
        this cluster's token, HOME in the cluster directory (never the user's ~/.ray)."""
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
        env.update(
            HOME=str(self.directory / "home"),
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(self.token_path),
            RAY_USAGE_STATS_ENABLED="0",
        )
        return env

    @property
    def address(self) -> str:
        assert self.state, "cluster not started"
        return self.state.address

    @property
    def dashboard_url(self) -> str:
        assert self.state, "cluster not started"
        return self.state.dashboard_url

    # ---- start / stop ----------------------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        """Start the nodes and wait until all are alive. A start whose nodes are not all alive in time is stopped and
        tried again on fresh ports (a port picked free can be taken before Ray binds it), up to `start_attempts`."""
        for attempt in range(1, self.start_attempts + 1):
            try:
                return self._start_once()
            except TimeoutError as e:
                if attempt == self.start_attempts:
                    self.stop()
                    raise
                print(f"local cluster: start {attempt} of {self.start_attempts} failed, retrying: {e}", file=sys.stderr)
        raise AssertionError("unreachable")

    def _start_once(self) -> LocalCluster:
        (self.directory / "home").mkdir(parents=True, exist_ok=True)
        cluster_id = uuid.uuid4().hex[:12]
        env = self.env | self.extra_env | {MARKER: cluster_id}
        # `--generate` writes the default path, HOME/.ray/auth_token (here: inside the cluster directory)
        gen_env = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN_PATH"}
        subprocess.run(
            [_ray_bin(), "get-auth-token", "--generate"], env=gen_env, check=True, capture_output=True, timeout=60
        )
        gcs_port = _free_port()
        dash_port = self.dashboard_port or _free_port()
        self.state = ClusterState(
            cluster_id, str(self.directory), f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dash_port}"
        )
        try:
            head = [
                "--head",
                f"--port={gcs_port}",
                f"--temp-dir={self.directory / 'ray'}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dash_port}",
                *_ports("ray-client-server-port"),
            ]
            self._start_node("head", head, env, 0)
            for i in range(1, self.num_nodes):
                self._start_node(f"worker{i}", [f"--address={self.state.address}"], env, i)
            self._wait_for_nodes(env)
        except TimeoutError:
            stop_cluster(self.state)  # the directory stays: a retry reuses it, stop() removes it
            self.state = None
            raise
        except BaseException:
            self.stop()
            raise
        (self.directory / STATE_FILE).write_text(json.dumps(asdict(self.state), indent=1))
        return self

    def _start_node(self, name: str, role_args: list[str], env: dict[str, str], index: int) -> None:
        assert self.state
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 (the node's process keeps it open)
        cmd = [
            _ray_bin(),
            "start",
            *role_args,
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.cpus[index]}",
            "--num-gpus=0",
            f"--resources={json.dumps({f'lc_{name}': 1})}",
            "--min-worker-port=0",
            "--max-worker-port=0",
            "--disable-usage-stats",
            *_ports(
                "node-manager-port",
                "object-manager-port",
                "metrics-export-port",
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "runtime-env-agent-port",
            ),
        ]
        # a new session: the node's processes are not in the caller's process group (a ^C there is not theirs)
        env = env | {NODE_MARKER: name}
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.state.node_pids.append(proc.pid)
        self.state.node_names.append(name)

    def _wait_for_nodes(self, env: dict[str, str]) -> None:
        """Until the GCS reports every node alive. A node whose `ray start` exits is reported at once with its log;
        a timeout names how many nodes were alive and ends with each node's log."""
        assert self.state
        # one client polls (a connection per poll costs seconds on a busy machine) and prints the alive count
        probe = (
            "import sys, time, ray\n"
            f"ray.init(address={self.state.address!r}, logging_level='ERROR', log_to_driver=False)\n"
            "alive = -1\n"
            f"while alive < {self.num_nodes}:\n"
            "    now = sum(n['Alive'] for n in ray.nodes())\n"
            "    if now != alive: alive = now; print(alive, flush=True)\n"
            "    time.sleep(0.5)\n"
        )
        deadline = time.monotonic() + self.start_timeout_s
        alive = "unknown (the probe had not connected to the head)"
        while True:
            with tempfile.TemporaryFile("w+") as out:
                client = subprocess.Popen([sys.executable, "-c", probe], env=env, stdout=out, stderr=subprocess.STDOUT)
                try:
                    while client.poll() is None and time.monotonic() < deadline:
                        self._check_nodes_running()
                        time.sleep(0.5)
                finally:
                    if client.poll() is None:
                        client.kill()
                    client.wait()
                out.seek(0)
                printed = out.read()
            counts = [line for line in printed.split() if line.isdigit()]
            if counts:
                alive = counts[-1]
            if client.returncode == 0:
                return
            if time.monotonic() >= deadline:
                self._check_nodes_running()
                raise TimeoutError(
                    f"{self.num_nodes} nodes not alive within {self.start_timeout_s:g}s (alive: {alive}); "
                    f"the last probe printed: {printed[-1000:]!r}\n{self._logs_tail()}"
                )
            time.sleep(1.0)  # the head's GCS was not up yet: the probe could not connect

    def _logs_tail(self, chars: int = 1500) -> str:
        """The end of each node's `ray start` log and of the raylet logs under the cluster's directory."""
        assert self.state
        files = [self.directory / f"{name}.log" for name in self.state.node_names]
        files += sorted((self.directory / "ray").glob("session_*/logs/raylet*.out"))
        parts = []
        for path in files:
            if path.is_file():
                parts.append(f"--- {path} ---\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def _check_nodes_running(self) -> None:
        assert self.state
        for pid, name in zip(self.state.node_pids, self.state.node_names, strict=True):
            if not _alive(pid):
                log = (self.directory / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"`ray start` of node {name} exited; its log ends:\n{log}")

    def kill_node(self, name: str) -> list[int]:
        """SIGKILL every process of node `name` (e.g. "worker1"): what losing a machine looks like to Ray."""
        assert self.state
        pids = marked_pids(self.state.cluster_id, node=name)
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        _wait_gone(pids, 10.0)
        return pids

    def stop(self, grace_s: float = 15.0) -> None:
        """End every process of this cluster, by PID: SIGTERM (Ray's own graceful shutdown), then SIGKILL."""
        if self.state is not None:
            stop_cluster(self.state, grace_s)
        if self.own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_cluster(state: ClusterState, grace_s: float = 15.0) -> None:
    """SIGTERM the `ray start --block` processes (each shuts its node down), then SIGTERM and finally SIGKILL every
    process still carrying the cluster's marker; raise if any survives."""
    # worker nodes first: a head going away first makes the workers' raylets log connection errors for a while
    for pid in reversed(state.node_pids):
        _signal(pid, signal.SIGTERM)
    _wait_gone(state.node_pids, grace_s)
    left = marked_pids(state.cluster_id)
    for pid in left:
        _signal(pid, signal.SIGTERM)
    _wait_gone(left, 5.0)
    for pid in marked_pids(state.cluster_id) + state.node_pids:
        _signal(pid, signal.SIGKILL)
    _wait_gone(marked_pids(state.cluster_id), 5.0)
    survivors = [p for p in marked_pids(state.cluster_id) if _alive(p)]
    if survivors:
        raise RuntimeError(f"processes of local cluster {state.cluster_id} still alive: {survivors}")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pids: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a head and worker nodes; print the addresses and the env to use")
    start.add_argument("--dir", required=True, help="the cluster's directory (token, logs, state); short path")
    start.add_argument("--workers", type=int, default=1, help="worker nodes besides the head")
    start.add_argument("--num-cpus", type=int, nargs="+", default=[1], help="CPUs per node (one value, or head first)")
    start.add_argument("--dashboard-port", type=int, help="job server port (default: a free port, not 8265)")
    start.add_argument("--pythonpath", help="PYTHONPATH for the nodes (e.g. the repository, for tests.fakes)")
    stop = sub.add_parser("stop", help="stop every process the cluster in DIR started")
    stop.add_argument("--dir", required=True)
    args = parser.parse_args(argv)

    if args.command == "start":
        cpus = args.num_cpus[0] if len(args.num_cpus) == 1 else args.num_cpus
        env = {"PYTHONPATH": args.pythonpath} if args.pythonpath else {}
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        cluster = LocalCluster(args.workers, cpus, args.dir, env, args.dashboard_port).start()
        print(f"head (GCS) address: {cluster.address}\njob server:         {cluster.dashboard_url}")
        print("client environment:")
        for key in ("HOME", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):
            print(f"  export {key}={cluster.env[key]}")
        print(f"stop with: {sys.executable} {__file__} stop --dir {args.dir}")
        return 0
    path = Path(args.dir) / STATE_FILE
    if not path.is_file():
        print(f"no cluster state in {path}", file=sys.stderr)
        return 2
    stop_cluster(ClusterState(**json.loads(path.read_text())))
    path.unlink()
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
