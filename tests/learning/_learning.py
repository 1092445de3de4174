"""Shared helper of the learning tests: one local-runner training run on a fixed seed, from a configs/ file."""

from __future__ import annotations

from pathlib import Path

from distdqn.config import load_config
from distdqn.local import LocalRunner

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def train_to_target(config_name: str, tmp_path: Path, target: float, max_seconds: float, seed: int = 0) -> dict:
    """Train `configs/<config_name>.yaml` with the local runner until held-out success >= target or the budget."""
    config = load_config(
        CONFIGS / f"{config_name}.yaml",
        [
            f"run.seed={seed}",
            f"run.target_success={target}",
            f"run.max_seconds={max_seconds}",
            "checkpoint.interval_s=0",
        ],
    )
    runner = LocalRunner(config, tmp_path, quiet=True)
    try:
        summary = runner.train()
    finally:
        runner.close()
    print(f"{config_name}: {summary}")
    return summary
