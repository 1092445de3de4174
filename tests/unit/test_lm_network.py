"""The pretrained-LM Q-network (network.trunk: hf) on a tiny GPT-2 built on disk: the first greedy policy is the LM's,
the KV-cache actor path gives the full recompute's Q-values, finetune modes train what they say, and the learner,
actor and checkpoints work with it (only trainable weights published)."""

import numpy as np
import pytest
import torch

from distdqn import spec
from distdqn.actor import Actor
from distdqn.checkpoint import load_learner_state, save_learner_state
from distdqn.config import ActorConfig, EnvConfig, LearnerConfig, NetworkConfig
from distdqn.envs import make_env
from distdqn.evaluation import Evaluator, evaluate
from distdqn.learner import Learner, metrics_to_floats
from distdqn.lm_network import load_pretrained
from distdqn.networks import build_network, mask_q
from tests.lm_fixtures import tiny_lm

torch.set_num_threads(1)
HEAD = {"value.weight", "value.bias", "adv_down.weight", "adv_up.weight", "adv_up.bias", "log_scale"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_lm(tmp_path_factory.mktemp("tiny-lm")))


def net_for(model_dir, env, **kw):
    return build_network(NetworkConfig(trunk="hf", pretrained=model_dir, **kw), env.vocab_size, env.max_len).eval()


def test_initial_greedy_policy_is_the_lms(model_dir):
    env = make_env("keyword_text", tokenizer=model_dir)
    net = net_for(model_dir, env)
    lm = load_pretrained(model_dir)
    tokens = torch.randint(1, env.vocab_size, (8, env.max_len))
    with torch.no_grad():
        q = mask_q(net.q_all(tokens))
        logits = lm(tokens).logits[..., : env.vocab_size]
    assert torch.equal(q.argmax(-1), mask_q(logits).argmax(-1))
    # Q is the scaled log-probability (v = A = 0 at the start): the LM's whole ranking, not only its argmax
    torch.testing.assert_close(q[..., 1:], 0.1 * torch.log_softmax(logits, -1)[..., 1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("finetune", ["full", "frozen"])
def test_kv_cache_advance_matches_full_recompute(model_dir, finetune):
    """Several episodes per slot (resets at different times) and enough steps to rebuild the cache."""
    env = make_env("keyword_text", num_envs=5, seed=1, tokenizer=model_dir)
    net = net_for(model_dir, env, finetune=finetune)
    rng = np.random.default_rng(0)
    obs, reset = env.reset(), np.ones(5, dtype=bool)
    rows = torch.arange(5)
    rebuilt = 0
    with torch.no_grad():
        state = net.initial_state(5)
        for _ in range(40):
            before = None if state.mask is None else state.mask.shape[1]
            state, q = net.advance(state, obs.tokens, obs.length, reset)
            rebuilt += before is None or state.mask.shape[1] <= before
            full = net.q_all(torch.from_numpy(obs.tokens).long())
            torch.testing.assert_close(q, full[rows, torch.from_numpy(obs.length).long() - 1], atol=1e-4, rtol=1e-4)
            obs, _, _, _, info = env.step(env.random_actions(rng))
            reset = np.zeros(5, dtype=bool)
            reset[info.done_idx] = True
    assert rebuilt >= 2  # the first build and at least one rebuild of a too-wide cache


@pytest.mark.parametrize(
    ("finetune", "expect"),
    [
        ("frozen", lambda n: n in HEAD),
        ("top_blocks", lambda n: n in HEAD or ".h.1." in n or ".ln_f." in n),
        ("lora", lambda n: n in HEAD or "lora_" in n),
    ],
)
def test_finetune_modes_train_what_they_say(model_dir, finetune, expect):
    env = make_env("keyword_text", tokenizer=model_dir)
    net = net_for(model_dir, env, finetune=finetune)
    names = net.published_names()
    assert names and all(expect(n) for n in names), names
    if finetune == "top_blocks":
        assert any(".h.1." in n for n in names) and any(".ln_f." in n for n in names)
    if finetune == "lora":  # LoRA starts as the base model: the greedy policy is still the LM's
        lm = load_pretrained(model_dir)
        tokens = torch.randint(1, env.vocab_size, (4, env.max_len))
        with torch.no_grad():
            assert torch.equal(mask_q(net.q_all(tokens)).argmax(-1), mask_q(lm(tokens).logits).argmax(-1))


def test_learner_and_actor_train_and_publish_only_trainable_weights(model_dir, tmp_path):
    env_config = EnvConfig(task="keyword_text", tokenizer=model_dir, envs_per_actor=8)
    net_config = NetworkConfig(trunk="hf", pretrained=model_dir, finetune="frozen")
    actor = Actor(env_config, net_config, ActorConfig(n_step=2, explore="lm", explore_top_k=5), 0, 1, seed=0)
    batch = actor.collect(12).transitions
    assert len(batch[spec.ACTION]) > 0 and spec.MASK_NEXT in batch
    learner = Learner(net_config, LearnerConfig(device="cpu", lr=3e-3), actor.vocab_size, actor.max_len, seed=0)
    _, m0 = learner.update(batch)
    for _ in range(30):
        _, m = learner.update(batch)
    assert metrics_to_floats(m)["loss"] < metrics_to_floats(m0)["loss"]
    version, weights = learner.snapshot()
    assert set(weights) == HEAD  # a frozen trunk is never sent
    actor.load_weights(version, weights)
    actor.collect(2)
    save_learner_state(tmp_path, learner.state_dict())
    restored = Learner(net_config, LearnerConfig(device="cpu"), actor.vocab_size, actor.max_len, seed=1)
    restored.load_state_dict(load_learner_state(tmp_path))
    for k, v in restored.weights().items():
        np.testing.assert_array_equal(v, weights[k])


def test_fast_learner_read_out_equals_the_full_head(model_dir):
    """`learner.impl: fast` reads Q(s, a) through `q_taken`: on the LM network it is the full head's entry."""
    env = make_env("keyword_text", tokenizer=model_dir)
    net = net_for(model_dir, env)
    tokens = torch.randint(1, env.vocab_size, (4, env.max_len))
    positions = torch.tensor([0, 3, 5, env.max_len - 1])
    actions = torch.tensor([1, 2, env.vocab_size - 1, 7])
    with torch.no_grad():
        full = net.q_at(tokens, positions[:, None])[:, 0]
        feats = net.features(tokens)[torch.arange(4), positions]
        taken = net.q_taken(feats, tokens, positions, actions)
    torch.testing.assert_close(taken, full[torch.arange(4), actions])


def test_evaluator_loads_the_lm_once_and_matches_a_fresh_network(model_dir, monkeypatch):
    """A run evaluates many snapshots: the LM is read from disk once, and each snapshot's weights go into the same
    module with the result of a network built for it alone."""
    from transformers import AutoModelForCausalLM

    env_config = EnvConfig(task="keyword_text", tokenizer=model_dir)
    net_config = NetworkConfig(trunk="hf", pretrained=model_dir)
    env = make_env("keyword_text", tokenizer=model_dir)
    torch.manual_seed(0)
    snapshots = []
    for scale in (0.0, 3.0):  # a perturbed advantage changes the greedy generations
        net = net_for(model_dir, env)
        with torch.no_grad():
            net.adv_up.weight.normal_(0.0, scale)
        snapshots.append({k: v.numpy() for k, v in net.state_dict().items()})
    fresh = [evaluate(net_config, w, env_config, episodes=16, seed=3, examples=16) for w in snapshots]
    assert fresh[0].examples != fresh[1].examples

    loads = []
    original = AutoModelForCausalLM.from_pretrained.__func__
    monkeypatch.setattr(
        AutoModelForCausalLM,
        "from_pretrained",
        classmethod(lambda cls, *a, **k: loads.append(a) or original(cls, *a, **k)),
    )
    evaluator = Evaluator(net_config, env_config)
    reused = [evaluator.evaluate(w, episodes=16, seed=3, examples=16) for w in snapshots + snapshots]
    assert len(loads) == 1
    assert reused == fresh + fresh
