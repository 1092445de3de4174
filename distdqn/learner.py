"""The Learner: online and target Q-networks, one double-DQN update per sampled batch, versioned weight snapshots.

One `update(batch)` (batch = spec fields + importance `weight`, numpy):

    tokens cropped to max(len_next) on the host, copied to the device (pinned + non_blocking on CUDA)
    q_tm1, q_t_online  <- ONE online forward over the shared token rows (positions len_s-1, len_next-1)
    q_t_target         <- ONE target forward (position len_next-1)
    loss, |td|         <- losses.double_dqn_loss (importance-weighted Huber or MSE)
    Adam step with gradient-norm clipping (`max_grad_norm`), at `schedules.lr_at(updates)` (constant unless
    `lr_decay_updates` is set: a function of the update count, so a resumed run continues the schedule)

Two implementations of the same update, chosen once by `learner.impl`: `reference` runs the lines above as
written; `fast` (the default) reads Q(s, .) with autograd only at the action taken (`losses.transition_q_taken`:
no [B, V] head product or copy-head scatter in the backward), and uses PyTorch's fused AdamW kernel and foreach
gradient clipping (one kernel over all parameters instead of one per tensor). Same maths, same state-dict keys
(checkpoints load across the two); losses and parameter updates agree to float rounding
(tests/unit/test_learner_fast.py). The README's "Learner speed" section has the measurements.
    demonstrations (optional, `learner.demo_*`; distdqn/demonstrations.py): `update(batch, demo)` adds the TD and
            DQfD large-margin losses of oracle transitions to the step; `demo_update(demo)` steps on them alone
            (the pre-training phase). The runtimes own the demonstration stream and decide which to call.
    target: hard copy every `target_sync_interval_updates` updates, or Polyak averaging every update when
            `polyak_tau` > 0 (a deviation from Ape-X's hard syncs, opt-in)

Returns the new |td| [B] (the replay's new priorities before its exponent) and a metrics dict of detached 0-d
tensors. Copying |td| to the host is the one sync point per update (the replay needs it); the metrics stay on the
device until a caller logs them with `metrics_to_floats` (on a GPU each float() would be a sync of its own).
`snapshot()` bumps `version` and returns the online weights as CPU numpy arrays for the actors.

Non-finite numbers: an update whose loss or gradient norm is NaN or inf takes no optimizer step (counted in
`skipped_updates` and `consecutive_skips`); `snapshot()` and `state_dict()` raise `NonFiniteWeightsError` rather than
hand out a NaN or inf weight (one check per publication or checkpoint, on the host copies they make anyway).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from distdqn import spec
from distdqn.config import LearnerConfig, NetworkConfig
from distdqn.losses import (
    LossOutput,
    double_dqn_loss,
    large_margin_loss,
    td_loss,
    transition_q_taken,
    transition_q_values,
)
from distdqn.networks import build_network, load_published, mask_q, unpack_mask
from distdqn.schedules import lr_at


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def metrics_to_floats(metrics: dict[str, torch.Tensor | float]) -> dict[str, float]:
    """`Learner.update`'s metrics as Python floats, for a log record: one device-to-host copy for all the tensors
    (plain numbers pass through)."""
    out = {k: float(v) for k, v in metrics.items() if not isinstance(v, torch.Tensor)}
    tensors = {k: v.detach().float().reshape(()) for k, v in metrics.items() if isinstance(v, torch.Tensor)}
    if len({v.device for v in tensors.values()}) == 1:
        out.update(zip(tensors, torch.stack(list(tensors.values())).tolist(), strict=True))
    else:
        out.update({k: float(v) for k, v in tensors.items()})
    return {k: out[k] for k in metrics}


class NonFiniteWeightsError(RuntimeError):
    """A weight of the learner's network is NaN or inf; raised instead of handing it to actors or a checkpoint."""


def _check_finite(weights: dict[str, np.ndarray | torch.Tensor], net: str) -> None:
    """Raise `NonFiniteWeightsError` naming the first floating-point tensor of `weights` with a NaN or inf."""
    for name, value in weights.items():
        t = torch.as_tensor(value)  # no copy
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise NonFiniteWeightsError(f"{net} weight {name!r} holds NaN or inf")


class Learner:
    """Double-DQN learner over stored n-step transitions (see the module docstring)."""

    def __init__(
        self,
        network_config: NetworkConfig,
        learner_config: LearnerConfig,
        vocab_size: int,
        max_len: int,
        seed: int,
        token_values: np.ndarray | None = None,  # the task's numeric_token_values, for network.numeric_embedding
    ):
        self.config = learner_config
        self.vocab_size, self.max_len = vocab_size, max_len
        self.device = resolve_device(learner_config.device)
        if self.device.type == "cpu":
            torch.set_num_threads(learner_config.num_threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.online = build_network(network_config, vocab_size, max_len, token_values).to(self.device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self._published = self.online.published_names()  # all of it, or the Q-head + adapters of a frozen LM
        self._trainable = [p for p in self.online.parameters() if p.requires_grad]
        self._fast = learner_config.impl == "fast"
        self.optimizer = torch.optim.AdamW(
            self._trainable,
            lr=learner_config.lr,
            eps=learner_config.adam_eps,
            weight_decay=learner_config.weight_decay,  # 0 (the default) is plain Adam
            fused=self._fast or None,
        )
        self.updates = 0  # optimizer steps taken
        self.skipped_updates = 0  # updates whose loss or gradient norm was NaN/inf: no optimizer step was taken
        self.consecutive_skips = 0  # skipped updates since the last good one (a run may stop after too many)
        self.version = 0  # weights version: bumped by each snapshot()
        self.target_version = 0  # number of hard target syncs so far
        self._autocast = learner_config.bf16  # CUDA, or a CPU with bf16 matrix units (README "Learner speed")
        self._ema: dict[str, torch.Tensor] | None = None  # `learner.weight_ema`: the published weights' average
        self._ema_pairs: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])  # (averages, live online tensors)
        self._reset_ema()

    def _reset_ema(self) -> None:
        """(Re)start the weights' average from the online weights; nothing while `learner.weight_ema` is 0."""
        if self.config.weight_ema == 0:
            return
        state = self.online.state_dict()  # views of the live tensors: they change with every step
        live = {k: state[k] for k in self._published if state[k].is_floating_point()}
        self._ema = {k: v.clone() for k, v in live.items()}
        self._ema_pairs = (list(self._ema.values()), list(live.values()))

    def _update_ema(self) -> None:
        """One step of the weights' moving average; the decay ramps up (0.18 after the first update) so the random
        initial weights fade fast."""
        decay = min(self.config.weight_ema, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            torch._foreach_lerp_(*self._ema_pairs, 1.0 - decay)

    def _to_device(self, array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(array))
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, dtype=dtype, non_blocking=True)
        return t.to(dtype=dtype) if dtype is not None else t

    def _tensors(self, batch: dict[str, np.ndarray]) -> tuple:
        """A batch's fields on the device: (tokens, len_s, len_next, action, return, discount, weight, mask)."""
        crop = int(batch[spec.LEN_NEXT].max())  # shorter rows: less transfer and trunk work
        tokens = self._to_device(batch[spec.TOKENS][:, :crop].astype(np.int64, copy=False))
        len_s = self._to_device(batch[spec.LEN_S], torch.long)
        len_next = self._to_device(batch[spec.LEN_NEXT], torch.long)
        action = self._to_device(batch[spec.ACTION].astype(np.int64, copy=False))
        ret = self._to_device(batch[spec.RETURN])
        discount = self._to_device(batch[spec.DISCOUNT])
        weight = self._to_device(batch[spec.WEIGHT]) if spec.WEIGHT in batch else None
        mask = None
        if spec.MASK_NEXT in batch:
            mask = unpack_mask(self._to_device(batch[spec.MASK_NEXT]), self.vocab_size)
        return tokens, len_s, len_next, action, ret, discount, weight, mask

    def update(
        self, batch: dict[str, np.ndarray], demo: dict[str, np.ndarray] | None = None
    ) -> tuple[np.ndarray, dict[str, torch.Tensor | float]]:
        """One gradient step on a sampled batch; returns (|td| [B] float32, metrics as detached 0-d tensors: `loss`,
        `grad_norm`, `q_mean`, `target_mean`, `abs_td_mean`, `terminal_fraction`, and floats `skipped_updates`,
        `consecutive_skips`; see `metrics_to_floats`). With `demo` (demonstration transitions, `DemoStream.next`)
        the step also takes their TD and large-margin losses (`demo_loss`): metrics `demo_td_loss`,
        `demo_margin_loss`, `demo_accuracy`.

        A non-finite loss or gradient norm skips the step: weights, Adam moments, target and `updates` stay as they
        were, `skipped_updates` and `consecutive_skips` count it (a good update resets the latter)."""
        self.online.train()
        loss_of = self._fast_loss if self._fast else self._reference_loss
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
            out = loss_of(*self._tensors(batch))
            loss, metrics = out.loss, dict(out.metrics)
            if demo is not None:
                demo_loss, demo_metrics = self.demo_loss(demo)
                loss = loss + demo_loss
                metrics.update(demo_metrics)
        abs_td, metrics = self._step(loss, out.abs_td, metrics)
        return abs_td, metrics

    def demo_update(self, demo: dict[str, np.ndarray]) -> dict[str, torch.Tensor | float]:
        """One gradient step on demonstrations alone (DQfD's pre-training phase); the metrics of `update`."""
        self.online.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
            loss, metrics = self.demo_loss(demo)
        return self._step(loss, None, metrics)[1]

    def demo_loss(self, demo: dict[str, np.ndarray]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`demo_td_weight` * TD loss (unweighted by priority) + `demo_margin_weight` * large-margin loss on
        demonstration transitions, and their metrics. Q(s, .) over the whole vocabulary with autograd: the margin
        compares every token with the oracle's, or only the legal ones where the task masks actions
        (`demo_legal_only`, the batch's `mask_s`). A batch of whole episodes (`spec.ROW`, `learner.demo_episodes`)
        reads all of an episode's transitions from one pass over its row; each loss is a mean over transitions. With
        `demo_td_weight` 0 the TD part is not computed at all (no target forward, no `demo_td_loss` metric)."""
        c = self.config
        tokens, len_s, len_next, action, ret, discount, _, mask = self._tensors(demo)
        rows = self._to_device(demo[spec.ROW], torch.long) if spec.ROW in demo else None  # whole episodes
        target = self.target if c.demo_td_weight else None
        q_tm1, q_t_online, q_t_target = transition_q_values(self.online, target, tokens, len_s, len_next, rows)
        loss, metrics = 0.0, {}
        if target is not None:
            td = double_dqn_loss(q_tm1, action, ret, discount, q_t_online, q_t_target, None, mask, **self._loss_kw())
            loss, metrics = c.demo_td_weight * td.loss, {"demo_td_loss": td.loss.detach()}
        if c.demo_legal_only and spec.MASK_S in demo:  # illegal tokens are never acted on: no rivals
            q_tm1 = mask_q(q_tm1, unpack_mask(self._to_device(demo[spec.MASK_S]), self.vocab_size))
        margin, accuracy = large_margin_loss(q_tm1, action, c.demo_margin, c.demo_temperature)
        metrics |= {"demo_margin_loss": margin.detach(), "demo_accuracy": accuracy}
        return loss + c.demo_margin_weight * margin, metrics

    def _step(
        self, loss: torch.Tensor, abs_td: torch.Tensor | None, metrics: dict[str, torch.Tensor]
    ) -> tuple[np.ndarray, dict[str, torch.Tensor | float]]:
        """Backward, clip, and the optimizer step when loss and gradient norm are finite; (|td| on the host,
        metrics)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self._trainable, self.config.max_grad_norm, foreach=self._fast or None
        )
        # The one sync point per update: |td| for the replay, and with it whether loss and gradient norm are finite
        # (a NaN or inf anywhere in the gradients makes the norm NaN or inf), so the step below can be skipped.
        finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm.detach())
        flag = finite.float().reshape(1)
        host = (flag if abs_td is None else torch.cat([abs_td.detach().float().reshape(-1), flag])).cpu().numpy()
        abs_td_host, ok = host[:-1], bool(host[-1])
        if ok:
            if self.config.lr_decay_updates:
                lr = lr_at(self.config, self.updates)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            self.optimizer.step()
            self.updates += 1
            self.consecutive_skips = 0
            self._update_target()
            if self._ema is not None:
                self._update_ema()
        else:  # weights, optimizer moments and target untouched; the replay ignores the non-finite |td|
            self.skipped_updates += 1
            self.consecutive_skips += 1
        metrics = {
            **metrics,
            "loss": loss.detach(),
            "grad_norm": grad_norm.detach(),
            "skipped_updates": float(self.skipped_updates),
            "consecutive_skips": float(self.consecutive_skips),
        }
        return abs_td_host, metrics

    def _reference_loss(self, tokens, len_s, len_next, action, ret, discount, weight, mask) -> LossOutput:
        """The loss with Q(s, .) over the whole vocabulary, then the action's entry (`learner.impl: reference`)."""
        q_tm1, q_t_online, q_t_target = transition_q_values(self.online, self.target, tokens, len_s, len_next)
        return double_dqn_loss(q_tm1, action, ret, discount, q_t_online, q_t_target, weight, mask, **self._loss_kw())

    def _fast_loss(self, tokens, len_s, len_next, action, ret, discount, weight, mask) -> LossOutput:
        """The same loss from Q(s, a) of the action taken only (`learner.impl: fast`)."""
        q_sa, q_t_online, q_t_target = transition_q_taken(self.online, self.target, tokens, len_s, len_next, action)
        return td_loss(q_sa, ret, discount, q_t_online, q_t_target, weight, mask, **self._loss_kw())

    def _loss_kw(self) -> dict:
        c = self.config
        return {"double": c.double_dqn, "loss": c.loss, "huber_delta": c.huber_delta}

    def _update_target(self) -> None:
        tau = self.config.polyak_tau
        if tau > 0:
            with torch.no_grad():
                for p_t, p_o in zip(self.target.parameters(), self.online.parameters(), strict=True):
                    if p_o.requires_grad:  # frozen weights are equal in both networks
                        p_t.lerp_(p_o, tau)
        elif self.updates % self.config.target_sync_interval_updates == 0:
            self.sync_target()

    def sync_target(self) -> None:
        """Hard copy online -> target (the entries training changes; a frozen trunk is equal in both)."""
        state = self.online.state_dict()
        self.target.load_state_dict({k: state[k] for k in self._published}, strict=False)
        self.target_version += 1

    def snapshot(self) -> tuple[int, dict[str, np.ndarray]]:
        """Bump `version` and return (version, online weights as CPU numpy arrays) for the actors.

        Raises `NonFiniteWeightsError` (and keeps `version`) when a weight is NaN or inf: actors never get them.
        """
        weights = self.weights()
        _check_finite(weights, "online")  # on the host copy: no extra device sync
        self.version += 1
        return self.version, weights

    def weights(self) -> dict[str, np.ndarray]:
        """The published online weights (`published_names`: only the trainable part of a frozen or adapted LM) as
        CPU float32 numpy arrays (no version bump: for evaluation); `networks.load_published` loads them. With
        `learner.weight_ema` the moving average of the online weights stands in for them."""
        state = self.online.state_dict() | (self._ema or {})
        return {k: state[k].detach().to("cpu", torch.float32).numpy().copy() for k in self._published}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Published weights (from `weights`) into both the online and the target network, and the average restarts
        from them (with `learner.weight_ema` published weights are an average: training goes on from it)."""
        load_published(self.online, weights)
        load_published(self.target, weights)
        self._reset_ema()

    def state_dict(self) -> dict:
        """Tensors and counters: online, target, optimizer, counters (for safetensors + torch.save).

        Raises `NonFiniteWeightsError` when an online or target weight is NaN or inf: no checkpoint holds them."""
        state = {
            "online": {k: v.detach().cpu().clone() for k, v in self.online.state_dict().items()},
            "target": {k: v.detach().cpu().clone() for k, v in self.target.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),  # no aliasing of the live Adam moments
            "counters": {
                "updates": self.updates,
                "version": self.version,
                "target_version": self.target_version,
                "skipped_updates": self.skipped_updates,
            },
        }
        if self._ema is not None:
            state["ema"] = {k: v.detach().cpu().clone() for k, v in self._ema.items()}
        for net in ("online", "target", "ema"):
            if net in state:
                _check_finite(state[net], net)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the saved groups carry the saving run's kernel choice
            group["fused"] = self._fast or None
        counters = state["counters"]
        self.updates = int(counters["updates"])
        self.version = int(counters["version"])
        self.target_version = int(counters["target_version"])
        self.skipped_updates = int(counters.get("skipped_updates", 0))  # absent in older checkpoints
        self.consecutive_skips = 0
        self._reset_ema()  # a checkpoint without an average (older, or taken with it off) starts it from online
        if self._ema is not None and "ema" in state:
            for k, v in self._ema.items():
                v.copy_(state["ema"][k])
