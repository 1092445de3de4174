"""Submit `distdqn train` to a running Ray cluster as a Ray job (the launch path from any machine; `distdqn train
--address HOST:PORT` only works on a node of the cluster).

    python cluster/submit.py ADDRESS [--python PY] [--no-wait] [--submission-id ID] -- TRAIN_ARGS...

The job runs the code of this checkout (uploaded as the job's `working_dir`, without .venv, runs/ and .git) with
the cluster's own Python and the dependencies installed there (image or venv on every node): nothing is installed
at run time. Every `distdqn train` flag passes through unchanged, `--resume` included; the run directory must be
given (`--run-dir` or `--resume`) and absolute, where the driver (on the head) can write and the run outlives the
cluster (the job's working directory is a temporary copy on the head). The token: like every Ray client, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
~/.ray/auth_token (copy it from the head node: `ray get-auth-token`).

The entry point is passed to Ray's job API verbatim (the `ray job submit` CLI re-joins its arguments with Windows
quoting rules, which a shell on the head does not undo), so every argument survives `sh -c` exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXCLUDES = [".venv", "runs", ".git", "**/__pycache__"]
# `ray job stop` sends SIGTERM, then SIGKILL after this many seconds (Ray's default: 3), read from the job's
# environment: time for the run to stop its workers and write its last checkpoint
STOP_WAIT_S = 60
DASHBOARD_PORT = 8265


def job_server_url(address: str) -> str:
    """HOST -> http://HOST:8265 (the dashboard port, where the job server listens); HOST:PORT and URLs as given."""
    if address.startswith(("http://", "https://")):
        return address
    if ":" in address:
        return f"http://{address}"
    return f"http://{address}:{DASHBOARD_PORT}"


def run_location(train_args: list[str]) -> str:
    """The run directory named by the train flags (`--run-dir`, `--resume` or `run.run_dir=`); '' when none."""
    where = ""
    for i, arg in enumerate(train_args):
        if arg in ("--run-dir", "--resume") and i + 1 < len(train_args):
            where = train_args[i + 1]
        elif arg.startswith(("--run-dir=", "--resume=", "run.run_dir=")):
            where = arg.split("=", 1)[1]
    return where


def check_run_location(train_args: list[str]) -> None:
    where = run_location(train_args)
    if not where:
        raise SystemExit(
            "submit: give the run directory: --run-dir DIR (or --resume DIR), absolute, on storage the head can write"
        )
    if not (where.startswith("/") or "://" in where):
        raise SystemExit(
            f"submit: the run directory must be absolute or a URI, not {where!r} "
            "(a relative path lands in the job's temporary working directory on the head)"
        )


def entrypoint(python: str, train_args: list[str]) -> str:
    """The shell command the head runs: check the cluster's Python first (one clear line instead of a
    ModuleNotFoundError traceback), then `PY -m distdqn train ARGS`."""
    py = shlex.quote(python)
    missing = shlex.quote(
        f"submit: the Python of the job ({python}) lacks ray/torch/msgpack: pass --python with the Python that has "
        "the dependencies of distdqn on the cluster nodes (the python of the image, or the venv made by scripts/setup.sh)"
    )
    return (
        f"{py} -c 'import ray, torch, msgpack' 2>/dev/null || {{ echo {missing} >&2; exit 2; }}; "
        f"exec {py} -m distdqn train {shlex.join(train_args)}"
    )


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: submit ADDRESS [--python PY] [--no-wait] [--submission-id ID] -- TRAIN_ARGS...")
    cut = argv.index("--")
    parser = argparse.ArgumentParser(prog="submit", description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="the head's job server: HOST (port 8265), HOST:PORT or http(s)://HOST:PORT")
    parser.add_argument("--python", default="python", help="the cluster's Python (default: `python` on its PATH)")
    parser.add_argument("--no-wait", action="store_true", help="return once the job is submitted")
    parser.add_argument("--submission-id", help="the job id (default: Ray picks one)")
    return parser.parse_args(argv[:cut]), argv[cut + 1 :]


def follow(client, job_id: str) -> str:
    """Print the job's log until it ends; return its final status."""

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    asyncio.run(tail())
    while not (status := client.get_job_status(job_id)).is_terminal():
        time.sleep(0.5)
    return str(status.value)


def main(argv: list[str] | None = None) -> int:
    args, train_args = parse(sys.argv[1:] if argv is None else argv)
    check_run_location(train_args)
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise SystemExit(
            f"submit: this Python ({sys.executable}) has no ray: run it with one that has `ray[default]` "
            "(PYTHON=/path/to/python bash cluster/submit.sh ..., or `bash scripts/setup.sh` for this checkout's .venv)"
        ) from None
    url = job_server_url(args.address)
    try:
        client = JobSubmissionClient(url)
        job_id = client.submit_job(
            entrypoint=entrypoint(args.python, train_args),
            submission_id=args.submission_id,
            runtime_env={
                "working_dir": str(REPO),
                "excludes": EXCLUDES,
                "env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S)},
            },
        )
    except ConnectionError as e:
        raise SystemExit(
            f"submit: cannot reach the job server at {url} ({str(e).strip().splitlines()[0]}); it is the head's "
            f"dashboard port ({DASHBOARD_PORT} unless `ray start --dashboard-port` changed it: give HOST:PORT), "
            "and the head must run the dashboard (`ray start --head --include-dashboard=true`)"
        ) from None
    except Exception as e:  # noqa: BLE001 - Ray's AuthenticationError and others: one line, not a traceback
        if type(e).__name__ != "AuthenticationError":
            raise
        raise SystemExit(
            f"submit: the job server at {url} wants the cluster's token: run `ray get-auth-token` on the head and "
            "set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) here"
        ) from None
    print(f"submitted job {job_id} to {job_server_url(args.address)}", flush=True)
    if args.no_wait:
        print(f"follow it with: ray job logs --address {job_server_url(args.address)} --follow {job_id}")
        return 0
    status = follow(client, job_id)
    print(f"job {job_id}: {status}")
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
