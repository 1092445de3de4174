"""`distdqn pretrain`: supervised warm-start on a text task's train demonstrations writes a Hugging Face directory
that the text envs and the hf Q-network load (no downloads), and its loss falls."""

import numpy as np

from distdqn.cli import main
from distdqn.config import NetworkConfig
from distdqn.envs import make_env
from distdqn.networks import build_network
from distdqn.pretrain import pretrain, task_corpus


def test_pretrain_writes_a_model_the_q_network_loads(tmp_path):
    documents, extra = task_corpus("keyword_text")
    first = pretrain(documents, tmp_path / "a", extra, max_steps=1, batch_size=8, seed=0)
    stats = pretrain(documents, tmp_path / "b", extra, max_steps=20, batch_size=8, seed=0)
    assert stats["steps"] == 20 and stats["loss"] < 0.7 * first["loss"]
    env = make_env("keyword_text", num_envs=2, split="test", tokenizer=str(tmp_path / "b"))
    obs = env.reset()
    net = build_network(NetworkConfig(trunk="hf", pretrained=str(tmp_path / "b")), env.vocab_size, env.max_len)
    _, q = net.advance(net.initial_state(2), obs.tokens, obs.length, np.ones(2, dtype=bool))
    assert q.shape == (2, env.vocab_size)


def test_pretrain_is_deterministic_for_a_seed(tmp_path):
    """Dropout draws from the global generator: two runs of one seed (with other draws in between) write the same
    weights, so the learning tests that start from a pretrained model start from the same one."""
    import torch
    from safetensors.torch import load_file

    documents, extra = task_corpus("keyword_text")
    pretrain(documents, tmp_path / "a", extra, max_steps=5, batch_size=8, seed=0)
    torch.rand(3)
    pretrain(documents, tmp_path / "b", extra, max_steps=5, batch_size=8, seed=0)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()


def test_pretrain_cli_from_a_text_file(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the dog runs\n\nthe cat sleeps\n")
    assert main(["pretrain", "--text", str(corpus), "--out", str(tmp_path / "m"), "--max-steps", "3"]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "m" / "model.safetensors").exists()
