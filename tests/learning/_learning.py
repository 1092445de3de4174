"""Shared helper of the learning tests: one training run of a configs/ file on a fixed seed, with either runtime."""

from __future__ import annotations

from pathlib import Path

from distdqn.config import load_config
from distdqn.trainer import build_supervisor

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def train_to_target(
    config_name: str | None,
    tmp_path: Path,
    target: float,
    max_seconds: float,
    seed: int = 0,
    distributed: bool = False,
    overrides: tuple[str, ...] = (),
) -> dict:
    """Train `configs/<config_name>.yaml` (None: the defaults) until held-out success >= target or the budget; the
    run's summary. The local runtime by default; `distributed` runs the Ray runtime (the caller provides the Ray
    instance)."""
    config = load_config(
        CONFIGS / f"{config_name}.yaml" if config_name else None,
        [
            f"run.seed={seed}",
            f"run.target_success={target}",
            f"run.max_seconds={max_seconds}",
            "checkpoint.interval_s=0",
            *overrides,
        ],
    )
    supervisor = build_supervisor(config, tmp_path, "ray" if distributed else "local", quiet=True)
    try:
        summary = supervisor.run()
    finally:
        supervisor.close()
    print(f"{config_name} ({'distributed' if distributed else 'local'}): {summary}")
    return summary
