"""A module-scoped local Ray instance for integration tests: its own temp dir (so it never joins a user's cluster
or another test run), pinned CPUs, the repo on the workers' path (for `tests.fakes`), shut down afterwards."""

import os
import tempfile
from pathlib import Path

import pytest

REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    tmp = tempfile.mkdtemp(prefix="rt-", dir="/tmp")  # short: Ray's socket paths have a length limit
    previous = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = tmp
    ray.init(
        address="local",
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}},
    )
    yield ray
    ray.shutdown()
    if previous is None:
        del os.environ["RAY_TMPDIR"]
    else:
        os.environ["RAY_TMPDIR"] = previous
    assert not ray.is_initialized()


@pytest.fixture(params=["local", "ray"])
def runtime(request):
    """Each test using it runs once per runtime; the Ray one on this module's Ray instance."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return request.param
