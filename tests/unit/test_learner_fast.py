"""The fast learner path (`learner.impl: fast`) against the reference path: the same Q(s, a), gradients, losses and
parameter updates on fixed batches (to float rounding: the fast path sums the dueling mean and the copy scores in
another order), and checkpoints that load across the two."""

import numpy as np
import pytest
import torch

from distdqn import spec
from distdqn.actor import Actor
from distdqn.config import ActorConfig, EnvConfig, LearnerConfig, NetworkConfig
from distdqn.learner import Learner, metrics_to_floats
from distdqn.networks import build_network

torch.set_num_threads(1)
NET = NetworkConfig(embed_dim=8, hidden_dim=16, copy_dim=8)
# Tolerances: float32 rounding of sums taken in another order, grown through a few Adam steps (lr 1e-3).
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module", params=["tests.fakes:FeedbackEnv", "tests.fakes:SyntheticEnv"])
def batch(request):
    actor = Actor(EnvConfig(task=request.param, envs_per_actor=16), NET, ActorConfig(n_step=2), 0, 1, 0)
    t = actor.collect(6).transitions
    t[spec.WEIGHT] = np.linspace(0.5, 1.0, len(t[spec.ACTION])).astype(np.float32)
    return t, actor.vocab_size, actor.max_len


def make(batch, impl, **kw):
    _, vocab, max_len = batch
    return Learner(NET, LearnerConfig(device="cpu", impl=impl, **kw), vocab, max_len, seed=0)


def assert_same_params(a: Learner, b: Learner, rtol=RTOL, atol=ATOL):
    for (name, x), y in zip(a.online.state_dict().items(), b.online.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


ALIGN = NetworkConfig(embed_dim=8, hidden_dim=16, copy_dim=8, align_head=True, align_dim=8)


@pytest.mark.parametrize(
    "net",
    [NET, NetworkConfig(embed_dim=8, hidden_dim=16, copy_head=False, dueling=False), ALIGN],
    ids=["copy", "plain", "align"],
)
def test_q_taken_equals_the_full_head_read_at_the_action_with_equal_gradients(net):
    torch.manual_seed(0)
    model = build_network(net, vocab_size=7, max_len=6)
    if model.align is not None:  # its lexicon starts at zero
        torch.nn.init.normal_(model.align.lexicon.weight)
    tokens = torch.tensor([[3, 4, 3, 5, 0, 0], [2, 2, 2, 6, 1, 0], [5, 6, 1, 0, 0, 0]])  # repeats: copy-score ties
    positions = torch.tensor([3, 4, 1])
    actions = torch.tensor([3, 2, 4])  # in the text twice / three times / not in the text
    feats = model.features(tokens)[torch.arange(3), positions]
    full = model.q_from_features(feats[:, None], tokens, positions[:, None])[:, 0]
    picked = full.gather(1, actions[:, None])[:, 0]
    taken = model.q_taken(feats, tokens, positions, actions)
    torch.testing.assert_close(taken, picked, rtol=1e-6, atol=1e-6)
    params = list(model.parameters())
    grads = [torch.autograd.grad(q.sum(), params, allow_unused=True, retain_graph=True) for q in (picked, taken)]
    for g_full, g_taken in zip(*grads, strict=True):
        if g_full is None:
            assert g_taken is None or not g_taken.any()
        else:
            torch.testing.assert_close(g_taken, g_full, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [{}, {"double_dqn": False, "loss": "mse"}, {"weight_decay": 0.01}])
def test_fast_updates_equal_reference_losses_and_parameters(batch, kw):
    fast, ref = make(batch, "fast", **kw), make(batch, "reference", **kw)
    assert fast.optimizer.param_groups[0]["fused"] and not ref.optimizer.param_groups[0]["fused"]
    for _ in range(5):
        td_f, m_f = fast.update(batch[0])
        td_r, m_r = ref.update(batch[0])
        np.testing.assert_allclose(td_f, td_r, rtol=RTOL, atol=ATOL)
        floats_f, floats_r = metrics_to_floats(m_f), metrics_to_floats(m_r)
        assert floats_f.keys() == floats_r.keys()
        for name in floats_r:
            assert floats_f[name] == pytest.approx(floats_r[name], rel=RTOL, abs=ATOL), name
        assert_same_params(fast, ref)
    assert fast.updates == ref.updates == 5


def test_masked_batch_equal_across_paths(batch):
    fields, vocab, _ = batch
    masked = dict(fields)
    rng = np.random.default_rng(0)
    legal = rng.random((len(fields[spec.ACTION]), vocab)) < 0.5
    masked[spec.MASK_NEXT] = np.packbits(legal, axis=-1, bitorder="little")
    td_f, _ = make(batch, "fast").update(masked)
    td_r, _ = make(batch, "reference").update(masked)
    np.testing.assert_allclose(td_f, td_r, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("saved,loaded", [("reference", "fast"), ("fast", "reference")])
def test_checkpoint_from_one_path_resumes_in_the_other(batch, saved, loaded, tmp_path):
    a = make(batch, saved, target_sync_interval_updates=2)
    for _ in range(3):
        a.update(batch[0])
    torch.save(a.state_dict(), tmp_path / "s.pt")
    b = make(batch, loaded, target_sync_interval_updates=2)
    b.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert b.optimizer.param_groups[0]["fused"] == (loaded == "fast" or None)  # its own kernel, not the saver's
    a.update(batch[0])
    b.update(batch[0])
    assert b.updates == a.updates == 4 and b.target_version == a.target_version == 2
    assert_same_params(a, b)
