"""End to end with a pretrained LM: a tiny GPT-2 on disk (word-level tokenizer) fine-tuned by DQN on keyword_text,
from configs/lm_keyword.yaml, for a few hundred updates on the local runtime and a short run on Ray; both measure
held-out success. (No learning claim here: the model is random, not pretrained.)"""

from pathlib import Path

import pytest

from distdqn.config import load_config
from distdqn.trainer import build_supervisor
from tests.lm_fixtures import tiny_lm

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lm_keyword.yaml"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_lm(tmp_path_factory.mktemp("tiny-lm")))


def run(model_dir: str, directory: Path, runtime: str, overrides: list[str]) -> dict:
    config = load_config(
        CONFIG,
        [f"network.pretrained={model_dir}", "checkpoint.interval_s=0", "run.eval_episodes=50", *overrides],
    )
    supervisor = build_supervisor(config, directory, runtime, quiet=True)
    try:
        return supervisor.run()
    finally:
        supervisor.close()


def test_lm_keyword_trains_on_the_local_runtime(model_dir, tmp_path):
    summary = run(model_dir, tmp_path, "local", ["run.max_updates=300", "run.max_seconds=120"])
    print("local:", summary)
    assert summary["updates"] >= 300
    assert summary["final_success"] is not None and 0.0 <= summary["final_success"] <= 1.0
    assert (tmp_path / "checkpoints").is_dir()


def test_lm_keyword_trains_distributed(ray_cluster, model_dir, tmp_path):
    overrides = [
        "run.max_updates=60",
        "run.max_seconds=120",
        "cluster.actor_num_cpus=0.5",
        "cluster.learner_num_cpus=1",
    ]
    summary = run(model_dir, tmp_path, "ray", overrides)
    print("ray:", summary)
    assert summary["updates"] >= 60 and summary["final_success"] is not None
