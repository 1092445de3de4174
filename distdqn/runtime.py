"""The `Runtime` protocol: what the supervisor drives, implemented once in-process (`distdqn.local.LocalRuntime`)
and once on Ray (`distdqn.distributed.runtime.RayRuntime`). The two differ only in how data moves.

The supervisor (`distdqn.supervisor`) owns a run's life — budgets, evaluation, logging, checkpoints, signals,
shutdown, the summary — and asks a runtime only to:

    start()                       bring every component up; training time begins when it returns
    advance(seconds, ...)         train for about `seconds`, return what happened (`Progress`)
    latest_weights()              the newest published online weights (numpy), for held-out evaluation
    state_dict() / write_replay() what a checkpoint holds
    load_state_dict(...)          continue from a checkpoint
    scale(num_actors)             change the actor count while training (False: busy with the previous change;
                                  `ScaleRefused`: the cluster has no room for the added actors)
    stop()                        stop producing and flush what is in flight (the final `Progress`)
    close()                       release every resource (idempotent)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclasses.dataclass
class EpisodeRecord:
    """Training episodes finished by one actor since its previous record."""

    count: int
    success_sum: float
    return_sum: float
    epsilon: float  # the actor's epsilon when they finished


@dataclasses.dataclass
class ActorView:
    """The latest known state of one live actor."""

    epsilon: float
    version: int  # the weights version it acts with
    node: str | None = None  # where it runs (Ray node id), None in one process


@dataclasses.dataclass
class Progress:
    """What a runtime did during one `advance` (or `stop`).

    Actor-side counts are increments since the previous `Progress`; learner-side counts are the learner's totals
    (None until the learner reported), because the learner restores its own counters on resume.
    """

    env_steps: int = 0  # new env steps
    generated: int = 0  # new transitions made by the actors; each ends inserted, rejected, duplicate or lost
    inserted: int = 0  # ... inserted into the replay
    rejected: int = 0  # ... refused by a shard as malformed or out of range
    duplicates: int = 0  # ... dropped by a shard as already stored (a retried push)
    lost: int = 0  # ... whose push failed, found no live shard, or was in flight when its actor died
    episodes: list[EpisodeRecord] = dataclasses.field(default_factory=list)
    updates: int | None = None  # learner totals
    sampled: int | None = None  # by the current learner since it started or was restored (restarts from 0)
    version: int | None = None
    actors: dict[int, ActorView] = dataclasses.field(default_factory=dict)  # by actor index, latest known
    shard_sizes: list[int] = dataclasses.field(default_factory=list)  # transitions per replay shard, latest known
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)  # runtime-specific: learner.*, replay.*, ...
    messages: list[str] = dataclasses.field(default_factory=list)  # events worth a console line (restarts, ...)
    failure: str | None = None  # set when the run cannot go on (e.g. the learner died)


@dataclasses.dataclass
class RuntimeState:
    """Everything of a runtime a checkpoint holds, apart from replay snapshots (written by `write_replay`)."""

    learner: dict[str, Any]  # `Learner.state_dict()`: networks, optimizer, counters
    limiter: dict[str, Any]  # the learner's rate limiter
    actors: list[dict[str, Any] | None]  # `Actor.state_dict()` by actor index (None: down at the time, starts fresh)


class WorkerUnavailable(RuntimeError):
    """A worker that a checkpoint needs is down (being restarted); the checkpoint is skipped, the run goes on."""


class ScaleRefused(RuntimeError):
    """A scale request the cluster cannot place (the message says why and what to do); the run goes on unchanged."""


class Runtime(Protocol):
    def start(self) -> None: ...

    def advance(self, seconds: float, updates_left: int | None = None) -> Progress:
        """Train for about `seconds`. `updates_left` (None: no limit) is how many updates until the update budget
        or an update-count checkpoint is due: a runtime that can stop on an exact update count returns there;
        others may overshoot by what is in flight."""
        ...

    def latest_weights(self) -> dict[str, np.ndarray]: ...

    def state_dict(self) -> RuntimeState: ...

    def write_replay(self, directory: Path) -> int:
        """Write one snapshot per replay shard under `directory/shard_<k>/`; the number of shards."""
        ...

    def load_state_dict(self, state: RuntimeState, replay_snapshots: list[Path]) -> tuple[int, list[str]]:
        """Continue from a checkpoint: (transitions in the replay afterwards, problems worth a message)."""
        ...

    def scale(self, num_actors: int) -> bool:
        """Run `num_actors` actors from now on: new ones join on the epsilon ladder recomputed for the new count,
        removed ones (the highest indices) finish their in-flight pushes first. False while a previous change is
        still being carried out (ask again later); `ScaleRefused` when the cluster has no room for the added actors
        (nothing changes). The learner never stops."""
        ...

    def stop(self) -> Progress: ...

    def close(self) -> None: ...


def actor_seed(run_seed: int, index: int, incarnation: int = 0) -> int:
    """The seed of actor `index` in its `incarnation` (restart count): every restart gets a new stream."""
    return run_seed * 1000 + index + 100_000 * incarnation
