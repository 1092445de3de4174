"""Replay on Ray: `ReplayShardWorker`, one shard behind a bytes in / bytes out interface.

`ReplayShardWorker` is a plain class hosting one `PrioritizedReplay`; the driver's `connect_components` turns it into
a Ray actor with `ray.remote(ReplayShardWorker).options(num_cpus=...)`. It only translates wire messages to replay
calls and back, keeps per-sender sequence bookkeeping (Ray retries are at-least-once, so duplicates are dropped and
gaps counted) and survives bad input: a malformed message, or one whose values are out of the task's range
(`spec.validate_transitions`), is counted and answered, never raised, and never inserted.

The learner's side, sampling across K shards, is `distdqn.distributed.replay_client.ShardedReplayClient`.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distdqn import spec, wire
from distdqn.config import ReplayConfig
from distdqn.envs import TaskShape
from distdqn.replay import (
    PrioritizedReplay,
    RateLimiter,
    RestoreReport,
    restore_snapshots,
    restore_states,
    save_state_dir,
)
from distdqn.replay.restore import State

MAX_TRACKED_GAPS = 4096  # per sender stream: missing seqs remembered so that a late arrival is not a duplicate
# Sender streams remembered, least recently used evicted first: made-up (actor, incarnation) pairs cannot grow the
# table without bound. Real senders are actors x incarnations, far fewer. A stream evicted and then heard from
# again starts over (its gaps are no longer tracked, and a duplicate of an older message would be inserted).
MAX_STREAMS = 4096


@dataclass
class _Stream:
    """Sequence bookkeeping of one (actor, incarnation)."""

    max_seq: int
    missing: set[int] = field(default_factory=set)


class ReplayShardWorker:
    """One replay shard behind a bytes interface (see `distdqn.wire`); `connect_components` makes it a Ray actor.

    Counters in `stats()`: `received` messages, `rejected` malformed or out-of-range ones (`last_error` names the
    field and why), `duplicates` dropped (same actor, incarnation and seq seen before), `gaps` seqs currently missing
    per stream (a late arrival fills its gap and counts as `late`), `streams` remembered and `streams_evicted` (the
    least recently heard of, beyond `max_streams`), `inserted` / `sampled` transitions. Gaps are counted from the
    first seq a shard sees of a stream, so a shard restarted without a snapshot does not report an actor's history
    as lost.
    """

    def __init__(
        self,
        shard_id: int,
        *,
        shape: TaskShape,
        config: ReplayConfig,
        seed: int = 0,
        snapshot_path: str | None = None,
        max_streams: int = MAX_STREAMS,
    ):
        """Shard `shard_id` of `config.num_shards`, holding `config.capacity // num_shards` items of `shape`'s layout;
        `snapshot_path` (optional) is restored by `restore_many`'s rule and its outcome kept in `stats()["restore"]`;
        at most `max_streams` sender streams are remembered.
        """
        self.shard_id = int(shard_id)
        self.config = config
        self.shape = shape
        self.schema = shape.transition_dtypes()
        self.max_streams = max(1, int(max_streams))
        self.capacity = max(1, config.capacity // config.num_shards)
        self.seed = seed
        self._reset()
        self.restore_report: dict[str, Any] | None = None
        if snapshot_path:
            self.restore_report = self.restore_many([snapshot_path])

    def _reset(self) -> None:
        config = self.config
        self.replay = PrioritizedReplay(
            self.capacity, self.schema, config.alpha, config.priority_eps, self.shard_id, self.seed
        )
        # Per-shard share of the global rate limit; it only signals back-pressure to actors (`insert_allowed`):
        # the sample side is gated globally by the learner's client.
        min_size = min(self.capacity, max(1, math.ceil(config.min_size_to_sample / config.num_shards)))
        self.limiter = RateLimiter(min_size, config.samples_per_insert, config.samples_per_insert_tolerance)
        self.streams: OrderedDict[tuple[int, int], _Stream] = OrderedDict()  # least recently heard of first
        self.counters = dict.fromkeys(
            ("received", "rejected", "duplicates", "gaps", "late", "sampled", "streams_evicted"), 0
        )
        self.last_error = ""
        self._sample_seq = 0

    def pid(self) -> int:
        """This worker's process id (for operators and fault-injection tests)."""
        return os.getpid()

    def ping(self) -> int:
        return self.shard_id

    def add(self, data: bytes) -> dict[str, Any]:
        """Insert one "transitions" message; returns {status: ok | duplicate | rejected, accepted, size, ...}."""
        self.counters["received"] += 1
        try:
            message = wire.decode_transitions(data, self.schema)
            spec.validate_transitions(message.fields, self.shape)
        except spec.FieldError as error:  # a WireError, or values out of the task's range: nothing is inserted
            self.counters["rejected"] += 1
            self.last_error = str(error)
            return self._ack("rejected", 0, error=str(error))
        if not self._admit(message.actor, message.incarnation, message.seq):
            self.counters["duplicates"] += 1
            return self._ack("duplicate", 0)
        columns = {name: message.fields[name] for name in self.schema}
        self.replay.add(columns, message.priorities)
        self.limiter.on_insert(len(message))
        return self._ack("ok", len(message))

    def _ack(self, status: str, accepted: int, **extra: Any) -> dict[str, Any]:
        return {
            "status": status,
            "accepted": accepted,
            "size": len(self.replay),
            "insert_allowed": self.limiter.can_insert(0),  # back-pressure signal for the sending actor
            **extra,
        }

    def _admit(self, actor: int, incarnation: int, seq: int) -> bool:
        """False for a message already seen; counts gaps in each (actor, incarnation) stream."""
        key = (actor, incarnation)
        stream = self.streams.get(key)
        if stream is None:
            for old in [k for k in self.streams if k[0] == actor and k[1] < incarnation]:
                self.counters["gaps"] -= len(self.streams.pop(old).missing)  # a restarted actor never resends
            self.streams[key] = _Stream(max_seq=seq)
            while len(self.streams) > self.max_streams:
                self.streams.popitem(last=False)
                self.counters["streams_evicted"] += 1
            return True
        self.streams.move_to_end(key)
        if seq > stream.max_seq:
            gap = seq - stream.max_seq - 1
            self.counters["gaps"] += gap
            if len(stream.missing) + gap <= MAX_TRACKED_GAPS:
                stream.missing.update(range(stream.max_seq + 1, seq))
            stream.max_seq = seq
            return True
        if seq in stream.missing:
            stream.missing.discard(seq)
            self.counters["gaps"] -= 1
            self.counters["late"] += 1
            return True
        return False

    def sample(self, n: int, beta: float) -> bytes | None:
        """A "sample" message of `n` items with the shard's total, min and size in its meta; None when empty."""
        if len(self.replay) == 0 or n <= 0:
            return None
        batch = self.replay.sample(n, beta)
        self.limiter.on_sample(n)
        self.counters["sampled"] += n
        self._sample_seq += 1
        return wire.encode_sample(batch, self.schema, self.shard_id, self._sample_seq, self._summary())

    def _summary(self) -> dict[str, Any]:
        return {
            "total": self.replay.total,
            "min": self.replay.min_priority,
            "size": len(self.replay),
            "inserted": self.replay.inserted,
        }

    def update_priorities(self, slots: np.ndarray, generations: np.ndarray, td_abs: np.ndarray) -> int:
        """Apply |TD| updates to the keyed items still stored; returns how many were applied."""
        return self.replay.update_priorities(slots, generations, td_abs)

    def stats(self) -> dict[str, Any]:
        return {
            spec.SHARD: self.shard_id,
            **self._summary(),
            **self.counters,
            "capacity": self.capacity,
            "insert_allowed": self.limiter.can_insert(0),
            "skipped_nonfinite": self.replay.skipped_nonfinite,
            "streams": len(self.streams),
            "last_error": self.last_error,
            "restore": self.restore_report,
            "fields": {name: [dtype.str, list(shape)] for name, (dtype, shape) in self.schema.items()},
        }

    def export_state(self) -> State:
        """(arrays, meta): the shard's items and priorities (copies) plus, in `meta["worker"]`, its counters, sender
        streams and limiter counts, all JSON-able. What `snapshot` writes; a driver on another node fetches it through
        the object store and writes it itself (`save_state_dir`), so the run directory need not be this node's."""
        arrays, meta = self.replay.state_dict()
        arrays = {name: np.array(array) for name, array in arrays.items()}  # off the live ring: it keeps changing
        meta["worker"] = {
            "counters": dict(self.counters),
            "limiter": self.limiter.state_dict(),
            "streams": [[a, i, s.max_seq] for (a, i), s in self.streams.items()],
            "sample_seq": self._sample_seq,
        }
        return arrays, meta

    def snapshot(self, path: str) -> dict[str, Any]:
        """Write `export_state()` to directory `path` on this node; never raises on I/O errors."""
        start = time.perf_counter()
        try:
            written = save_state_dir(path, *self.export_state())
        except OSError as error:
            return {"saved": False, "path": str(path), "error": f"{type(error).__name__}: {error}"}
        return {"saved": True, "path": str(path), "size": len(self.replay), "bytes": written,
                "seconds": time.perf_counter() - start}  # fmt: skip

    def restore_many(self, paths: list[str]) -> dict[str, Any]:
        """Restore from the snapshot directories of zero or more shards of an earlier run (a different shard count on
        resume), read on this node, by `import_states`'s rule (`distdqn.replay.restore_snapshots`)."""
        self._reset()
        return self._restored(restore_snapshots(self.replay, paths), str(paths[0]) if paths else "")

    def import_states(self, states: list[State]) -> dict[str, Any]:
        """Restore from in-memory snapshots (`export_state()` output of shards of an earlier run, which the driver
        read from disk and sent): the state of a node that cannot see the run directory.

        The rule is `distdqn.replay.restore_states`'s: one snapshot of this shard's layout is loaded exactly, and then
        this shard's counters, sender streams and limiter come back with it; otherwise every usable snapshot's items
        are re-inserted with their priorities, and the bookkeeping starts fresh (the limiter counting the restored
        items as inserted). Unusable snapshots are skipped and reported; this never raises, so a shard always starts.
        Returns {restored, shard, size, exact, error}.
        """
        self._reset()
        return self._restored(restore_states(self.replay, list(states)), "state 0")

    def _restored(self, report: RestoreReport, first: str) -> dict[str, Any]:
        """Bring back this shard's bookkeeping with an exact load (else count the restored items as inserted)."""
        errors = list(report.errors)
        restored_bookkeeping = False
        if report.exact:
            try:
                self._load_bookkeeping(report.meta["worker"])
                restored_bookkeeping = True
            except (AttributeError, KeyError, TypeError, ValueError) as error:  # the items are fine: keep them
                errors.append(f"{first}: shard bookkeeping: {type(error).__name__}: {error}")
        if not restored_bookkeeping:
            self.limiter.on_insert(len(self.replay))
        return {
            "restored": not errors,
            spec.SHARD: self.shard_id,
            "size": len(self.replay),
            "exact": report.exact,
            "error": "; ".join(errors) or None,
        }

    def _load_bookkeeping(self, worker: dict[str, Any]) -> None:
        """The counters, streams and limiter counts `snapshot` saved; all or (raising) nothing is changed."""
        counters = {k: int(v) for k, v in worker["counters"].items() if k in self.counters}
        streams = OrderedDict(((int(a), int(i)), _Stream(int(s))) for a, i, s in worker["streams"])
        while len(streams) > self.max_streams:
            streams.popitem(last=False)
        sample_seq = int(worker["sample_seq"])
        limiter = worker["limiter"]
        inserted, sampled = int(limiter["inserted"]), int(limiter["sampled"])
        self.counters.update(counters)
        self.streams = streams
        self._sample_seq = sample_seq
        self.limiter.load_counts(inserted, sampled)
