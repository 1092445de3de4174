"""N-step transition assembly for B synchronously stepped envs, with vectorised ring buffers [B, n].

Every call to `NStepAssembler.add` records one env step of all B slots: the step taken at time t in state s_t
(length `len_s`), action a_t, the actor's Q(s_t, a_t), reward r_t, and the flags and observations that followed.
Each slot keeps up to n pending entries (one per step of its current episode not yet emitted); entry k (taken at
time k) carries the partial return G_k = sum_{j=k}^{t} gamma^(j-k) r_j and the running discount gamma^(t+1-k).
All slots step together, so the ring column of time t is t % n for every slot and the common path is a handful of
whole-array numpy operations (no per-slot Python loops).

Emission rules, after recording step t (m = number of rewards an entry has received, m <= n):

  window full (m == n), episode continues  ->  emit with s' = s_{t+1} (the new observation), discount gamma^n
  window not full yet (episode start)      ->  nothing (the first n-1 steps of an episode emit nothing until
                                               their window fills or the episode ends)
  terminated at step t                     ->  flush every pending entry of the slot: s' = the final
                                               observation, discount 0 (no bootstrap), returns over m <= n steps
  truncated at step t (budget, not task)   ->  flush every pending entry with discount gamma^m: the cut state
                                               still bootstraps
  after either, the slot holds a new episode (auto-reset): pending is empty, the next episode starts cleanly, so
  back-to-back episodes in one slot never mix.

The emitted row is the slot's sequence at t+1 (prefix-extending within an episode, so s_k = row[:len_s] for every
pending entry), clipped to the env's max_len. Observations may grow by several tokens per step (feedback tasks):
only lengths are stored, so nothing changes. Emitted in the `spec.py` layout; `mask_next` (tasks with action
masks) is packed with `np.packbits(..., bitorder="little")`; a flushed window has no next mask from the env, so
it stores all-legal (it matters only for truncated windows). With `with_mask_s` (demonstrations) each transition
also carries the packed mask of its own s_t (`mask_s`, given to `add`), and with `with_env_slot` the index of the
slot it came from (`ENV_SLOT`, so a caller can group an episode's transitions).

Initial priorities (Ape-X): |G + discount * max_a Q(s', a) - Q(s, a)| with the actor's own Q-values, where
max_a Q(s', a) is `max_q_next` (the actor's acting forward on the new observation) for full windows and
`max_q_final` (a forward over the final observation) for truncated flushes; not yet raised to the replay's alpha.

Pending windows are not part of `state_dict`: a resumed actor starts fresh episodes.
"""

from __future__ import annotations

import numpy as np

from distdqn import spec
from distdqn.envs.base import Obs, StepInfo

ENV_SLOT = "env_slot"  # with `with_env_slot`: the slot (env index) a transition came from, int32


class NStepAssembler:
    """Assembles n-step transitions for `num_envs` slots; `add` once per env step, `drain` to take the output."""

    def __init__(
        self,
        num_envs: int,
        n: int,
        gamma: float,
        vocab_size: int,
        max_len: int,
        with_mask: bool = False,
        with_mask_s: bool = False,
        with_env_slot: bool = False,
    ):
        if n < 1:
            raise ValueError(f"n_step must be >= 1, got {n}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.num_envs, self.n, self.gamma = num_envs, n, gamma
        self.vocab_size, self.max_len, self.with_mask = vocab_size, max_len, with_mask
        self.dtypes = spec.transition_dtypes(vocab_size, max_len, with_mask)
        self.token_dtype = self.dtypes[spec.TOKENS][0]
        self.t = 0
        self.len_s = np.zeros((num_envs, n), dtype=np.int16)
        self.action = np.zeros((num_envs, n), dtype=self.token_dtype)
        self.q_sa = np.zeros((num_envs, n), dtype=np.float32)
        self.ret = np.zeros((num_envs, n), dtype=np.float32)
        self.disc = np.ones((num_envs, n), dtype=np.float32)
        self.valid = np.zeros((num_envs, n), dtype=bool)
        self.with_mask_s, self.with_env_slot = with_mask_s, with_env_slot
        self.mask_s = np.zeros((num_envs, n, (vocab_size + 7) // 8), np.uint8) if with_mask_s else None  # packed
        self._parts: list[tuple[dict[str, np.ndarray], np.ndarray]] = []

    def clear(self) -> None:
        """Drop pending windows and undrained output (e.g. when the actor restarts its episodes)."""
        self.valid[:] = False
        self._parts = []

    def pending(self) -> np.ndarray:
        """Pending (not yet emitted) entries per slot: [B]."""
        return self.valid.sum(axis=1)

    def add(
        self,
        len_s: np.ndarray,
        action: np.ndarray,
        q_sa: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        obs: Obs,
        info: StepInfo,
        max_q_next: np.ndarray,
        max_q_final: np.ndarray | None = None,
        mask_s: np.ndarray | None = None,
    ) -> int:
        """Record step t of all slots; returns how many transitions it completed.

        len_s, action, q_sa, reward, terminated, max_q_next: [B]; `obs`/`info`: what `env.step` returned (obs is
        only read here, never kept); max_q_final: [len(info.done_idx)] (read where truncated), or None for 0.
        Truncation is implied: a slot in `info.done_idx` that is not terminated was truncated. mask_s: [B, V] bool,
        the action mask the step was taken under (required with `with_mask_s`).
        """
        col = self.t % self.n
        if self.with_mask_s:
            if mask_s is None:
                raise ValueError("NStepAssembler(with_mask_s=True).add needs mask_s, the [B, V] mask of s_t")
            self.mask_s[:, col] = np.packbits(mask_s, axis=-1, bitorder="little")
        self.len_s[:, col] = len_s
        self.action[:, col] = action
        self.q_sa[:, col] = q_sa
        self.ret[:, col] = 0.0
        self.disc[:, col] = 1.0
        self.valid[:, col] = True
        self.ret += self.disc * reward[:, None]  # invalid columns accumulate garbage that is never read
        self.disc *= self.gamma
        emitted = 0
        done = info.done_idx
        if done.size:
            which, cols = np.nonzero(self.valid[done])  # pending entries of finished slots
            slots = done[which]
            discount = np.where(terminated[slots], 0.0, self.disc[slots, cols]).astype(np.float32)
            boot = np.zeros(which.size, np.float32) if max_q_final is None else max_q_final[which]
            mask = np.ones((which.size, self.vocab_size), bool) if self.with_mask else None
            emitted += self._emit(slots, cols, info.final_tokens[which], info.final_length[which], discount, boot, mask)
            self.valid[done] = False
        old = (self.t + 1) % self.n  # the entry recorded n steps ago has n rewards now
        ready = np.flatnonzero(self.valid[:, old])
        if ready.size:
            cols = np.full(ready.size, old)
            mask = obs.action_mask[ready] if self.with_mask else None
            emitted += self._emit(
                ready, cols, obs.tokens[ready], obs.length[ready], self.disc[ready, old], max_q_next[ready], mask
            )
            self.valid[ready, old] = False
        self.t += 1
        return emitted

    def _emit(self, slots, cols, rows, len_next, discount, boot, mask) -> int:
        ret = self.ret[slots, cols]
        boot = np.where(discount > 0, boot, 0.0)  # a terminal s' may have no legal action (-inf)
        priority = np.abs(ret + discount * boot - self.q_sa[slots, cols]).astype(np.float32)
        out = {
            spec.TOKENS: rows[:, : self.max_len].astype(self.token_dtype),
            spec.LEN_S: self.len_s[slots, cols],
            spec.LEN_NEXT: np.minimum(len_next, self.max_len).astype(np.int16),
            spec.ACTION: self.action[slots, cols],
            spec.RETURN: ret,
            spec.DISCOUNT: discount.astype(np.float32, copy=False),
        }
        if self.with_mask:
            out[spec.MASK_NEXT] = np.packbits(mask, axis=-1, bitorder="little")
        if self.with_mask_s:
            out[spec.MASK_S] = self.mask_s[slots, cols]
        if self.with_env_slot:
            out[ENV_SLOT] = slots.astype(np.int32)
        self._parts.append((out, priority))
        return slots.size

    def drain(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Everything emitted since the last drain: (transitions in the spec layout, initial priorities [N])."""
        parts, self._parts = self._parts, []
        if not parts:
            empty = spec.empty_batch(self.vocab_size, self.max_len, 0, self.with_mask)
            if self.with_mask_s:
                empty[spec.MASK_S] = np.zeros((0, self.mask_s.shape[-1]), np.uint8)
            if self.with_env_slot:
                empty[ENV_SLOT] = np.zeros(0, np.int32)
            return empty, np.zeros(0, np.float32)
        fields = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
        return fields, np.concatenate([p[1] for p in parts])
