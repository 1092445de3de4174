"""One entry point for training: builds the runtime the caller names, resumes, and runs the supervisor."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from distdqn.config import Config
from distdqn.run import Counters, stop_reason
from distdqn.runtime import Runtime
from distdqn.supervisor import Supervisor

RuntimeKind = Literal["local", "ray"]
RUNTIMES: tuple[RuntimeKind, ...] = ("local", "ray")


def make_runtime(kind: RuntimeKind, config: Config) -> Runtime:
    """`local`: every component in this process (`distdqn.local`); `ray`: the Ape-X topology on Ray."""
    if kind == "local":
        from distdqn.local import LocalRuntime

        return LocalRuntime(config)
    if kind == "ray":
        from distdqn.distributed.runtime import RayRuntime

        return RayRuntime(config)
    raise ValueError(f"runtime must be one of {list(RUNTIMES)}, got {kind!r}")


def build_supervisor(
    config: Config,
    directory: Path,
    runtime: RuntimeKind = "ray",
    counters: Counters | None = None,
    quiet: bool = False,
) -> Supervisor:
    """The runtime `runtime` for `config` under a supervisor writing to `directory` (close it when done)."""
    setup_began = time.monotonic()  # start-up (Ray's start, the workers' imports) is reported, not trained
    built = make_runtime(runtime, config)
    try:
        return Supervisor(config, directory, built, counters=counters, quiet=quiet, setup_began=setup_began)
    except BaseException:
        built.close()
        raise


def train(
    config: Config,
    directory: Path,
    runtime: RuntimeKind = "ray",
    resume: Path | None = None,
    quiet: bool = False,
    examples: int = 5,
) -> dict[str, Any]:
    """Run training in `directory` until a budget, the target or a stop signal ends it; the run summary."""
    counters = None
    if resume is not None:
        from distdqn.checkpoint import load_counters

        counters = load_counters(resume)
        if (met := stop_reason(config.run, counters, counters.wall_s)) is not None:
            raise ValueError(
                f"{resume}: nothing to resume, the run has already met its stop condition ({met}); budgets and the "
                "target count the whole run: raise them to train on (--max-seconds, --max-env-steps, --max-updates, "
                "--target-success, 0 for none)"
            )
    supervisor = build_supervisor(config, directory, runtime, counters=counters, quiet=quiet)
    try:
        if resume is not None:
            supervisor.restore(resume)
        return supervisor.run(examples=examples)
    finally:
        supervisor.close()
