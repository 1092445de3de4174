"""One proportional prioritized replay shard: columnar FIFO storage, item keys, sampling with importance weights.

Sampling (Schaul et al. 2016, proportional variant). Item i has priority p_i = (|delta_i| + priority_eps) ** alpha,
where delta_i is its latest TD error (new items get the largest priority seen so far, so each is replayed soon).
Items are drawn with probability

    P(i) = p_i / sum_k p_k        (p_i already carries the exponent alpha: P(i) = |delta_i|^alpha / sum_k ...)

stratified: the total mass is cut into n equal slices and one item drawn in each. The importance weight corrects the
non-uniform draw and is normalised by the largest possible weight, that of the least likely item:

    w_i = (N * P(i)) ** -beta / (N * P_min) ** -beta = (p_i / p_min) ** -beta    in (0, 1]

with N the number of stored items and P_min = min_k p_k / sum_k p_k.

Keys. Every stored item has a key (shard, slot, generation): `slot` is its position in the ring, `generation` the
running count of items added to this shard before it (so slot == generation % capacity). The generation of a slot
is derived from the insert counter, costing no memory. A priority update carries the key it was sampled with and is
ignored when the slot has been overwritten since (Reverb does the same for deleted items).

Snapshots. `state_dict` returns plain numpy arrays plus JSON-able metadata (no pickle anywhere);
`save_state_dir`/`load_state_dir` write them as `.npy` files and `meta.json` into a temporary directory that is then
renamed into place, so a crash never leaves a half-written snapshot under the final name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from distdqn import spec
from distdqn.replay.sumtree import SumMinTree

STATE_VERSION = 1
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class PrioritizedReplay:
    """A fixed-capacity FIFO ring of transitions sampled in proportion to p_i = (|delta_i| + eps) ** alpha."""

    def __init__(
        self,
        capacity: int,
        fields: spec.Schema,
        alpha: float,
        priority_eps: float,
        shard_id: int = 0,
        seed: int = 0,
    ):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if not priority_eps > 0.0:
            raise ValueError(f"priority_eps must be > 0 (a zero priority would never be sampled), got {priority_eps}")
        if not fields:
            raise ValueError("fields must name at least one column")
        self.capacity = int(capacity)
        self.alpha = float(alpha)
        self.priority_eps = float(priority_eps)
        self.shard_id = int(shard_id)
        self.fields: spec.Schema = {
            k: (np.dtype(dt), tuple(int(d) for d in shape)) for k, (dt, shape) in fields.items()
        }
        for name in self.fields:
            if not _SAFE_NAME.match(name):
                raise ValueError(f"field name {name!r} must match {_SAFE_NAME.pattern}")
        # One record per item, the fields side by side: a sample gathers each item with one row copy (its cache
        # lines together) instead of one random read per column. `_data` holds the per-field (strided) views.
        # np.zeros maps pages lazily: memory is committed as the ring fills.
        record = np.dtype([(k, dt, shape) for k, (dt, shape) in self.fields.items()], align=True)
        self._records = np.zeros(self.capacity, dtype=record)
        self._data = {k: self._records[k] for k in self.fields}
        self._tree = SumMinTree(self.capacity)
        self._rng = np.random.default_rng(seed)
        self.inserted = 0  # items ever added (the next item's generation)
        self.max_priority = 1.0  # running max of p_i (alpha applied), given to items added without a priority
        self.skipped_nonfinite = 0  # priority updates ignored because |delta| was NaN or inf

    def __len__(self) -> int:
        return min(self.inserted, self.capacity)

    @property
    def total(self) -> float:
        """sum_k p_k over stored items."""
        return self._tree.total

    @property
    def min_priority(self) -> float:
        """min_k p_k over stored items (+inf when empty)."""
        return self._tree.min

    @property
    def nbytes(self) -> int:
        """Bytes held by the storage and the trees."""
        return self._records.nbytes + self._tree.nbytes

    def priority(self, td_abs: np.ndarray) -> np.ndarray:
        """p = (|delta| + priority_eps) ** alpha, float64."""
        return (np.abs(np.asarray(td_abs, dtype=np.float64)) + self.priority_eps) ** self.alpha

    def add(self, batch: dict[str, np.ndarray], priorities: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Append a batch (evicting the oldest items when full); returns the new items' (slots, generations).

        `priorities` are raw |TD| values (the exponent is applied here); None gives every new item the running
        maximum priority. When a batch is larger than the capacity only its last `capacity` items are stored.
        """
        n = self._check_batch(batch)
        if priorities is not None:
            p = self.priority(priorities)
            if p.shape != (n,) or not np.isfinite(p.sum()):  # p >= 0: the sum is finite iff every p is
                raise ValueError(f"priorities must be {n} finite values, got shape {p.shape}")
        else:
            p = np.full(n, self.max_priority)
        return self._insert(batch, n, p, update_max=priorities is not None)

    def add_prioritized(self, batch: dict[str, np.ndarray], p_alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append items whose priorities are already exponentiated (p = (|delta| + eps) ** alpha), e.g. the items of
        another shard's snapshot when a run resumes with a different shard count."""
        n = self._check_batch(batch)
        p = np.asarray(p_alpha, dtype=np.float64)
        if p.shape != (n,) or not np.isfinite(p.sum()) or (n and p.min() <= 0):
            raise ValueError(f"priorities must be {n} finite positive values, got shape {p.shape}")
        return self._insert(batch, n, p, update_max=True)

    def _insert(self, batch: dict[str, np.ndarray], n: int, p: np.ndarray, update_max: bool):
        skip = max(0, n - self.capacity)
        self.inserted += skip
        n -= skip
        start = self.inserted % self.capacity
        first = min(n, self.capacity - start)  # items before the ring wraps
        for name, column in self._data.items():
            values = batch[name][skip:]
            column[start : start + first] = values[:first]
            if n > first:
                column[: n - first] = values[first:]
        self._tree.set_range(start, p[skip : skip + first])
        if n > first:
            self._tree.set_range(0, p[skip + first :])
        if n and update_max:
            self.max_priority = max(self.max_priority, float(p.max()))
        generations = np.arange(self.inserted, self.inserted + n, dtype=np.int64)
        self.inserted += n
        return generations % self.capacity, generations

    def _check_batch(self, batch: dict[str, np.ndarray]) -> int:
        if set(batch) != set(self.fields):
            missing, extra = set(self.fields) - set(batch), set(batch) - set(self.fields)
            raise ValueError(f"batch fields differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
        n = None
        for name, (dtype, shape) in self.fields.items():
            array = batch[name]
            integers = array.dtype.kind in "iu" and dtype.kind in "iu"  # ids must fit; not range-checked here
            if array.shape[1:] != shape or not (integers or np.can_cast(array.dtype, dtype, "same_kind")):
                raise ValueError(f"field {name!r}: expected {dtype}[n, {shape}], got {array.dtype}{array.shape}")
            if n is None:
                n = array.shape[0]
            elif array.shape[0] != n:
                raise ValueError(f"field {name!r} has {array.shape[0]} items, expected {n}")
        return int(n or 0)

    def sample(self, n: int, beta: float) -> dict[str, np.ndarray]:
        """Draw `n` items (stratified, with replacement across slices): the fields plus `weight` (float32),
        `prob` (P(i), float64), `priority` (p_i, float64), `shard` (int32), `slot` and `generation` (int64)."""
        size = len(self)
        if size == 0:
            raise ValueError("cannot sample from an empty replay")
        slots = self._tree.sample_stratified(n, self._rng, size)
        p = self._tree.get(slots)
        rows = self._records.take(slots)
        out = {name: np.ascontiguousarray(rows[name]) for name in self.fields}
        weight = p * (1.0 / self._tree.min)
        weight **= -beta
        out[spec.WEIGHT] = weight.astype(np.float32)
        out[spec.PROB] = p / self._tree.total
        out[spec.PRIORITY] = p
        out[spec.SHARD] = np.full(slots.shape[0], self.shard_id, dtype=np.int32)
        out[spec.SLOT] = slots
        out[spec.GENERATION] = self.generation_of(slots)
        return out

    def generation_of(self, slots: np.ndarray) -> np.ndarray:
        """Generation of the item now in each slot (the latest g < inserted with g % capacity == slot)."""
        slots = np.asarray(slots, dtype=np.int64)
        last = self.inserted - 1
        last_slot = last % self.capacity
        # g = slot + the start of the last lap, or of the lap before for slots past the last write: a compare, not
        # an integer modulo per item.
        generations = slots + (last - last_slot)
        generations -= (slots > last_slot) * self.capacity
        return generations

    def update_priorities(self, slots: np.ndarray, generations: np.ndarray, td_abs: np.ndarray) -> int:
        """Set p = (|td| + eps) ** alpha for the keyed items still stored; returns how many were applied.

        An item whose slot was overwritten since it was sampled (generation changed) is skipped, as is a slot out of
        range or a non-finite |td| (counted in `skipped_nonfinite`).
        """
        slots = np.asarray(slots, dtype=np.int64)
        generations = np.asarray(generations, dtype=np.int64)
        p = self.priority(td_abs)
        if not slots.shape == generations.shape == p.shape or slots.ndim != 1:
            raise ValueError(f"slots {slots.shape}, generations {generations.shape}, td {p.shape} must match")
        if slots.size == 0:
            return 0
        if slots.view(np.uint64).max() < len(self):  # the common case (negative slots wrap to huge): no range mask
            live = generations == self.generation_of(slots)
        else:
            in_range = (slots >= 0) & (slots < len(self))
            live = in_range & (generations == self.generation_of(np.where(in_range, slots, 0)))
        p_max = p.max()  # NaN or inf when some |td| is
        if not (live.all() and np.isfinite(p_max)):
            finite = np.isfinite(p)
            self.skipped_nonfinite += int(np.count_nonzero(live & ~finite))
            keep = live & finite
            slots, p = slots[keep], p[keep]
            p_max = p.max(initial=0.0)
        if slots.size:
            self._tree.set(slots, p)
            self.max_priority = max(self.max_priority, float(p_max))
        return int(slots.size)

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta): stored items in slot order and their priorities, plus JSON-able counters and RNG state."""
        size = len(self)
        arrays = {spec.SNAPSHOT_FIELD_PREFIX + name: column[:size] for name, column in self._data.items()}
        arrays[spec.SNAPSHOT_PRIORITIES] = self._tree.leaves(size)
        meta = {
            "version": STATE_VERSION,
            "capacity": self.capacity,
            "fields": {k: [dt.str, list(shape)] for k, (dt, shape) in self.fields.items()},
            "alpha": self.alpha,
            "priority_eps": self.priority_eps,
            "shard_id": self.shard_id,
            "inserted": self.inserted,
            "max_priority": self.max_priority,
            "skipped_nonfinite": self.skipped_nonfinite,
            "rng": self._rng.bit_generator.state,
        }
        return arrays, meta

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore from `state_dict` output; raises ValueError (leaving this replay unchanged) when it does not fit."""
        expected = {k: [dt.str, list(shape)] for k, (dt, shape) in self.fields.items()}
        if meta.get("version") != STATE_VERSION:
            raise ValueError(f"snapshot version {meta.get('version')!r}, expected {STATE_VERSION}")
        if meta.get("fields") != expected or meta.get("capacity") != self.capacity:
            raise ValueError(
                f"snapshot layout (capacity {meta.get('capacity')}, fields {meta.get('fields')}) differs from this "
                f"replay (capacity {self.capacity}, fields {expected})"
            )
        inserted = int(meta["inserted"])
        size = min(inserted, self.capacity)
        priorities = np.asarray(arrays[spec.SNAPSHOT_PRIORITIES], dtype=np.float64)
        if priorities.shape != (size,) or not np.all(np.isfinite(priorities)) or np.any(priorities <= 0):
            raise ValueError(f"snapshot priorities: expected {size} finite positive values, got {priorities.shape}")
        for name, (dtype, shape) in self.fields.items():
            column = arrays.get(spec.SNAPSHOT_FIELD_PREFIX + name)
            if column is None or column.dtype != dtype or column.shape != (size, *shape):
                got = None if column is None else f"{column.dtype}{column.shape}"
                raise ValueError(f"snapshot field {name!r}: expected {dtype}{(size, *shape)}, got {got}")
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng"]
        # Validated: now mutate.
        for name, column in self._data.items():
            column[:size] = arrays[spec.SNAPSHOT_FIELD_PREFIX + name]
        self._tree.rebuild(priorities)
        self._rng = rng
        self.inserted = inserted
        self.max_priority = float(meta["max_priority"])
        self.skipped_nonfinite = int(meta.get("skipped_nonfinite", 0))


def save_state_dir(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> int:
    """Write arrays as `<name>.npy` (no pickle) and `meta.json` to a temp dir renamed onto `path`; returns bytes."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        written = 0
        for name, array in arrays.items():
            if not _SAFE_NAME.match(name):
                raise ValueError(f"array name {name!r} must match {_SAFE_NAME.pattern}")
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
            written += array.nbytes
        (tmp / "meta.json").write_text(json.dumps({"arrays": sorted(arrays), "meta": meta}))
        if target.exists():  # a directory cannot be renamed onto a non-empty one: move the old one aside first
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_state_dir(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what `save_state_dir` wrote (np.load with allow_pickle=False); raises OSError or ValueError."""
    root = Path(path)
    index = json.loads((root / "meta.json").read_text())
    if not isinstance(index, dict) or not isinstance(index.get("arrays"), list) or "meta" not in index:
        raise ValueError(f"{root / 'meta.json'}: not a replay snapshot index")
    arrays = {}
    for name in index["arrays"]:
        if not isinstance(name, str) or not _SAFE_NAME.match(name):
            raise ValueError(f"{root / 'meta.json'}: bad array name {name!r}")
        arrays[name] = np.load(root / f"{name}.npy", allow_pickle=False)
    return arrays, index["meta"]
