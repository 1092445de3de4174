"""Double-DQN n-step loss: hand-computed targets, and Q read from the shared token row."""

import pytest
import torch

from distdqn.config import NetworkConfig
from distdqn.losses import double_dqn_loss, transition_q_values
from distdqn.networks import build_network

torch.set_num_threads(1)

# One transition, V = 3 (token 0 = pad, never an action; its large Q must be ignored).
Q_TM1 = [0.0, 1.0, 2.0]  # a_tm1 = 1 -> Q(s, a) = 1
Q_T_ONLINE = [10.0, 3.0, 1.0]  # online argmax over {1, 2} = 1
Q_T_TARGET = [10.0, 0.5, 4.0]  # double: Q_target(s', 1) = 0.5; vanilla: max = 4

# name, kwargs, expected target, expected loss
CASES = [
    ("double, huber, small td", dict(discount=0.9), 1.0 + 0.9 * 0.5, 0.5 * 0.45**2),
    ("double, mse", dict(discount=0.9, loss="mse"), 1.45, 0.5 * 0.45**2),
    ("vanilla picks the target's max", dict(discount=0.9, double=False), 1.0 + 0.9 * 4.0, 3.6 - 0.5),
    ("vanilla, mse", dict(discount=0.9, double=False, loss="mse"), 4.6, 0.5 * 3.6**2),
    ("terminated: discount 0, no bootstrap", dict(discount=0.0), 1.0, 0.0),
    ("truncated after 2 steps bootstraps gamma^2", dict(discount=0.81), 1.0 + 0.81 * 0.5, 0.5 * 0.405**2),
    ("importance weight scales the loss", dict(discount=0.9, weight=2.0), 1.45, 2 * 0.5 * 0.45**2),
    ("huber delta 2 keeps td 3.6 linear", dict(discount=0.9, double=False, huber_delta=2.0), 4.6, 2.0 * (3.6 - 1.0)),
    ("mask forbids online argmax -> action 2", dict(discount=0.9, mask=[True, False, True]), 1.0 + 0.9 * 4.0, 3.1),
]


@pytest.mark.parametrize("name,kw,target,expected_loss", CASES, ids=[c[0] for c in CASES])
def test_loss_table(name, kw, target, expected_loss):
    t = torch.tensor
    out = double_dqn_loss(
        q_tm1=t([Q_TM1], requires_grad=True),
        a_tm1=t([1]),
        r_t=t([1.0]),
        discount_t=t([kw["discount"]]),
        q_t_online=t([Q_T_ONLINE]),
        q_t_target=t([Q_T_TARGET]),
        weight=t([kw["weight"]]) if "weight" in kw else None,
        mask_t=t([kw["mask"]]) if "mask" in kw else None,
        double=kw.get("double", True),
        loss=kw.get("loss", "huber"),
        huber_delta=kw.get("huber_delta", 1.0),
    )
    assert out.metrics["target_mean"].item() == pytest.approx(target, abs=1e-6)
    assert out.abs_td.tolist() == pytest.approx([abs(target - 1.0)], abs=1e-6)
    assert out.loss.item() == pytest.approx(expected_loss, abs=1e-5)


def test_terminal_with_every_action_masked_gives_finite_loss():
    t = torch.tensor
    out = double_dqn_loss(
        t([Q_TM1]),
        t([1]),
        t([1.0]),
        t([0.0]),
        t([Q_T_ONLINE]),
        t([Q_T_TARGET]),
        mask_t=t([[False, False, False]]),
        double=False,
    )
    assert torch.isfinite(out.loss) and out.loss.item() == 0.0


def test_gradient_flows_only_through_q_tm1():
    q_tm1 = torch.tensor([Q_TM1], requires_grad=True)
    q_t = torch.tensor([Q_T_ONLINE], requires_grad=True)
    out = double_dqn_loss(
        q_tm1, torch.tensor([1]), torch.tensor([1.0]), torch.tensor([0.9]), q_t, torch.tensor([Q_T_TARGET])
    )
    out.loss.backward()
    assert q_tm1.grad[0].tolist() == pytest.approx([0.0, -0.45, 0.0])
    assert q_t.grad is None


@pytest.mark.parametrize("trunk", ["gru", "transformer"])
def test_shared_row_read_equals_separate_forwards(trunk):
    torch.manual_seed(0)
    cfg = NetworkConfig(trunk=trunk, embed_dim=8, hidden_dim=16, num_layers=1, num_heads=2)
    online, target = build_network(cfg, 12, 10), build_network(cfg, 12, 10)
    tokens = torch.randint(1, 12, (4, 10))
    len_s, len_next = torch.tensor([1, 3, 5, 2]), torch.tensor([4, 6, 10, 3])
    q_tm1, q_t_online, q_t_target = transition_q_values(online, target, tokens, len_s, len_next)
    with torch.no_grad():
        for b in range(4):
            s, s_next = tokens[b : b + 1, : len_s[b]], tokens[b : b + 1, : len_next[b]]
            torch.testing.assert_close(q_tm1[b], online.q_all(s)[0, -1])
            torch.testing.assert_close(q_t_online[b], online.q_all(s_next)[0, -1])
            torch.testing.assert_close(q_t_target[b], target.q_all(s_next)[0, -1])
