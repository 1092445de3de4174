"""The distributed runtime learns: on a real local Ray instance, a fixed seed reaches the task's held-out target.

Both run in the default suite (CI): keyword (easy), the README's main job, reaches held-out success 0.95 in about
20-40 s on 2 cores; grammar (easy) reaches validity 0.99 in seconds. The budgets are several times that, for a
loaded CI machine."""

import pytest

from tests.learning._learning import train_to_target

pytestmark = pytest.mark.integration
CPUS = ("cluster.actor_num_cpus=0.5", "cluster.learner_num_cpus=1")  # fits the 4-CPU test instance


def train_distributed(config_name: str, tmp_path, target: float, max_seconds: float) -> dict:
    return train_to_target(config_name, tmp_path, target, max_seconds, distributed=True, overrides=CPUS)


def test_grammar_easy_learns_distributed(ray_cluster, tmp_path):
    summary = train_distributed("grammar_easy", tmp_path, target=0.99, max_seconds=180)
    assert summary["time_to_target_s"] is not None, f"best held-out validity {summary['best_success']} < 0.99"


def test_keyword_easy_learns_distributed(ray_cluster, tmp_path):
    summary = train_distributed("keyword_easy", tmp_path, target=0.95, max_seconds=240)
    assert summary["time_to_target_s"] is not None, f"best held-out success {summary['best_success']} < 0.95"
