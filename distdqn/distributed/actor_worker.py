"""The Ray shell around one core `Actor`: collect, encode to msgpack, push to a replay shard with bounded pushes in
flight, pull newer weights from the parameter store, and keep to the samples-per-insert band.

Workers run in time slices: the driver keeps two `run(seconds)` calls queued per worker, each returning the
worker's stats, so the worker never idles between slices and no second thread is needed for control. (A threaded
Ray actor, max_concurrency > 1, whose method runs on a non-main thread costs a whole core: Ray 2.60's main thread
spins while the method runs. Single-threaded workers also make `state_dict()` for checkpoints land between slices,
never in the middle of an update.)"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, ObjectLostError, OwnerDiedError, RayActorError

from distdqn import wire
from distdqn.actor import Actor
from distdqn.config import ActorConfig, EnvConfig, NetworkConfig, ReplayConfig
from distdqn.replay.rate_limiter import RateLimiter

# Where an actor's time goes, per loop (seconds): the driver sums these into actor.overhead_frac / throttle_frac.
TIMING_KEYS = ("t_collect", "t_encode", "t_push", "t_wait", "t_pull", "t_throttle", "t_total")

# Failures of a remote peer (dead or restarting actor, lost object, timeout), as opposed to bugs in our code.
REMOTE_FAILURES = (RayActorError, GetTimeoutError, OwnerDiedError, ObjectLostError)

SHARD_RETRY_S = 5.0  # a shard that failed a push is probed again (one ping) after this long
FILL_BUDGET_S = 1.0  # below the replay's minimum size, an actor's share of the shortfall renews this often

# Where every generated transition ends (stats()): transitions == inserted + rejected + duplicates + lost + in_flight.
OUTCOME_KEYS = ("inserted", "rejected", "duplicates", "lost")


@dataclass(frozen=True)
class ActorSetup:
    """What every actor of a run shares: its config sections, the actor count and the peers it talks to."""

    env: EnvConfig
    network: NetworkConfig
    actor: ActorConfig
    replay: ReplayConfig
    num_actors: int  # N: sets each actor's epsilon on the ladder and the rate limiter's estimate of global inserts
    shards: list  # replay shard handles
    param_store: Any
    call_timeout_s: float = 60.0


@dataclass
class _Push:
    shard: int
    handle: Any  # the shard's handle when pushed (a replaced shard's late failure must not mark the new one down)
    ref: Any  # ObjectRef of the shard's ack
    items: int  # transitions in the message


def own_shards(index: int, num_actors: int, num_shards: int) -> list[int]:
    """The shards actor `index` of `num_actors` pushes to, in turn: its index mod K when there are at least as many
    actors as shards; otherwise every shard k with k mod N == index, so that no shard is left without data."""
    if num_actors >= num_shards or index >= num_actors:
        return [index % num_shards]
    return list(range(index, num_shards, num_actors))


class ActorWorker:
    """Hosts one Actor. `run(seconds)` collects and pushes for one slice and returns `stats()` (counters, and timings
    since the last stats); `flush()` waits for the pushes in flight at the end of a run.

    Routing: the pushes go to this actor's own shards in turn (`own_shards`: one shard when there are at least as
    many actors as shards, several otherwise), each shard's messages numbered by their own seq.

    `incarnation` distinguishes restarts of the same actor index: shards de-duplicate by (actor, incarnation, seq)
    and count sequence gaps per incarnation. A resumed actor (`load_state_dict`) continues with the saved
    incarnation + 1, a new stream, so a shard restored from the same checkpoint neither drops its pushes as
    duplicates nor counts gaps.

    Shard loss: a push that fails (the shard died, or did not answer within `call_timeout_s`) marks its shard down;
    pushes go to the next live shard meanwhile, and a down shard is probed (one ping, not waited for) every
    `SHARD_RETRY_S` seconds and used again once it answers. `replace_shard(k, handle)` swaps in a restarted shard.

    Accounting, in `stats()`: every generated transition (`transitions`) is `inserted` (acked ok), `rejected` or a
    `duplicate` by the shard, `lost` (its push failed, or no shard was live; a timed-out push counts as lost even
    though the shard may have stored it late) or still `in_flight`.
    """

    def __init__(self, setup: ActorSetup, index: int, incarnation: int, seed: int):
        self.actor = Actor(
            setup.env, setup.network, setup.actor, actor_index=index, num_actors=setup.num_actors, seed=seed
        )
        self.config = setup.actor
        self.index = index
        self.num_actors = setup.num_actors
        self.incarnation = incarnation
        self.shards = list(setup.shards)
        self.alive = [True] * len(self.shards)
        self._down_since = [0.0] * len(self.shards)  # monotonic time of a shard's latest failure
        self._probes: dict[int, Any] = {}  # shard -> ObjectRef of a ping sent to a down shard
        self.param_store = setup.param_store
        self.call_timeout_s = setup.call_timeout_s
        self.limiter = RateLimiter.from_config(setup.replay)
        self._in_flight: deque = deque()
        self.seq = 0  # pushes made by this incarnation
        self.shard_seqs = [0] * len(self.shards)  # the next seq of this incarnation's stream to each shard
        self._learner_counters: dict[str, Any] = {}
        self._counters_time = 0.0
        self._sample_rate = 0.0  # learner samples/s, estimated from successive counter reads
        # while the learner reports the replay below its minimum size: this actor's stored count when the reported
        # size last moved (or FILL_BUDGET_S passed), against which its share of the shortfall is counted
        self._fill_mark = (0, 0.0)
        self._steps_since_pull = 0
        self._started = False
        self._totals = {
            "env_steps": 0,
            "transitions": 0,
            "pushes": 0,
            "push_failures": 0,
            "episodes": 0,
            **dict.fromkeys(OUTCOME_KEYS, 0),
        }
        self._window = self._empty_window()
        self._node = ray.get_runtime_context().get_node_id()

    @staticmethod
    def _empty_window() -> dict[str, float]:
        return {
            "episodes": 0,
            "success_sum": 0.0,
            "return_sum": 0.0,
            "length_sum": 0.0,
            **dict.fromkeys(TIMING_KEYS, 0.0),
        }

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, seconds: float) -> dict[str, Any]:
        """Collect and push for about `seconds` (at least one push interval unless throttled); the stats."""
        deadline = time.monotonic() + seconds
        if not self._started:
            self._pull_weights(block=True)
            self._started = True
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            if not self._throttle(deadline):
                break
            t1 = time.perf_counter()
            out = self.actor.collect(self.config.push_interval_steps)
            t2 = time.perf_counter()
            n = len(out.priorities)
            shard = self._route() if n else None
            data = (
                wire.encode_transitions(
                    out.transitions, out.priorities, self.index, self.incarnation, seq=self.shard_seqs[shard]
                )
                if shard is not None
                else None
            )
            t3 = time.perf_counter()
            if data is not None:
                self._push(shard, data, n)
            elif n:  # no live shard
                self._totals["push_failures"] += 1
                self._totals["lost"] += n
            t4 = time.perf_counter()
            self._drain(self.config.max_pushes_in_flight - 1)
            t5 = time.perf_counter()
            self._steps_since_pull += self.config.push_interval_steps
            if self._steps_since_pull >= self.config.param_pull_interval_steps:
                self._pull_weights()
                self._steps_since_pull = 0
            t6 = time.perf_counter()
            w, tot = self._window, self._totals
            tot["env_steps"] += out.env_steps
            tot["transitions"] += n
            tot["episodes"] += out.episodes.count
            w["episodes"] += out.episodes.count
            w["success_sum"] += out.episodes.mean_success * out.episodes.count
            w["return_sum"] += out.episodes.mean_return * out.episodes.count
            w["length_sum"] += out.episodes.mean_length * out.episodes.count
            w["t_throttle"] += t1 - t0
            w["t_collect"] += t2 - t1
            w["t_encode"] += t3 - t2
            w["t_push"] += t4 - t3
            w["t_wait"] += t5 - t4
            w["t_pull"] += t6 - t5
            w["t_total"] += t6 - t0
        return self.stats()

    def flush(self) -> dict[str, Any]:
        """Wait for every push in flight (the end of a run); the stats."""
        self._drain(0)
        return self.stats()

    def _push(self, shard: int, data: bytes, items: int) -> None:
        handle = self.shards[shard]
        self._in_flight.append(_Push(shard, handle, handle.add.remote(data), items))
        self._totals["pushes"] += 1
        self.shard_seqs[shard] += 1
        self.seq += 1

    def _route(self) -> int | None:
        """The shard of this push: this actor's own shards in turn (`own_shards`), or when one is down the next live
        shard after it; None when none is live."""
        self._probe_down_shards()
        own = own_shards(self.index, self.num_actors, len(self.shards))
        first = own[self.seq % len(own)]
        k = len(self.shards)
        for offset in range(k):
            shard = (first + offset) % k
            if self.alive[shard]:
                return shard
        return None

    def _probe_down_shards(self) -> None:
        """Ping each shard down for `SHARD_RETRY_S`, without waiting; one that answered is live again."""
        now = time.monotonic()
        for shard, up in enumerate(self.alive):
            if up:
                continue
            probe = self._probes.get(shard)
            if probe is None:
                if now - self._down_since[shard] >= SHARD_RETRY_S:
                    self._probes[shard] = self.shards[shard].ping.remote()
                continue
            ready, _ = ray.wait([probe], timeout=0)
            if not ready:
                continue
            del self._probes[shard]
            try:
                ray.get(probe, timeout=0)
                self.alive[shard] = True
            except REMOTE_FAILURES:
                self._down_since[shard] = now

    def _mark_down(self, shard: int) -> None:
        self.alive[shard] = False
        self._down_since[shard] = time.monotonic()
        self._probes.pop(shard, None)

    def replace_shard(self, k: int, handle: Any) -> None:
        """Push to `handle` as shard `k` from now on (a restarted shard). Pushes in flight to the old handle are
        counted as they resolve."""
        self.shards[k] = handle
        self.alive[k] = True
        self._probes.pop(k, None)

    def _drain(self, keep: int) -> None:
        """Back-pressure: wait until at most `keep` pushes are unacknowledged; count each ack's outcome."""
        totals = self._totals
        while len(self._in_flight) > keep:
            push = self._in_flight.popleft()
            try:
                ack = ray.get(push.ref, timeout=self.call_timeout_s)
            except REMOTE_FAILURES:
                if self.shards[push.shard] is push.handle:
                    self._mark_down(push.shard)
                totals["push_failures"] += 1
                totals["lost"] += push.items
                continue
            status = ack.get("status") if isinstance(ack, dict) else None
            if status == "ok":
                totals["inserted"] += push.items
            elif status == "duplicate":
                totals["duplicates"] += push.items
            else:  # "rejected": a bug on this side (the shard says why in its last_error)
                totals["rejected"] += push.items

    def _pull_weights(self, block: bool = False) -> None:
        """Fetch weights only when the published version moved (one small call otherwise)."""
        try:
            version, ref, counters = ray.get(
                self.param_store.latest.remote(self.actor.weights_version), timeout=self.call_timeout_s
            )
        except REMOTE_FAILURES:
            return
        now = time.monotonic()
        if self._learner_counters:  # the learner's sampling rate, for the throttle's sleep
            previous, then = int(self._learner_counters.get("sampled", 0)), self._counters_time
            if now > then and counters.get("sampled", 0) > previous:
                self._sample_rate = (counters["sampled"] - previous) / (now - then)
        if counters.get("replay_size") != self._learner_counters.get("replay_size"):
            self._fill_mark = (self._stored(), now)
        self._learner_counters, self._counters_time = counters, now
        if ref is not None:
            try:
                weights = ray.get(ref[0], timeout=self.call_timeout_s)
            except REMOTE_FAILURES:
                return  # the learner is restarting; keep acting with the weights we have
            self.actor.load_weights(version, weights)

    def _throttle(self, deadline: float) -> bool:
        """Wait while this actor's share of inserts runs ahead of the learner's samples (the limiter's lower band);
        False when the slice's `deadline` came first (the wait goes on in the next slice).

        The global insert count is estimated as this actor's stored transitions (acknowledged by a shard, or in
        flight to one) times the number of actors; the sample count is the learner's, as last reported through the
        parameter store (at most one pull interval old). Transitions that were lost (no live shard) or refused do
        not count: counting them would owe the learner samples of data it never saw, and with the learner held
        back by the same band on its side (it counts the shards' inserts) both would wait for ever.

        While the learner reports the replay below `min_size_to_sample` (the start of a run, or a shard restarted
        empty) it cannot sample, so the band would hold everyone for ever: the actor fills instead, but only its
        share of the reported shortfall per report (`_may_fill`), since the report lags the pushes (a learner busy
        on demonstrations, or starved of CPU, reported an empty replay while actors stored thousands).
        """
        if self.limiter.samples_per_insert <= 0:
            return True
        while True:
            reported = self._learner_counters.get("replay_size", self.limiter.min_size_to_sample)
            if reported < self.limiter.min_size_to_sample:
                if self._may_fill(reported):
                    return True
                wait = 0.02  # for the next report
            else:
                self.limiter.load_counts(
                    inserted=self._stored() * self.num_actors,
                    sampled=int(self._learner_counters.get("sampled", 0)),
                )
                if self.limiter.can_insert(self.actor.num_envs * self.config.push_interval_steps * self.num_actors):
                    return True
                # about as long as the learner needs to sample the deficit (every poll is a remote call, and a
                # throttled actor's job is to leave the CPU to the learner)
                deficit = self.limiter.expected_samples() * (1.0 - self.limiter.tolerance) - self.limiter.sampled
                wait = deficit / self._sample_rate if self._sample_rate > 0 else 0.025
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(max(wait, 0.01), 0.5, left))
            self._pull_weights()

    def _may_fill(self, reported: int) -> bool:
        """Whether to push while the replay is reported below its minimum size: while this actor's stores since the
        reported size last moved stay under its share of the shortfall, and afresh every FILL_BUDGET_S seconds
        (a report that never moves, e.g. the pushes went to a shard that then restarted, must not stop the fill)."""
        mark, since = self._fill_mark
        if time.monotonic() - since > FILL_BUDGET_S:
            self._fill_mark = mark, since = self._stored(), time.monotonic()
        return (self._stored() - mark) * self.num_actors < self.limiter.min_size_to_sample - reported

    def _stored(self) -> int:
        """Transitions acknowledged by a shard or in flight to one."""
        return self._totals["inserted"] + sum(push.items for push in self._in_flight)

    # ---- control ----------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        window, self._window = self._window, self._empty_window()
        totals = dict(self._totals)
        return {
            "actor": self.index,
            "incarnation": self.incarnation,
            "epsilon": self.actor.epsilon,
            "version": self.actor.weights_version,
            "seq": self.seq,
            **totals,
            "in_flight": sum(push.items for push in self._in_flight),
            "window": window,
            "shards_alive": sum(self.alive),
            "node": self._node,
            "pid": os.getpid(),
        }

    def state_dict(self) -> dict[str, Any]:
        """The core actor's state plus this worker's stream: its `incarnation` and next `seq` (JSON-able)."""
        return {**self.actor.state_dict(), "stream": {"incarnation": self.incarnation, "seq": self.seq}}

    def load_state_dict(self, state: dict[str, Any]) -> int:
        """Restore the core actor; continue as a new stream, incarnation saved + 1 (at least this worker's own),
        seq where it was. Returns the incarnation now in use: the runtime's next restart of this actor must use a
        larger one. A state without "stream" (older checkpoints, the local runtime's) keeps this worker's."""
        self.actor.load_state_dict(state)
        stream = state.get("stream")
        if stream is not None:
            self.incarnation = max(self.incarnation, int(stream["incarnation"]) + 1)
            self.seq = int(stream["seq"])
        return self.incarnation

    def set_num_actors(self, num_actors: int) -> None:
        """The run was scaled to `num_actors`: a new rung on the epsilon ladder and a new estimate of global inserts
        for the rate limiter."""
        self.num_actors = num_actors
        self.actor.set_num_actors(num_actors)

    def pid(self) -> int:
        """This worker's process id (for operators and fault-injection tests)."""
        return os.getpid()

    def ping(self) -> bool:
        return True
