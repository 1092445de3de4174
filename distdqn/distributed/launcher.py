"""Starting or joining Ray: a fresh embedded local instance by default, an existing cluster by address.

This module and its siblings in `distdqn/distributed/` are the only code that imports Ray.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from pathlib import Path

import ray

from distdqn.config import ClusterConfig


class ClusterConnectError(ConnectionError):
    """Ray could not be reached or started; the message is one line a user can act on."""


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return Path(path).is_file()
    return (Path.home() / ".ray" / "auth_token").is_file()


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Fail within seconds, not after a long hang, when host:port does not answer."""
    if address in ("auto", "local") or address.startswith(("ray://", "anyscale://")):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterConnectError(
            f"cluster address {address!r} must look like host:port (e.g. 10.0.0.1:6379) or 'auto'"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise ClusterConnectError(
            f"cannot reach the Ray cluster at {address} ({e.strerror or e}); "
            "is the head node running (`ray start --head`) and the port open?"
        ) from None


def init_ray(cluster: ClusterConfig, runtime_env: dict | None = None, cpus_needed: float = 0.0) -> bool:
    """Start or join Ray; True when this call started the instance (and so must shut it down).

    No address (neither `cluster.address` nor RAY_ADDRESS) means a fresh embedded instance, never an instance that
    happens to run on the machine (`address="local"`), with `cluster.num_cpus` logical CPUs (default: this machine's
    count, raised to `cpus_needed` so the topology fits; Ray CPUs are scheduling tokens, the OS shares the cores).

    Joining by address (host:port of the head's GCS, or 'auto') makes this process a Ray driver: it must run on a
    node of the cluster (a machine where `ray start` runs); from elsewhere, submit the run as a Ray job
    (cluster/submit.sh). Joining uses Ray's token authentication (Ray 2.52+; Ray 2.59 turned it on by default for
    local clusters, 2.61 for all clusters): RAY_AUTH_MODE=token unless set, and the token from RAY_AUTH_TOKEN,
    RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (as printed by `ray get-auth-token` on the head node).
    """
    if ray.is_initialized():
        return False
    address = cluster.address or os.environ.get("RAY_ADDRESS", "")
    if not address:
        # Ray turns token authentication on for a new local instance (Ray 2.59+) and warns on every start that it
        # did; it stays on, the warning is Ray's news, not the run's
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        num_cpus = cluster.num_cpus or max(os.cpu_count() or 1, math.ceil(cpus_needed))
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            runtime_env=runtime_env,
            logging_level="WARNING",
            configure_logging=True,
        )
        return True
    check_reachable(address)
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    if os.environ["RAY_AUTH_MODE"] == "token" and not _token_available():
        raise ClusterConnectError(
            "joining a Ray cluster needs its auth token: run `ray get-auth-token` on the head "
            "node and set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH), or set RAY_AUTH_MODE=disabled "
            "for a cluster started without authentication"
        )
    try:
        ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING")
    except (ConnectionError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ClusterConnectError(
            f"cannot join the Ray cluster at {address}: {first} (`--address` works on a node of the cluster; "
            "from another machine submit a Ray job: cluster/submit.sh)"
        ) from None
    return False


def cluster_has_gpu() -> bool:
    return ray.cluster_resources().get("GPU", 0) >= 1


RELEASE_GRACE_S = 15.0  # how long a shortfall that the cluster's total covers may last before it is an error


def check_resources(
    cpus_needed: float,
    gpus_needed: float,
    breakdown: str,
    wait_s: float = 0.0,
    say=print,
    poll_s: float = 5.0,
    grace_s: float = RELEASE_GRACE_S,
) -> None:
    """Check that the cluster can schedule the topology now (its available CPUs and GPUs, not only its total),
    showing the arithmetic when it cannot. With `wait_s` > 0 (an autoscaling cluster: `cluster.wait_for_resources_s`)
    wait up to that long, saying so, for nodes to join or other jobs to finish, instead of refusing at once.
    A shortfall that the cluster's total covers is waited out quietly for `grace_s` first: the workers of a run that
    just ended in this process (a resumed session, a sweep's previous trial) take a moment to hand theirs back."""
    began = time.monotonic()
    announced = False
    while True:
        total, free = ray.cluster_resources(), ray.available_resources()
        cpus, gpus = free.get("CPU", 0.0), free.get("GPU", 0.0)
        if cpus_needed <= cpus + 1e-9 and gpus_needed <= gpus + 1e-9:
            return
        shortfall = (
            f"the run needs {cpus_needed:g} CPUs and {gpus_needed:g} GPUs ({breakdown}) but the Ray cluster can "
            f"schedule {cpus:g} CPUs and {gpus:g} GPUs now (of {total.get('CPU', 0.0):g} and {total.get('GPU', 0.0):g})"
        )
        fits_total = cpus_needed <= total.get("CPU", 0.0) + 1e-9 and gpus_needed <= total.get("GPU", 0.0) + 1e-9
        waited = time.monotonic() - began
        if waited >= max(wait_s, grace_s if fits_total else 0.0):
            raise ClusterConnectError(
                f"{shortfall}; lower --actors or cluster.actor_num_cpus, add nodes, or set "
                "cluster.wait_for_resources_s on an autoscaling cluster"
            )
        if wait_s > 0 and not announced:
            say(f"[cluster] {shortfall}; waiting up to {wait_s:g} s for resources (cluster.wait_for_resources_s)")
            announced = True
        time.sleep(min(poll_s if wait_s > 0 else 0.25, max(max(wait_s, grace_s) - waited, 0.0)))
