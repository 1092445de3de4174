"""The distributed runtime learns: on a real local Ray instance, a fixed seed reaches the task's held-out target.

The default suite runs grammar (easy), which reaches validity 0.99 in seconds; keyword (easy), the README's main
job, takes about two minutes on 2 cores and runs with the slow tests (`pytest -m slow`)."""

import pytest

from distdqn.config import load_config
from distdqn.distributed.driver import DistributedRunner
from tests.slow._learning import CONFIGS

pytestmark = pytest.mark.integration


def train_distributed(config_name: str, tmp_path, target: float, max_seconds: float) -> dict:
    config = load_config(
        CONFIGS / f"{config_name}.yaml",
        [
            "run.seed=0",
            f"run.target_success={target}",
            f"run.max_seconds={max_seconds}",
            "checkpoint.interval_s=0",
            "cluster.actor_num_cpus=0.5",
            "cluster.learner_num_cpus=1",
        ],
    )
    runner = DistributedRunner(config, tmp_path, quiet=True)
    try:
        summary = runner.train()
    finally:
        runner.close()
    print(f"{config_name} (distributed): {summary}")
    return summary


def test_grammar_easy_learns_distributed(ray_cluster, tmp_path):
    summary = train_distributed("grammar_easy", tmp_path, target=0.99, max_seconds=180)
    assert summary["time_to_target_s"] is not None, f"best held-out validity {summary['best_success']} < 0.99"


@pytest.mark.slow
def test_keyword_easy_learns_distributed(ray_cluster, tmp_path):
    summary = train_distributed("keyword_easy", tmp_path, target=0.95, max_seconds=420)
    assert summary["time_to_target_s"] is not None, f"best held-out success {summary['best_success']} < 0.95"
