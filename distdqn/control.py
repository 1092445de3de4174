"""What a running job publishes and the commands it accepts, through its run directory.

- `status.json` (written atomically by the supervisor at every log interval, at start and at the end): state,
  counters, rates, success, actors, replay, the last checkpoint. `distdqn status RUN` reads it; reading never
  touches the run.
- `control.json` (written atomically by `distdqn scale RUN --actors N`): `{"id": ..., "actors": N}`. The supervisor
  looks for it once per loop (a stat of one file) and applies a request once, by id; writing the same N again
  changes nothing. Whoever can write the run directory can command the run: on a cluster that is the run's
  storage, which the cluster's users share.

Both work wherever the run directory is reachable: the machine of the run, or shared storage on a cluster.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
CONTROL_FILE = "control.json"

# A running job rewrites status.json every `run.log_interval_s`; older than this and it is presumed gone.
STALE_AFTER_S = 30.0


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def write_status(run_dir: Path, status: dict[str, Any]) -> None:
    """Publish the run's status (`updated_at`, `host` and `pid` are added here)."""
    _write_atomic(
        Path(run_dir) / STATUS_FILE,
        {**status, "updated_at": time.time(), "host": socket.gethostname(), "pid": os.getpid()},
    )


def read_status(run_dir: Path) -> dict[str, Any]:
    """The run's latest status, with `live` (True while its process keeps publishing) and `age_s` added."""
    path = Path(run_dir) / STATUS_FILE
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{run_dir}: no {STATUS_FILE} (not a run directory, or the run never started)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: unreadable ({e})") from None
    age = time.time() - float(status.get("updated_at", 0))
    running = status.get("state") in ("starting", "running", "stopping")
    status["age_s"] = round(age, 1)
    status["live"] = running and age < STALE_AFTER_S and _process_may_live(status)
    if running and not status["live"]:
        status["state"] = f"{status['state']} (stale: no update for {age:.0f} s; the process is gone?)"
    return status


def _process_may_live(status: dict[str, Any]) -> bool:
    if status.get("host") != socket.gethostname():
        return True  # another machine's process: only the age tells
    try:
        os.kill(int(status["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError):
        return True
    return True


def request_scale(run_dir: Path, actors: int) -> str:
    """Ask the run in `run_dir` to run `actors` actors; the request's id (the status echoes it once applied)."""
    if actors < 1:
        raise ValueError(f"--actors must be >= 1, got {actors}")
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    request_id = uuid.uuid4().hex[:12]
    _write_atomic(Path(run_dir) / CONTROL_FILE, {"id": request_id, "actors": int(actors), "time": time.time()})
    return request_id


def read_request(run_dir: Path) -> dict[str, Any] | None:
    """The latest control request, or None (no file, or one that is not a valid request: it is ignored)."""
    try:
        request = json.loads((Path(run_dir) / CONTROL_FILE).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    actors = request.get("actors") if isinstance(request, dict) else None
    if not isinstance(actors, int) or isinstance(actors, bool) or actors < 1 or not isinstance(request.get("id"), str):
        return None
    return request


def format_status(s: dict[str, Any]) -> str:
    """A few human lines from a status record."""

    def num(key: str, fmt: str = ",.0f") -> str:
        value = s.get(key)
        return "-" if value is None else format(value, fmt)

    lines = [
        f"run        {s.get('run_dir')}  ({s.get('task')}, {s.get('difficulty')})",
        f"state      {s.get('state')}" + (f": {s['stop_reason']}" if s.get("stop_reason") else ""),
        f"clock      {num('wall_s', '.1f')} s of training; updated {s.get('age_s')} s ago by pid {s.get('pid')} on "
        f"{s.get('host')}",
        f"progress   env steps {num('env_steps')} ({num('env_steps_per_s')}/s), updates {num('updates')} "
        f"({num('updates_per_s')}/s), samples per insert {num('samples_per_insert', '.2f')}",
        f"success    held-out {num('eval_success', '.3f')} (best {num('best_success', '.3f')}, target "
        f"{s.get('target_success') or '-'}), training {num('train_success', '.3f')}",
        f"actors     {s.get('actors_alive')} alive (target {s.get('actors_target')}), weights lag {num('version_lag')}",
        "restarts   " + ", ".join(f"{kind} {n}" for kind, n in (s.get("restarts") or {}).items()),
    ]
    if s.get("control_refused") and s.get("live"):
        lines.append(f"           last scale request refused: {s['control_refused']}")
    nodes = s.get("actors_by_node") or {}
    if nodes:
        lines.append("           by node: " + ", ".join(f"{node}: {n}" for node, n in sorted(nodes.items())))
    shards = s.get("replay_shards") or []
    lines.append(
        f"replay     {num('replay_size')} transitions"
        + (" in shards [" + ", ".join(f"{n:,}" for n in shards) + "]" if shards else "")
    )
    lines.append(f"checkpoint {s.get('last_checkpoint') or '-'}")
    return "\n".join(lines)
