"""The learner's side of the sharded replay: prefetched sampling across K `ReplayShardWorker`s with globally
normalised importance weights, and fire-and-forget priority updates."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, ObjectLostError, OwnerDiedError, RayActorError

from distdqn import spec, wire
from distdqn.replay import RateLimiter, allocate, global_weights

# A shard that died, was killed, or whose answer was lost with it: its part of a batch is dropped, never raised.
SHARD_FAILURES = (RayActorError, GetTimeoutError, OwnerDiedError, ObjectLostError)


@dataclass
class _Request:
    refs: dict[Any, int]  # ObjectRef -> shard
    beta: float
    batch_size: int
    batches: int  # batches drawn by this one round of calls (each shard answers all of them at once)
    issued_s: float


class ShardedReplayClient:
    """The learner's view of K shards: prefetched sampling across them and fire-and-forget priority updates.

    Allocation uses each shard's latest known priority total, refreshed from every sample answer (and `refresh()`),
    so it lags by about the prefetch depth: inserts and priority updates landing after a shard's last answer are
    not seen until its next one. The importance weights use the same snapshot of global N and min priority (the
    batch's own priorities also bound the min, so no weight exceeds 1). With prefetch p the draw is thus from the
    distribution of at most p batches ago, the usual Ape-X trade of exactness for throughput.

    One request may draw several batches (`request(..., batches=m)`): m x batch_size items are allocated across the
    shards in one round of calls (a remote call costs the learner about as much CPU as decoding its answer), then
    shuffled and dealt into m batches. Every item is still drawn with its global probability P(i); what changes is
    only that the m batches share one snapshot of the priorities, as m prefetched batches would.

    The schema (field -> dtype, per-item shape) may be given or, when None, is taken from the first `refresh()`
    answer (every shard declares its fields in `stats()`); decoding stays strict either way. Call `refresh()` (or
    `refresh_if_stale()`) before the first `request`: until a shard has reported a positive total nothing is sampled.

    A shard whose actor died (RayActorError) is dropped from allocation and listed in `dead`; one that does not
    answer within `call_timeout_s` has its part of that batch abandoned and is counted in `timeouts`; the batch
    then has fewer items than asked. Sampling goes on from the live shards; when none holds items, `request` and
    `sample` return False / None (the learner waits). `replace_shard(k, handle)` swaps in a restarted shard: its
    answers count from then on, those still due from the old one are dropped, and the global insert count keeps the
    old incarnation's inserts (the rate limiter must not owe samples to inserts it already served).
    """

    def __init__(
        self,
        shard_handles: Sequence[Any],
        schema: spec.Schema | None = None,
        rate_limiter: RateLimiter | None = None,
        seed: int = 0,
        call_timeout_s: float = 60.0,
        max_pending_updates: int = 64,
        coalesce_updates: int = 4,
    ):
        self.handles = list(shard_handles)
        self.schema = schema
        self.limiter = rate_limiter
        self.rng = np.random.default_rng(seed)
        self.call_timeout_s = call_timeout_s
        self.max_pending_updates = max_pending_updates
        self.coalesce_updates = coalesce_updates  # batches of |TD| sent together (one call per shard per send)
        k = len(self.handles)
        self.totals = np.zeros(k)
        self.mins = np.full(k, np.inf)
        self.sizes = np.zeros(k, dtype=np.int64)
        self._reported_inserted = np.zeros(k, dtype=np.int64)  # as the shard's current incarnation reports it
        self._earlier_inserted = np.zeros(k, dtype=np.int64)  # inserts of the shard's earlier incarnations
        self.replaced = 0
        self.dead: dict[int, str] = {}
        self.timeouts = 0
        self.bad_answers = 0
        self.last_error = ""
        self.updates_applied = 0
        self._refreshed_s = -math.inf  # monotonic time of the latest shard report
        self._pending: collections.deque[_Request] = collections.deque()
        self._ready: collections.deque[dict[str, np.ndarray]] = collections.deque()  # dealt, not yet returned
        self._updates: collections.deque[tuple[Any, int]] = collections.deque()
        self._unsent: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (shard, slot, gen, |td|)

    # ---- shard bookkeeping -------------------------------------------------------------------------------------

    @property
    def inserted(self) -> np.ndarray:
        """[K] items ever inserted per shard, earlier incarnations of a replaced shard included."""
        return self._earlier_inserted + self._reported_inserted

    def replace_shard(self, k: int, handle: Any) -> None:
        """Use `handle` for shard `k` from now on (a new incarnation, empty or restored: its totals arrive with the
        next `refresh()`). Sample answers and priority updates still due from the old handle are dropped."""
        self.handles[k] = handle
        self.dead.pop(k, None)
        self.replaced += 1
        self.totals[k], self.mins[k], self.sizes[k] = 0.0, np.inf, 0
        self._earlier_inserted[k] += self._reported_inserted[k]
        self._reported_inserted[k] = 0
        for request in self._pending:
            request.refs = {ref: shard for ref, shard in request.refs.items() if shard != k}
        self._updates = collections.deque((ref, shard) for ref, shard in self._updates if shard != k)
        self._refreshed_s = -math.inf  # refresh at the next chance

    def _live(self) -> list[int]:
        return [k for k in range(len(self.handles)) if k not in self.dead]

    def _gather(self, refs: dict[Any, int], timeout_s: float) -> list[tuple[int, Any]]:
        """(shard, result) of the refs ready within `timeout_s` (one ray.wait, one ray.get); dead shards recorded."""
        if not refs:
            return []
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        try:
            return [(refs[r], value) for r, value in zip(ready, ray.get(ready, timeout=timeout_s), strict=True)]
        except SHARD_FAILURES:
            pass
        # Some ready ref holds an actor error: fetch them one by one (all are ready, none blocks) to find which.
        out = []
        for ref in ready:
            try:
                out.append((refs[ref], ray.get(ref, timeout=timeout_s)))
            except SHARD_FAILURES as error:
                self._mark_dead(refs[ref], error)
        return out

    def _mark_dead(self, shard: int, error: Exception) -> None:
        self.dead[shard] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        self.totals[shard] = 0.0
        self.sizes[shard] = 0

    def _note(self, shard: int, meta: dict[str, Any]) -> None:
        self._refreshed_s = time.monotonic()
        self.totals[shard] = meta["total"]
        self.mins[shard] = meta["min"]
        self.sizes[shard] = meta["size"]
        self._reported_inserted[shard] = meta["inserted"]

    def refresh(self, timeout_s: float | None = None) -> dict[int, dict[str, Any]]:
        """Fetch every live shard's stats at once (one ray.wait) and update the allocation totals."""
        refs = {self.handles[k].stats.remote(): k for k in self._live()}
        stats = dict(self._gather(refs, self.call_timeout_s if timeout_s is None else timeout_s))
        self.timeouts += sum(1 for k in refs.values() if k not in stats and k not in self.dead)
        for k, shard_stats in stats.items():
            if self.schema is None:
                self.schema = {name: (np.dtype(d), tuple(shape)) for name, (d, shape) in shard_stats["fields"].items()}
            self._note(k, shard_stats)
        return stats

    def refresh_if_stale(self, max_age_s: float = 1.0) -> tuple[int, int]:
        """`refresh()` when no shard reported for `max_age_s` or none has items yet; returns global (size, inserted)."""
        if self.totals.sum() <= 0 or time.monotonic() - self._refreshed_s > max_age_s:
            self.refresh()
        return int(self.sizes.sum()), int(self.inserted.sum())

    # ---- sampling ----------------------------------------------------------------------------------------------

    def can_sample(self, batch_size: int) -> bool:
        """The global rate limit (when one is set) on the latest known shard sizes and insert counts."""
        if self.totals.sum() <= 0:
            return False
        if self.limiter is None:
            return True
        self.limiter.inserted = int(self.inserted.sum())
        return self.limiter.can_sample(batch_size, int(self.sizes.sum()))

    def request(self, batch_size: int, beta: float, batches: int = 1) -> bool:
        """Send the sample calls for `batches` batches to the shards (no waiting); False when nothing may be sampled
        yet. The rate limiter is asked for all of them at once."""
        n = batch_size * batches
        if not self.can_sample(n):
            return False
        counts = allocate(n, self.totals, self.rng)
        refs = {self.handles[k].sample.remote(int(c), beta): k for k, c in enumerate(counts) if c > 0}
        self._pending.append(_Request(refs, beta, batch_size, batches, time.monotonic()))
        if self.limiter is not None:
            self.limiter.on_sample(n)
        return True

    @property
    def in_flight(self) -> int:
        """Batches requested and not yet returned by `next_ready`."""
        return sum(r.batches for r in self._pending) + len(self._ready)

    def next_ready(self, timeout: float) -> dict[str, np.ndarray] | None:
        """The oldest requested batch once all its shards answered (None if not within `timeout` seconds).

        A request older than `call_timeout_s` is completed with the answers it has (the silent shards count as
        timeouts; its batches are then smaller). The batch holds the schema fields plus `weight` (float32, globally
        normalised), `prob` (global P(i)), `priority` (p_i), `shard` (int32), `slot` and `generation` (int64).
        """
        if self._ready:
            return self._ready.popleft()
        if not self._pending:
            return None
        request = self._pending[0]
        overdue = time.monotonic() - request.issued_s >= self.call_timeout_s
        ready, waiting = [], []
        if request.refs:  # empty when every shard it asked was replaced since
            ready, waiting = ray.wait(
                list(request.refs), num_returns=len(request.refs), timeout=0 if overdue else timeout
            )
        if waiting and not overdue:
            return None
        self._pending.popleft()
        self.timeouts += len(waiting)
        answers = self._gather({r: request.refs[r] for r in ready}, timeout_s=0)
        messages = {}
        for shard, data in answers:
            if data is None or shard in self.dead:  # the shard is empty, or died since it answered
                continue
            try:
                messages[shard] = wire.decode_sample(data, self.schema)
            except wire.WireError as error:  # a shard built with another schema: skip its part, say so
                self.bad_answers += 1
                self.last_error = f"shard {shard}: {error}"
                continue
            self._note(shard, messages[shard].meta)
        if not messages:
            return None
        self._ready.extend(self._deal(self._merge(messages, request.beta), request.batches))
        return self._ready.popleft()

    def _merge(self, messages: dict[int, wire.Message], beta: float) -> dict[str, np.ndarray]:
        columns = wire.sample_schema(self.schema)
        batch = {name: np.concatenate([m.fields[name] for m in messages.values()]) for name in columns}
        batch[spec.SHARD] = np.concatenate([np.full(len(m), shard, dtype=np.int32) for shard, m in messages.items()])
        # Global N, total and min over the live shards and those that answered (one may have died since).
        live = sorted(set(self._live()) | set(messages))
        total = float(self.totals[live].sum())
        min_p = min(float(self.mins[live].min(initial=np.inf)), float(batch[spec.PRIORITY].min(initial=np.inf)))
        batch[spec.WEIGHT] = global_weights(batch[spec.PRIORITY], total, int(self.sizes[live].sum()), min_p, beta)
        batch[spec.PROB] = batch[spec.PRIORITY] / total
        return batch

    def _deal(self, merged: dict[str, np.ndarray], batches: int) -> list[dict[str, np.ndarray]]:
        """Shuffle the items of one request (they arrive grouped by shard) and split them into `batches` batches (fewer
        when a timed-out shard left fewer items than batches)."""
        if batches == 1:
            return [merged]
        order = self.rng.permutation(len(merged[spec.SHARD]))
        parts = [part for part in np.array_split(order, batches) if len(part)]
        return [{name: column[part] for name, column in merged.items()} for part in parts]

    def sample(self, batch_size: int, beta: float) -> dict[str, np.ndarray] | None:
        """Request one batch and wait for it (after any already prefetched ones, which are returned first)."""
        if not self.request(batch_size, beta) and not self._pending and not self._ready:
            return None
        return self.next_ready(self.call_timeout_s)

    # ---- priority updates --------------------------------------------------------------------------------------

    def update_priorities(self, batch: dict[str, np.ndarray], td_abs: np.ndarray) -> None:
        """Route |TD| of a sampled batch to its shards without waiting. Batches are sent `coalesce_updates` at a
        time (one call per shard instead of one per batch and shard: remote calls are the learner's overhead); a
        repeated item takes its latest value. Blocks only beyond `max_pending_updates` calls in flight."""
        self._unsent.append((batch[spec.SHARD], batch[spec.SLOT], batch[spec.GENERATION], np.asarray(td_abs)))
        if len(self._unsent) >= self.coalesce_updates:
            self._send_updates()

    def _send_updates(self) -> None:
        if not self._unsent:
            return
        shards, slots, generations, td_abs = (np.concatenate(column) for column in zip(*self._unsent, strict=True))
        self._unsent = []
        for shard in np.unique(shards).tolist():
            if shard in self.dead:
                continue
            mask = shards == shard
            ref = self.handles[shard].update_priorities.remote(slots[mask], generations[mask], td_abs[mask])
            self._updates.append((ref, shard))
        self._reap_updates(keep=self.max_pending_updates)

    def _reap_updates(self, keep: int) -> None:
        """Collect finished update calls; wait for the oldest ones while more than `keep` are in flight."""
        refs = [ref for ref, _ in self._updates]
        if not refs:
            return
        excess = len(refs) - keep
        if excess > 0:
            ray.wait(refs[:excess], num_returns=excess, timeout=self.call_timeout_s)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        owners = dict(self._updates)
        results = self._gather({ref: owners[ref] for ref in ready}, timeout_s=0)
        self.updates_applied += sum(int(applied) for _, applied in results)
        done = set(ready)
        self._updates = collections.deque((r, k) for r, k in self._updates if r not in done)

    def flush(self) -> None:
        """Send the buffered priority updates and wait for every one in flight (e.g. before a checkpoint)."""
        self._send_updates()
        self._reap_updates(keep=0)

    def stats(self) -> dict[str, Any]:
        return {
            "dead": dict(self.dead),
            "replaced": self.replaced,
            "timeouts": self.timeouts,
            "bad_answers": self.bad_answers,
            "last_error": self.last_error,
            "pending_requests": len(self._pending),
            "ready_batches": len(self._ready),
            "pending_updates": len(self._updates),
            "updates_applied": self.updates_applied,
            "size": int(self.sizes.sum()),
            "inserted": int(self.inserted.sum()),
            "totals": self.totals.tolist(),
            "sizes": self.sizes.tolist(),
        }
