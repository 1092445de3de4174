"""One entry point for training: picks the local or the distributed runtime, resumes, and reports at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distdqn.config import Config


def train(
    config: Config,
    directory: Path,
    local: bool = False,
    resume: Path | None = None,
    quiet: bool = False,
    examples: int = 5,
) -> dict[str, Any]:
    """Run training in `directory` until a budget or the target stops it; returns the run summary."""
    if local:
        from distdqn.local import LocalRunner as Runner
    else:
        from distdqn.distributed.driver import DistributedRunner as Runner
    counters = None
    if resume is not None:
        from distdqn.checkpoint import load_counters

        counters = load_counters(resume)
    runner = Runner(config, directory, counters=counters, quiet=quiet)
    try:
        if resume is not None:
            runner.restore(resume)
        summary = runner.train()
        if not str(summary.get("stop_reason")).startswith("failed"):  # a dead learner has no state to save
            runner.save_checkpoint(final=True)
            if examples:
                runner.show_examples(examples)
    finally:
        runner.close()
    return summary
