"""Restoring a replay from snapshots: the one rule shared by the local runner and the replay shard workers.

The rule, for the snapshots of one or more shards of an earlier run (`save_state_dir` directories):

- exactly one snapshot, its layout (capacity and fields) matching and the replay empty: an exact load
  (`load_state_dict`: items, priorities, insert counter, sampling RNG);
- otherwise (a different capacity or shard count on resume): every snapshot's items are re-inserted with their
  priorities (`add_prioritized`), in the order given, the ring evicting the oldest items when they exceed the
  capacity;
- an unreadable or incompatible snapshot is skipped and reported in `errors`; this never raises.

`restore_states` applies the rule to snapshots already in memory (a driver reads the files and sends the arrays to
a shard on another node); `restore_snapshots` reads the directories and calls it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distdqn import spec
from distdqn.replay.prioritized import PrioritizedReplay, load_state_dir

# What a damaged or foreign snapshot can raise while being read or checked (no other exception is swallowed).
SNAPSHOT_ERRORS = (OSError, KeyError, TypeError, ValueError)


@dataclass
class RestoreReport:
    """The outcome of `restore_snapshots` / `restore_states`."""

    size: int  # items in the replay afterwards
    exact: bool  # one snapshot loaded exactly (counters and RNG included), not re-inserted
    meta: dict[str, Any] | None = None  # that snapshot's meta (for a worker's own bookkeeping); None unless exact
    errors: list[str] = field(default_factory=list)  # "<path>: <Error>: <why>" per snapshot skipped

    @property
    def ok(self) -> bool:
        """Every snapshot was restored."""
        return not self.errors


State = tuple[dict[str, Any], dict[str, Any]]  # (arrays, meta) as `PrioritizedReplay.state_dict` returns them


def restore_states(
    replay: PrioritizedReplay, states: Sequence[State], labels: Sequence[str] | None = None, allow_exact: bool = True
) -> RestoreReport:
    """Load in-memory snapshots (`state_dict` output, e.g. read by a driver and sent over) into `replay` by the rule
    in the module docstring. `labels` name the states in `errors` (default: "state <index>"); `allow_exact=False`
    forces re-insertion (the file wrapper uses it when some of several snapshots could not be read)."""
    labels = [f"state {i}" for i in range(len(states))] if labels is None else list(labels)
    errors = []
    for state, label in zip(states, labels, strict=True):
        arrays, meta = state if isinstance(state, (tuple, list)) and len(state) == 2 else (None, None)
        try:
            if not (isinstance(arrays, dict) and isinstance(meta, dict)):
                raise TypeError(f"expected (arrays: dict, meta: dict), got ({type(arrays).__name__}, ...)")
            arrays = {name: np.asarray(array) for name, array in arrays.items()}  # no copy for arrays
            if allow_exact and len(states) == 1 and len(replay) == 0:
                try:
                    replay.load_state_dict(arrays, meta)  # validates everything before it changes the replay
                    return RestoreReport(len(replay), exact=True, meta=meta)
                except SNAPSHOT_ERRORS:
                    pass  # another layout (a different capacity): re-insert
            _reinsert(replay, arrays)
        except SNAPSHOT_ERRORS as error:
            errors.append(f"{label}: {type(error).__name__}: {error}")
    return RestoreReport(len(replay), exact=False, errors=errors)


def restore_snapshots(replay: PrioritizedReplay, paths: Sequence[str | os.PathLike]) -> RestoreReport:
    """Load the snapshot directories `paths` into `replay` by the rule in the module docstring."""
    states, labels, errors = [], [], []
    for path in paths:
        try:
            states.append(load_state_dir(path))
            labels.append(os.fspath(path))
        except SNAPSHOT_ERRORS as error:
            errors.append(f"{os.fspath(path)}: {type(error).__name__}: {error}")
    report = restore_states(replay, states, labels, allow_exact=len(paths) == 1)
    report.errors = errors + report.errors
    return report


def _reinsert(replay: PrioritizedReplay, arrays: dict[str, Any]) -> None:
    """Append a snapshot's items with their (already exponentiated) priorities: all of them or, raising, none."""
    prefix = spec.SNAPSHOT_FIELD_PREFIX
    # every stored field, so that a snapshot of another layout (another task) is rejected rather than cut to fit
    columns = {name.removeprefix(prefix): array for name, array in arrays.items() if name.startswith(prefix)}
    replay.add_prioritized(columns, arrays[spec.SNAPSHOT_PRIORITIES])
