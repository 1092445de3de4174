"""The files in cluster/ hold what a launcher needs: every YAML parses; the RayJob's entry point runs the installed
package with a config that exists, its cluster fits the run and runs the image's Ray version with token auth; the
image installs the package; the SSH launcher configs use one Ray installation and keep .venv/runs/.git off the
nodes. And cluster/submit.py's pure parts: addresses, the run-directory rule, an entry point that survives `sh`."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from distdqn.cli import build_parser, resolve_config

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
IMAGE_REPO_DIR = "/home/ray/distdqn"  # where cluster/Dockerfile copies the repository
LAUNCHER_CONFIGS = ["onprem.yaml", "aws.yaml"]

sys.path.insert(0, str(CLUSTER))
import submit  # noqa: E402  (cluster/submit.py: no Ray at import)


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((CLUSTER / name).read_text()) if d]


def ray_lower_bound() -> tuple[int, ...]:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'"ray\[default\]>=([\d.]+)"', text)
    assert match, "pyproject.toml: ray[default]>=X.Y"
    return tuple(int(p) for p in match.group(1).split("."))


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@pytest.mark.parametrize("path", sorted(CLUSTER.glob("*.yaml")), ids=lambda p: p.name)
def test_every_yaml_parses(path):
    assert docs(path.name)


def test_dockerfile_installs_the_package_and_cuda_torch():
    text = (CLUSTER / "Dockerfile").read_text()
    base = re.search(r"^FROM rayproject/ray:([\d.]+)-py311-gpu$", text, re.M)
    assert base, "a GPU Ray base image"
    assert re.search(rf"^COPY .* {IMAGE_REPO_DIR}$", text, re.M)
    assert re.search(rf"pip install .*{IMAGE_REPO_DIR}", text), "the package is installed into the image's Python"
    assert "torch" in text and "whl/cpu" not in text, "CUDA torch (not the CPU wheel index)"
    ignore = (CLUSTER / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "runs", ".git"} <= set(ignore)


def test_rayjob_matches_image_and_ray_pin():
    (job,) = [d for d in docs("rayjob.yaml") if d["kind"] == "RayJob"]
    spec = job["spec"]["rayClusterSpec"]
    image_ray = re.search(r"rayproject/ray:([\d.]+)-", (CLUSTER / "Dockerfile").read_text()).group(1)
    assert spec["rayVersion"] == image_ray
    assert version(spec["rayVersion"]) >= ray_lower_bound() >= (2, 52), "token auth needs Ray 2.52+"
    assert spec["authOptions"]["mode"] == "token"


def _pods(spec: dict) -> list[tuple[dict, int]]:
    """(pod spec template, replicas) of the head and every worker group."""
    return [(spec["headGroupSpec"], 1)] + [(g, g["replicas"]) for g in spec["workerGroupSpecs"]]


def test_rayjob_entrypoint_runs_and_its_cluster_fits_the_run():
    all_docs = docs("rayjob.yaml")
    (job,) = [d for d in all_docs if d["kind"] == "RayJob"]
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:4] == ["python", "-m", "distdqn", "train"] and (REPO / "distdqn" / "__main__.py").is_file()
    args, extra = build_parser().parse_known_args(argv[3:])
    assert not [e for e in extra if "=" not in e], extra
    args.overrides = [*args.overrides, *extra]
    assert args.config.startswith(IMAGE_REPO_DIR + "/")
    args.config = str(REPO / args.config.removeprefix(IMAGE_REPO_DIR + "/"))
    config = resolve_config(args)
    c = config.cluster

    spec = job["spec"]["rayClusterSpec"]
    cpus = gpus = 0.0
    run_mounts = set()
    for group, replicas in _pods(spec):
        (container,) = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        node_cpus = float(group["rayStartParams"].get("num-cpus", limits["cpu"]))
        cpus += replicas * node_cpus
        gpus += replicas * float(limits.get("nvidia.com/gpu", 0))
        run_mounts.add(tuple(m["mountPath"] for m in container.get("volumeMounts", [])))
        claims = {v["persistentVolumeClaim"]["claimName"] for v in group["template"]["spec"]["volumes"]}
        assert claims <= {d["metadata"]["name"] for d in all_docs if d["kind"] == "PersistentVolumeClaim"}
    # the same sum as distdqn.distributed.topology.cpus_needed (not imported: unit tests do not import Ray)
    needed = (
        config.actor.num_actors * c.actor_num_cpus + config.replay.num_shards * c.shard_num_cpus + c.learner_num_cpus
    )
    assert needed <= cpus, f"the run needs {needed} CPUs, the RayJob's cluster has {cpus}"
    assert gpus >= 1, "one GPU node for the learner"
    # the run directory is on the volume every pod mounts, so it outlives the cluster
    assert len(run_mounts) == 1
    (mounts,) = run_mounts
    assert any(config.run.run_dir.startswith(m + "/") for m in mounts), (config.run.run_dir, mounts)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_uses_one_ray_and_the_venv(name):
    (cfg,) = docs(name)
    assert any("scripts/setup.sh" in cmd for cmd in cfg["setup_commands"]), "setup.sh installs the package"
    assert {".venv", "runs", ".git"} <= set(cfg["rsync_exclude"])
    assert any(path.endswith(".ray/auth_token") for path in cfg["file_mounts"]), "the token goes to every node"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        commands = " ; ".join(cfg[key])
        binaries = set(re.findall(r"(\S*ray) (?:stop|start)", commands))
        assert binaries == {"~/distdqn/.venv/bin/ray"}, (key, binaries)
        assert "RAY_AUTH_MODE=token" in commands
        assert "PATH=$HOME/distdqn/.venv/bin:$PATH" in commands, "the job's `python` is the venv's"
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--include-dashboard=true" in head and "--dashboard-port=8265" in head, "the job server"


def test_aws_config_has_cpu_nodes_and_one_gpu_learner_node():
    (cfg,) = docs("aws.yaml")
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    gpu = [t for t in types.values() if re.match(r"(g|p)\d", t["node_config"]["InstanceType"])]
    assert len(gpu) == 1 and gpu[0]["min_workers"] == gpu[0]["max_workers"] == 1
    assert sum(t.get("max_workers", 0) for t in types.values()) <= cfg["max_workers"] + 1


# ---- cluster/submit.py -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "address, url",
    [
        ("10.0.0.1", "http://10.0.0.1:8265"),
        ("head:9000", "http://head:9000"),
        ("https://ray.example.com", "https://ray.example.com"),
    ],
)
def test_job_server_url(address, url):
    assert submit.job_server_url(address) == url


@pytest.mark.parametrize(
    "train_args, ok",
    [
        (["--run-dir", "/mnt/runs/a"], True),
        (["--resume", "/mnt/runs/a", "--max-updates", "9"], True),
        (["--run-dir=s3://bucket/runs/a"], True),
        (["run.run_dir=/mnt/x"], True),
        (["--run-dir", "runs/a"], False),
        (["--actors", "4"], False),
    ],
)
def test_run_directory_must_be_given_and_absolute(train_args, ok):
    if ok:
        submit.check_run_location(train_args)
    else:
        with pytest.raises(SystemExit):
            submit.check_run_location(train_args)


def test_entrypoint_passes_every_argument_through_sh():
    args = ["--run-dir", "/r/a b", "env.options={held_out: false}", "x=$HOME;`id`", "it's"]
    cmd = submit.entrypoint(sys.executable, args)
    # `-m distdqn train` replaced by a probe that prints its argv: what the head's shell would run (and the check of
    # the dependencies by a cheap import: torch takes seconds)
    probe = cmd.replace("-m distdqn train", "-c 'import json, sys; print(json.dumps(sys.argv[1:]))'")
    probe = probe.replace("import ray, torch, msgpack", "import json")
    out = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert yaml.safe_load(out.stdout) == args


def test_entrypoint_names_a_python_without_the_dependencies():
    out = subprocess.run(
        ["sh", "-c", submit.entrypoint("/bin/false", ["--run-dir", "/r"])], capture_output=True, text=True
    )
    assert out.returncode == 2 and "--python" in out.stderr


def test_submit_says_in_one_line_that_the_job_server_is_unreachable():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run(
        [sys.executable, str(REPO / "cluster" / "submit.py"), f"127.0.0.1:{port}", "--", "--run-dir", "/tmp/x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"submit: cannot reach the job server at http://127.0.0.1:{port}" in out.stderr and "HOST:PORT" in out.stderr
