"""The TD loss: double DQN on n-step transitions, as pure functions of Q-values (plus the one-forward Q read-out).

Legend (one stored transition, DESIGN.md section 3; `tm1` = time t-1 = the state the action was taken in,
`t` = the bootstrap state n steps later):

  q_tm1          [B, V]  Q_online(s, .)        read at position len_s - 1 of the token row
  a_tm1          [B]     the action taken in s
  r_t            [B]     return_n = sum_{k<m} gamma^k r_k      (m <= n steps actually taken)
  discount_t     [B]     discount_n = gamma^m, or 0 when the episode terminated inside the window
  q_t_online     [B, V]  Q_online(s', .)       read at position len_next - 1 (same forward as q_tm1)
  q_t_target     [B, V]  Q_target(s', .)       one target forward over the same row
  mask_t         [B, V]  legal actions in s' (pad is never legal)

  double DQN:  a*_t = argmax_a mask(q_t_online)(a),   bootstrap = q_t_target[a*_t]
  vanilla:     bootstrap = max_a mask(q_t_target)(a)
  target     = r_t + discount_t * bootstrap          (no gradient)
  td         = target - q_tm1[a_tm1]
  loss       = mean_b( weight_b * rho(td_b) ),  rho = Huber(delta) or td^2 / 2

Terminated windows have discount_t = 0, so nothing is bootstrapped (and a terminal s' whose every action is
masked, giving -inf, is zeroed rather than multiplied). Truncated windows bootstrap with gamma^m.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from distdqn.networks import QNetwork, mask_q


@dataclasses.dataclass
class LossOutput:
    loss: torch.Tensor  # scalar, differentiable
    abs_td: torch.Tensor  # [B], detached: new priorities before the replay's exponent
    metrics: dict[str, torch.Tensor]  # detached scalars (call .item() when logging, not per update on GPU)


def double_dqn_loss(
    q_tm1: torch.Tensor,
    a_tm1: torch.Tensor,
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    q_t_online: torch.Tensor,
    q_t_target: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask_t: torch.Tensor | None = None,
    double: bool = True,
    loss: str = "huber",
    huber_delta: float = 1.0,
) -> LossOutput:
    """Importance-weighted n-step (double) DQN loss; see the module docstring for the maths and shapes."""
    q_sa = q_tm1.float().gather(1, a_tm1.long()[:, None]).squeeze(1)  # [B]
    return td_loss(q_sa, r_t, discount_t, q_t_online, q_t_target, weight, mask_t, double, loss, huber_delta)


def td_loss(
    q_sa: torch.Tensor,
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    q_t_online: torch.Tensor,
    q_t_target: torch.Tensor,
    weight: torch.Tensor | None = None,
    mask_t: torch.Tensor | None = None,
    double: bool = True,
    loss: str = "huber",
    huber_delta: float = 1.0,
) -> LossOutput:
    """`double_dqn_loss` from q_sa = Q_online(s, a_tm1) [B] (already read out, e.g. by `QNetwork.q_taken`)."""
    if loss not in ("huber", "mse"):
        raise ValueError(f"loss must be 'huber' or 'mse', got {loss!r}")
    q_sa = q_sa.float()
    with torch.no_grad():
        if double:
            a_t = mask_q(q_t_online.float(), mask_t).argmax(dim=-1)  # [B]
            bootstrap = q_t_target.float().gather(1, a_t[:, None]).squeeze(1)  # [B]
        else:
            bootstrap = mask_q(q_t_target.float(), mask_t).max(dim=-1).values  # [B]
        bootstrap = torch.where(discount_t > 0, bootstrap, torch.zeros_like(bootstrap))
        target = r_t.float() + discount_t.float() * bootstrap  # [B]
    td = target - q_sa  # [B]
    if loss == "huber":
        per_item = F.huber_loss(q_sa, target, reduction="none", delta=huber_delta)
    else:
        per_item = 0.5 * td.square()
    if weight is not None:
        per_item = per_item * weight.float()
    abs_td = td.detach().abs()
    metrics = {
        "q_mean": q_sa.detach().mean(),
        "target_mean": target.mean(),
        "abs_td_mean": abs_td.mean(),
        "terminal_fraction": (discount_t == 0).float().mean(),
    }
    return LossOutput(loss=per_item.mean(), abs_td=abs_td, metrics=metrics)


def transition_q_values(
    online: QNetwork,
    target: QNetwork | None,
    tokens: torch.Tensor,
    len_s: torch.Tensor,
    len_next: torch.Tensor,
    rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(q_tm1, q_t_online, q_t_target), each [N, V], from ONE online and ONE target forward over the shared rows.

    tokens [B, L] long (the rows may be cropped to max(len_next)); len_s, len_next [N] long. Without `rows`, N = B
    and transition i is row i. With `rows` [N] long (non-decreasing: an episode's transitions together; the
    `spec.ROW` layout of episode demonstrations) transition i reads row rows[i]: each row's forward serves all of
    its transitions, at the positions len_s - 1 and len_next - 1 of every one. With `target` None (a loss that
    needs no bootstrap: the large margin alone) only Q(s, .): (q_tm1, None, None), and no target forward.
    """
    if rows is None:  # one transition per row
        rows = torch.arange(len_s.shape[0], device=tokens.device)
        slot, k = torch.zeros_like(rows), 1
    else:
        rows = rows.long()
        counts = torch.bincount(rows, minlength=tokens.shape[0])  # transitions per row
        k = int(counts.max())
        slot = torch.arange(rows.numel(), device=rows.device) - (torch.cumsum(counts, 0) - counts)[rows]  # in row
    reads = 2 * k if target is not None else k  # s then s' of each transition, or s alone
    positions = torch.zeros(tokens.shape[0], reads, dtype=torch.long, device=tokens.device)  # padding reads 0
    positions[rows, slot] = len_s.long() - 1
    if target is None:
        return online.q_at(tokens, positions)[rows, slot], None, None
    positions[rows, k + slot] = len_next.long() - 1
    q_online = online.q_at(tokens, positions)  # [B, 2k, V]
    with torch.no_grad():
        q_t_target = target.q_at(tokens, positions[:, k:])[rows, slot]  # [N, V]
    return q_online[rows, slot], q_online[rows, k + slot].detach(), q_t_target


def transition_q_taken(
    online: QNetwork,
    target: QNetwork,
    tokens: torch.Tensor,
    len_s: torch.Tensor,
    len_next: torch.Tensor,
    a_tm1: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q_sa [B], q_t_online [B, V], q_t_target [B, V]): `transition_q_values` with Q(s, .) read only at the action
    taken, the learner's fast path (`learner.impl: fast`). Same two forwards; the head runs with autograd on one
    entry per row (`QNetwork.q_taken`) and over the full vocabulary only without it, at s', where the bootstrap
    needs every action. Equal to `transition_q_values` up to float rounding (tests/unit/test_learner_fast.py).
    """
    pos_s, pos_next = len_s.long() - 1, len_next.long() - 1  # [B]
    feats = online.features_at(tokens, torch.stack([pos_s, pos_next], dim=1))  # [B, 2, H], with autograd
    q_sa = online.q_taken(feats[:, 0], tokens, pos_s, a_tm1.long())  # [B]
    with torch.no_grad():
        q_t_online = online.q_from_features(feats[:, 1:].detach(), tokens, pos_next[:, None])[:, 0]  # [B, V]
        q_t_target = target.q_at(tokens, pos_next[:, None])[:, 0]  # [B, V]
    return q_sa, q_t_online, q_t_target


def large_margin_loss(
    q: torch.Tensor, a_expert: torch.Tensor, margin: float, temperature: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """DQfD's supervised loss on demonstrations (Hester et al. 2018, eq. 2), and how often the demonstrator's action
    has the highest Q over the vocabulary.

        J_E = mean_b( max_a [Q(s_b, a) + l(a_E, a)] - Q(s_b, a_E) ),   l(a_E, a) = margin for a != a_E, else 0

    q [B, V] Q_online(s, .) with autograd; a_expert [B]. Zero exactly when the demonstrator's action leads every
    other action by at least `margin`; unlike a cross-entropy it leaves the values themselves to the TD loss. Every
    vocabulary entry takes part: a token that is never legal gets pushed below the demonstrated one, which acting
    (masked) never notices.

    `temperature` T > 0 replaces the max by its smooth form T * logsumexp((Q + l) / T) (as T -> 0, the max): every
    action within a few T of the leader gets gradient, not only the worst rival, and the loss still vanishes once
    the demonstrator's action leads by many T (with margin 0 and T = 1 it is CQL's regulariser). Returns (loss,
    accuracy), accuracy detached.
    """
    q = q.float()
    a = a_expert.long()[:, None]
    shifted = q + torch.full_like(q, margin).scatter_(1, a, 0.0)
    if temperature > 0:
        best = temperature * torch.logsumexp(shifted / temperature, dim=1)
    else:
        best = shifted.max(dim=1).values
    loss = (best - q.gather(1, a).squeeze(1)).mean()
    accuracy = (q.detach().argmax(dim=1) == a.squeeze(1)).float().mean()
    return loss, accuracy
