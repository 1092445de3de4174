"""Checkpoints on disk: atomic writes, safe formats, discovery, and the config checks of a resume.

Layout of `runs/<name>/checkpoints/<updates:010d>/`:
  model.safetensors  every tensor of the learner (online and target networks, their average with
                     `learner.weight_ema`, and the torch RNG state)
  optimizer.pt       the rest of the learner state (optimizer moments, counters): `torch.save`, loaded with
                     `weights_only=True`, so loading never unpickles arbitrary objects
  state.json         run counters, actor states (epsilon schedule position, RNG states), rate limiter, the
                     resolved config and its architecture hash
  replay/shard_<k>/  optional: one snapshot per replay shard, written by the shard itself (.npy + meta.json)

A checkpoint is written into `checkpoints/.tmp-*`, every file fsynced, then renamed into place; `latest` (a one-line
file naming the directory) is replaced last, atomically. A crash at any point leaves the previous checkpoint and
`latest` untouched; leftover temporary directories are ignored and cleaned up by the next write.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distdqn.config import ARCHITECTURE_KEYS, Config, apply_overrides, dump_yaml, validate
from distdqn.typed import ConfigError, build

FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "state.json"
LATEST = "latest"


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or corrupt; the message names the file."""


# ---- tensors <-> files ----------------------------------------------------------------------------------------
def split_tensors(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Pull every tensor/ndarray out of a nested dict/list into a flat {dotted.key: tensor}; the skeleton keeps
    `{"__tensor__": key}` markers where they were."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(node, np.ndarray):
            tensors[path] = torch.from_numpy(np.ascontiguousarray(node))
            return {"__ndarray__": path}
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(node)]
        return node

    return tensors, walk(state, prefix)


def merge_tensors(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__ndarray__"}:
            return tensors[skeleton["__ndarray__"]].numpy()
        return {k: merge_tensors(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [merge_tensors(v, tensors) for v in skeleton]
    return skeleton


def save_learner_state(directory: Path, learner_state: dict[str, Any]) -> None:
    """Networks to safetensors; everything else (optimizer, counters) to a weights-only-loadable torch file."""
    from safetensors.torch import save_file

    networks = {k: v for k, v in learner_state.items() if isinstance(v, dict) and k in ("online", "target", "ema")}
    rest = {k: v for k, v in learner_state.items() if k not in networks}
    tensors, skeleton = split_tensors(networks)
    # safetensors refuses shared storage; clone makes each tensor its own
    save_file(
        {k: v.clone() for k, v in tensors.items()},
        str(directory / MODEL_FILE),
        metadata={"skeleton": json.dumps(skeleton)},
    )
    torch.save(rest, directory / OPTIMIZER_FILE)


def load_learner_state(directory: Path, map_location: str = "cpu") -> dict[str, Any]:
    from safetensors import safe_open

    model_path = directory / MODEL_FILE
    try:
        with safe_open(str(model_path), framework="pt", device=map_location) as f:
            skeleton = json.loads((f.metadata() or {})["skeleton"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise CheckpointError(f"{model_path}: missing") from None
    except Exception as e:  # safetensors raises its own SafetensorError / OSError / KeyError on damage
        raise CheckpointError(f"{model_path}: unreadable or corrupt ({type(e).__name__}: {e})") from None
    opt_path = directory / OPTIMIZER_FILE
    try:
        rest = torch.load(opt_path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{opt_path}: missing") from None
    except Exception as e:  # zipfile / pickle-unpickler errors on truncated or foreign files
        raise CheckpointError(f"{opt_path}: unreadable or corrupt ({type(e).__name__}: {e})") from None
    return {**merge_tensors(skeleton, tensors), **rest}


RUN_STATE_SHAPE = {"counters": dict, "config": dict, "actors": list, "limiter": dict}


def read_run_state(directory: Path) -> dict[str, Any]:
    """`read_state` of a whole-run checkpoint, its shape checked: one clear error instead of a KeyError later."""
    state = read_state(directory)
    wrong = [key for key, kind in RUN_STATE_SHAPE.items() if not isinstance(state.get(key), kind)]
    if wrong:
        raise CheckpointError(f"{directory / STATE_FILE}: wrong shape ({', '.join(wrong)} missing or of another type)")
    return state


def read_state(directory: Path) -> dict[str, Any]:
    path = directory / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt JSON ({e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: unknown checkpoint format {found!r} (expected {FORMAT_VERSION})")
    return state


# ---- atomic directory writes ----------------------------------------------------------------------------------
def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            _fsync(Path(dirpath) / name)
        _fsync(Path(dirpath))


def _fsync(path: Path) -> None:
    """Flush a file's data, or a directory's entries (a rename is durable only once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(checkpoints_dir: Path, name: str, write: Callable[[Path], None], keep_last: int) -> Path:
    """Run `write(tmp_dir)`, fsync, rename to `checkpoints_dir/name`, then point `latest` at it; keep `keep_last`."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    for stale in checkpoints_dir.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = checkpoints_dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        _fsync_tree(tmp)
        final = checkpoints_dir / name
        if final.exists():  # the same step written twice (e.g. final checkpoint right after a periodic one)
            trash = checkpoints_dir / f".tmp-old-{name}-{uuid.uuid4().hex[:8]}"
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        tmp.rename(final)
        _fsync(checkpoints_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = checkpoints_dir / f".tmp-latest-{uuid.uuid4().hex[:8]}"
    pointer.write_text(name + "\n")
    _fsync(pointer)
    os.replace(pointer, checkpoints_dir / LATEST)
    _fsync(checkpoints_dir)
    prune(checkpoints_dir, keep_last)
    return final


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Complete checkpoint directories (they hold state.json), oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [
        p for p in checkpoints_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def prune(checkpoints_dir: Path, keep_last: int) -> None:
    latest = read_latest_name(checkpoints_dir)
    complete = list_checkpoints(checkpoints_dir)
    for old in complete[:-keep_last] if keep_last > 0 else []:
        if old.name != latest:
            shutil.rmtree(old, ignore_errors=True)


def read_latest_name(checkpoints_dir: Path) -> str | None:
    try:
        return (checkpoints_dir / LATEST).read_text().strip() or None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def find_checkpoint(path: Path) -> Path:
    """A checkpoint directory from a run directory (its `latest`), a checkpoints/ directory, or itself."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    for checkpoints_dir in (path / "checkpoints", path):
        name = read_latest_name(checkpoints_dir)
        if name and (checkpoints_dir / name / STATE_FILE).is_file():
            return checkpoints_dir / name
        complete = list_checkpoints(checkpoints_dir)
        if complete:
            return complete[-1]
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run directory or checkpoint")
    raise CheckpointError(f"{path}: no checkpoint found (expected {path}/checkpoints/{LATEST} or {STATE_FILE})")


def run_dir_of(checkpoint: Path) -> Path:
    return checkpoint.parent.parent


# ---- config on resume -----------------------------------------------------------------------------------------
def _get(d: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part, {}) if isinstance(d, dict) else {}
    return d


def check_architecture(saved: dict, config: Config) -> None:
    """Keys that define the network and its inputs must match the checkpoint; a mismatch names each key."""
    current = config.to_dict()
    problems = [
        f"{key}: checkpoint has {_get(saved, key)!r}, this run asks for {_get(current, key)!r}"
        for key in ARCHITECTURE_KEYS
        if _get(saved, key) != _get(current, key)
    ]
    if problems:
        raise ConfigError(["cannot resume: architecture keys differ from the checkpoint", *problems])


def saved_config(checkpoint: Path) -> Config:
    state = read_run_state(checkpoint)
    return build(Config, state["config"])


def config_for_resume(path: Path, overrides: list[str]) -> tuple[Config, Path]:
    """The checkpoint's resolved config with this command's overrides applied (actor count, shards, budgets...).
    The run directory stays the checkpoint's unless overridden; architecture keys must not change."""
    checkpoint = find_checkpoint(path)
    state = read_run_state(checkpoint)
    data = json.loads(json.dumps(state["config"]))  # a deep copy
    data.setdefault("run", {})["run_dir"] = str(run_dir_of(checkpoint))
    config = build(Config, apply_overrides(data, overrides))
    validate(config)
    check_architecture(state["config"], config)
    return config, checkpoint


def write_config_yaml(directory: Path, config: Config) -> None:
    (directory / "config.yaml").write_text(dump_yaml(config))


# ---- whole-run checkpoints ------------------------------------------------------------------------------------
def save_run(
    run_dir: Path,
    config: Config,
    counters: Any,
    learner_state: dict[str, Any],
    actor_states: list[dict],
    limiter_state: dict[str, Any],
    write_replay: Callable[[Path], int] | None = None,
) -> Path:
    """Write one complete checkpoint of a run (see the module docstring); returns its directory.

    `write_replay(dir)`, when given, writes one snapshot per shard under `dir/shard_<k>/` and returns the count.
    """
    import dataclasses

    def write(tmp: Path) -> None:
        save_learner_state(tmp, learner_state)
        shards = write_replay(tmp / "replay") if write_replay else 0
        state = {
            "format": FORMAT_VERSION,
            "counters": dataclasses.asdict(counters),
            "actors": actor_states,
            "limiter": limiter_state,
            "replay_shards": shards,
            "config": config.to_dict(),
            "config_hash": config.hash(),
        }
        (tmp / STATE_FILE).write_text(json.dumps(state))
        write_config_yaml(tmp, config)

    return write_atomic(run_dir / "checkpoints", f"{counters.updates:010d}", write, config.checkpoint.keep_last)


def load_counters(path: Path):
    from distdqn.run import Counters

    checkpoint = find_checkpoint(path)
    try:
        return Counters(**read_run_state(checkpoint)["counters"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{checkpoint / STATE_FILE}: counters missing or of the wrong shape ({e})") from None


def replay_snapshot_dirs(checkpoint: Path) -> list[Path]:
    """The replay snapshots of a checkpoint, by old shard index ([] when replay was not included)."""
    n = read_state(checkpoint).get("replay_shards", 0)
    return [checkpoint / "replay" / f"shard_{k}" for k in range(n)]


def load_for_inference(path: Path) -> tuple[Config, dict[str, np.ndarray], Path]:
    """(config, published weights as numpy: the online network, or its average with `learner.weight_ema`,
    checkpoint dir) for eval/generate."""
    checkpoint = find_checkpoint(path)
    config = saved_config(checkpoint)
    learner_state = load_learner_state(checkpoint)
    weights = {k: v.numpy() for k, v in learner_state["online"].items()}
    weights |= {k: v.numpy() for k, v in learner_state.get("ema", {}).items()}  # learner.weight_ema: the policy
    return config, weights, checkpoint
