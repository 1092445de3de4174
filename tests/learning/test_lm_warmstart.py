"""Learning from a pretrained LM (issue 15, item 6): a tiny GPT-2 pretrained for 45 steps on keyword_text's train
demonstrations writes fluent sentences but its greedy held-out success is near 0 (it says the first concept and a
likely verb). DQN fine-tuning from it (configs/lm_keyword.yaml, local runtime, seed 0) reaches 0.95 held-out; the
same network from a random LM (`pretrain` with 0 steps: same tokenizer and shape) does not within the same number of
env steps. About a minute on the 2-core machine (scripts/lm_warmstart.py has the longer curves of both arms)."""

import pytest
import torch

from distdqn.config import EnvConfig, NetworkConfig
from distdqn.envs import make_env
from distdqn.evaluation import evaluate
from distdqn.networks import build_network
from distdqn.pretrain import pretrain, task_corpus
from distdqn.supervisor import EVAL_SEED_OFFSET
from tests.learning._learning import train_to_target

pytest.importorskip("transformers")

WARM_STEPS = 45
TARGET = 0.95
MAX_ENV_STEPS = 8_000  # the warm arm first reaches 1.00 held-out at 2,688 env steps (seed 0)


def starting_success(model_dir: str) -> float:
    """Greedy held-out success of the untrained Q-network: the LM's own policy (v = A = 0)."""
    env = make_env("keyword_text", tokenizer=model_dir)
    net_config = NetworkConfig(trunk="hf", pretrained=model_dir)
    with torch.random.fork_rng(devices=[]):
        weights = {k: v.numpy() for k, v in build_network(net_config, env.vocab_size, env.max_len).state_dict().items()}
    env_config = EnvConfig(task="keyword_text", tokenizer=model_dir)
    return evaluate(net_config, weights, env_config, episodes=100, seed=EVAL_SEED_OFFSET).success


def fine_tune(model_dir: str, run_dir, max_env_steps: int) -> dict:
    return train_to_target(
        "lm_keyword",
        run_dir,
        target=TARGET,
        max_seconds=180,
        overrides=(
            f"network.pretrained={model_dir}",
            f"run.max_env_steps={max_env_steps}",
            "run.eval_interval_s=0.5",  # every 256-env-step round of the local runtime: the same points on any machine
            "run.eval_episodes=100",
        ),
    )


def test_fine_tuning_a_weak_lm_beats_the_same_network_from_scratch(tmp_path):
    documents, extra = task_corpus("keyword_text")
    warm_dir, scratch_dir = str(tmp_path / "warm"), str(tmp_path / "scratch")
    pretrain(documents, warm_dir, extra, max_steps=WARM_STEPS, seed=0)
    pretrain(documents, scratch_dir, extra, max_steps=0, seed=0)
    start = starting_success(warm_dir)
    assert start <= 0.3, f"the warm start is already at {start}: nothing left to learn"

    warm = fine_tune(warm_dir, tmp_path / "run-warm", MAX_ENV_STEPS)
    assert warm["env_steps_to_target"] is not None, f"warm start: best held-out {warm['best_success']} < {TARGET}"

    scratch = fine_tune(scratch_dir, tmp_path / "run-scratch", warm["env_steps_to_target"])
    assert scratch["env_steps_to_target"] is None, (
        f"from scratch reached {TARGET} in {scratch['env_steps_to_target']} env steps, "
        f"the warm start in {warm['env_steps_to_target']}"
    )
    assert scratch["best_success"] < warm["best_success"]
