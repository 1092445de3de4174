"""Learner: the update lowers the loss, target syncs on schedule, snapshots and state dicts round-trip, non-finite
losses skip the step and non-finite weights are never handed out."""

import numpy as np
import pytest
import torch

from distdqn import checkpoint as ck
from distdqn import spec
from distdqn.actor import Actor
from distdqn.config import ActorConfig, EnvConfig, LearnerConfig, NetworkConfig
from distdqn.learner import Learner, NonFiniteWeightsError, metrics_to_floats

torch.set_num_threads(1)
NET = NetworkConfig(embed_dim=8, hidden_dim=16)


@pytest.fixture(scope="module")
def batch():
    actor = Actor(EnvConfig(task="tests.fakes:FeedbackEnv", envs_per_actor=16), NET, ActorConfig(n_step=2), 0, 1, 0)
    t = actor.collect(6).transitions
    t[spec.WEIGHT] = np.linspace(0.5, 1.0, len(t[spec.ACTION])).astype(np.float32)
    return t, actor.vocab_size, actor.max_len


def make_learner(batch, **kw):
    _, vocab, max_len = batch
    return Learner(NET, LearnerConfig(device="cpu", **kw), vocab, max_len, seed=0)


def test_update_lowers_loss_on_a_fixed_batch(batch):
    learner = make_learner(batch, lr=3e-3, target_sync_interval_updates=1000)
    td0, m0 = learner.update(batch[0])
    for _ in range(40):
        _, m = learner.update(batch[0])
    assert td0.shape == (len(batch[0][spec.ACTION]),) and td0.dtype == np.float32
    first, last = metrics_to_floats(m0), metrics_to_floats(m)
    assert last["loss"] < 0.5 * first["loss"] and learner.updates == 41
    assert {"loss", "q_mean", "grad_norm", "abs_td_mean"} <= set(last)


def test_metrics_are_detached_scalar_tensors_until_logged(batch):
    td, metrics = make_learner(batch).update(batch[0])
    counters = {"skipped_updates", "consecutive_skips"}  # host counters: plain floats, no device copy
    for name, value in metrics.items():  # no host sync per metric: they stay tensors
        if name in counters:
            assert type(value) is float, name
            continue
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad, name
    floats = metrics_to_floats(metrics)
    assert set(floats) == set(metrics) and all(type(v) is float for v in floats.values())
    assert floats["abs_td_mean"] == pytest.approx(float(td.mean()), rel=1e-5)
    assert metrics_to_floats({"a": torch.tensor(2.0), "b": 0.5}) == {"a": 2.0, "b": 0.5}
    assert metrics_to_floats({}) == {}


def test_target_syncs_exactly_on_schedule(batch):
    learner = make_learner(batch, target_sync_interval_updates=3)
    synced_after = []
    for u in range(1, 8):
        learner.update(batch[0])
        same = all(
            torch.equal(a, b) for a, b in zip(learner.online.parameters(), learner.target.parameters(), strict=True)
        )
        if same:
            synced_after.append(u)
    assert synced_after == [3, 6] and learner.target_version == 2


def test_the_learning_rate_follows_its_cosine_decay_and_holds(batch):
    learner = make_learner(batch, lr=1e-3, lr_decay_updates=10, lr_final_fraction=0.1)
    used = []
    for _ in range(14):
        learner.update(batch[0])
        used.append(learner.optimizer.param_groups[0]["lr"])  # the rate the step just taken used
    assert used[0] == pytest.approx(1e-3)  # update 1 at the full rate
    assert used[5] == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # halfway: the cosine's midpoint
    assert used[10:] == pytest.approx([1e-4] * 4)  # then held at lr * lr_final_fraction
    assert all(a >= b for a, b in zip(used, used[1:], strict=False))
    constant = make_learner(batch, lr=1e-3)
    for _ in range(3):
        constant.update(batch[0])
    assert constant.optimizer.param_groups[0]["lr"] == 1e-3  # lr_decay_updates 0: never touched


def test_polyak_moves_target_every_update(batch):
    learner = make_learner(batch, polyak_tau=0.5)
    before = [p.clone() for p in learner.target.parameters()]
    learner.update(batch[0])
    for b, t, o in zip(before, learner.target.parameters(), learner.online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.5 * (b + o))
    assert learner.target_version == 0


def test_weight_ema_publishes_the_average_of_the_online_weights(batch):
    learner = make_learner(batch, lr=3e-3, weight_ema=0.9)
    expected = {k: v.clone() for k, v in learner.online.state_dict().items()}
    for u in range(1, 7):  # u: the update just taken
        learner.update(batch[0])
        decay = min(0.9, (1 + u) / (10 + u))  # the ramp: 0.18, 0.25, ... then 0.9
        for k, v in learner.online.state_dict().items():
            expected[k] = decay * expected[k] + (1 - decay) * v
    weights, online = learner.snapshot()[1], learner.online.state_dict()
    for k, v in expected.items():
        np.testing.assert_allclose(weights[k], v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    assert any(not np.allclose(weights[k], online[k].numpy()) for k in weights)  # not the online weights
    plain = make_learner(batch, lr=3e-3)
    plain.update(batch[0])
    for k, v in plain.online.state_dict().items():  # off (the default): the online weights themselves
        assert np.array_equal(plain.weights()[k], v.numpy())


def test_weight_ema_survives_a_checkpoint_and_starts_from_online_without_one(batch, tmp_path):
    a = make_learner(batch, lr=3e-3, weight_ema=0.9)
    for _ in range(4):
        a.update(batch[0])
    ck.save_learner_state(tmp_path, a.state_dict())
    state = ck.load_learner_state(tmp_path)
    b = make_learner(batch, lr=3e-3, weight_ema=0.9)
    b.load_state_dict(state)
    for k, v in a.weights().items():
        assert np.array_equal(b.weights()[k], v), k
    a.update(batch[0]), b.update(batch[0])
    for k, v in a.weights().items():  # and the average goes on from there
        np.testing.assert_allclose(b.weights()[k], v, rtol=1e-6, atol=1e-7, err_msg=k)
    c = make_learner(batch, lr=3e-3, weight_ema=0.9)  # turned on at resume from a checkpoint taken without it
    c.load_state_dict({k: v for k, v in state.items() if k != "ema"})
    for k, v in c.online.state_dict().items():
        assert np.array_equal(c.weights()[k], v.numpy()), k


def test_snapshot_round_trips_into_an_actor(batch):
    learner = make_learner(batch)
    learner.update(batch[0])
    version, weights = learner.snapshot()
    assert version == learner.version == 1 and all(isinstance(v, np.ndarray) for v in weights.values())
    actor = Actor(EnvConfig(task="tests.fakes:FeedbackEnv", envs_per_actor=4), NET, ActorConfig(), 0, 1, 5)
    actor.load_weights(version, weights)
    for k, v in learner.online.state_dict().items():
        assert torch.equal(actor.network.state_dict()[k], v)
    assert learner.snapshot()[0] == 2


def test_state_dict_round_trip_continues_identically(batch):
    a = make_learner(batch, target_sync_interval_updates=2)
    for _ in range(3):
        a.update(batch[0])
    state = a.state_dict()
    b = make_learner(batch, target_sync_interval_updates=2)
    b.load_state_dict(state)
    assert (b.updates, b.version, b.target_version) == (a.updates, a.version, a.target_version)
    td_a, _ = a.update(batch[0])
    td_b, _ = b.update(batch[0])
    np.testing.assert_allclose(td_a, td_b, rtol=1e-6, atol=1e-6)
    for (k, x), y in zip(a.online.state_dict().items(), b.online.state_dict().values(), strict=True):
        assert torch.equal(x, y), k


def test_state_dict_is_weights_only_loadable(batch, tmp_path):
    learner = make_learner(batch)
    learner.update(batch[0])
    torch.save(learner.state_dict(), tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)
    other = make_learner(batch)
    other.load_state_dict(loaded)
    assert other.updates == learner.updates == 1
    for (k, x), y in zip(learner.online.state_dict().items(), other.online.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    assert other.optimizer.state_dict()["state"].keys() == learner.optimizer.state_dict()["state"].keys()


def test_masked_batch_updates(batch):
    fields, vocab, _ = batch
    masked = dict(fields)
    masked[spec.MASK_NEXT] = np.packbits(np.ones((len(fields[spec.ACTION]), vocab), bool), axis=-1, bitorder="little")
    td, m = make_learner(batch).update(masked)
    assert np.isfinite(td).all() and np.isfinite(metrics_to_floats(m)["loss"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("bf16", [False, True])
def test_cuda_update_matches_cpu(batch, bf16):
    cpu = make_learner(batch)
    _, vocab, max_len = batch
    gpu = Learner(NET, LearnerConfig(device="cuda", bf16=bf16), vocab, max_len, seed=0)
    td_cpu, _ = cpu.update(batch[0])
    td_gpu, m = gpu.update(batch[0])
    assert np.isfinite(metrics_to_floats(m)["loss"]) and gpu.snapshot()[1]["head.advantage.weight"].dtype == np.float32
    np.testing.assert_allclose(td_gpu, td_cpu, atol=5e-2 if bf16 else 1e-3)


def test_bf16_autocast_on_cpu_stays_close_to_float32(batch):
    fields, vocab, max_len = batch
    fp32 = make_learner(batch)
    bf16 = Learner(NET, LearnerConfig(device="cpu", bf16=True), vocab, max_len, seed=0)
    td_fp32, _ = fp32.update(fields)
    td_bf16, m = bf16.update(fields)
    assert np.isfinite(metrics_to_floats(m)["loss"]) and bf16.snapshot()[1]["head.advantage.weight"].dtype == np.float32
    assert not np.array_equal(td_bf16, td_fp32)  # autocast took effect
    np.testing.assert_allclose(td_bf16, td_fp32, atol=5e-2)


def params(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize(
    ("field", "value"), [(spec.RETURN, np.nan), (spec.RETURN, np.inf), (spec.WEIGHT, np.nan), (spec.DISCOUNT, np.inf)]
)
def test_a_non_finite_loss_skips_the_step_and_is_counted(batch, field, value):
    learner = make_learner(batch, target_sync_interval_updates=1, polyak_tau=0.0)
    learner.update(batch[0])  # Adam has moments: a skipped step must not move them either
    online, target = params(learner.online), params(learner.target)
    adam = {k: v.clone() for k, v in learner.optimizer.state_dict()["state"][0].items()}
    bad = {k: v.copy() for k, v in batch[0].items()}
    bad[field][3] = value
    for i in range(1, 4):
        td, metrics = learner.update(bad)
        assert (learner.updates, learner.skipped_updates, learner.consecutive_skips) == (1, i, i)
        floats = metrics_to_floats(metrics)
        assert (floats["skipped_updates"], floats["consecutive_skips"]) == (i, i)
        assert not np.isfinite(floats["loss"]) or not np.isfinite(floats["grad_norm"])
        assert td.shape == (len(bad[spec.ACTION]),)
    for before, after in zip(online + target, params(learner.online) + params(learner.target), strict=True):
        assert torch.equal(before, after)
    for k, v in learner.optimizer.state_dict()["state"][0].items():
        assert torch.equal(adam[k], v), k
    _, metrics = learner.update(batch[0])  # a good update steps and resets the run of skips
    assert (learner.updates, learner.skipped_updates, learner.consecutive_skips) == (2, 3, 0)
    assert metrics_to_floats(metrics)["consecutive_skips"] == 0.0
    learner.snapshot()  # and the weights stayed finite
    assert learner.state_dict()["counters"]["skipped_updates"] == 3


def test_non_finite_weights_are_never_handed_out(batch):
    learner = make_learner(batch)
    version, _ = learner.snapshot()
    with torch.no_grad():
        next(learner.online.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(NonFiniteWeightsError, match="online"):
        learner.snapshot()
    assert learner.version == version  # no version was spent on weights nobody may use
    with pytest.raises(NonFiniteWeightsError):
        learner.state_dict()
    learner.sync_target()
    with torch.no_grad():
        next(learner.online.parameters()).view(-1)[0] = 0.0
    with pytest.raises(NonFiniteWeightsError, match="target"):
        learner.state_dict()
