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


@pytest.mark.slow
def test_lm_keyword_runs_a_gpt2_small_sized_model(tmp_path):
    """The same config with a GPT-2-small-shaped LM (12 layers, 768 wide, 50,257 outputs: 124M parameters, random
    weights, the word-level tokenizer's actions) on CPU: a bounded smoke run of a few updates, a checkpoint of the
    full model on disk. Slow (about a minute on 2 cores, 0.5 GB per model copy)."""
    import math

    from safetensors import safe_open

    model = tiny_lm(tmp_path / "gpt2-small", layers=12, dim=768, heads=12, vocab_size=50257, positions=1024)
    with safe_open(str(model / "model.safetensors"), "pt") as weights:
        assert sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys()) > 120e6
    overrides = [
        "run.max_updates=3",
        "run.max_seconds=300",
        "run.eval_episodes=4",
        "actor.num_actors=1",
        "env.envs_per_actor=4",
        "replay.min_size_to_sample=32",
        "learner.batch_size=16",
        "checkpoint.interval_updates=3",
    ]
    summary = run(str(model), tmp_path / "run", "local", overrides)
    print("gpt2-small:", summary)
    assert summary["updates"] >= 3 and summary["final_success"] is not None
    assert any((tmp_path / "run" / "checkpoints").rglob("*.safetensors"))
