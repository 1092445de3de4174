"""Run bookkeeping for the supervisor: run directory, counters, the run clock, budgets, evaluation and checkpoint
cadence, target detection, progress and metrics records, and the run summary written by `--json`."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distdqn.config import Config, RunConfig, dump_yaml, run_dir
from distdqn.metrics import ConsoleProgress, MultiSink, format_si, open_run_sinks


@dataclasses.dataclass
class Counters:
    """Monotonic run counters; they continue across resumes (`wall_s` is wall-clock time summed over sessions)."""

    env_steps: int = 0  # environment steps summed over all envs of all actors
    updates: int = 0  # learner gradient updates
    episodes: int = 0  # finished training episodes
    generated: int = 0  # transitions made by the actors = inserted + rejected + duplicates + lost (+ in flight)
    inserted: int = 0  # transitions inserted into the replay
    rejected: int = 0  # transitions a shard refused as malformed or out of range
    duplicates: int = 0  # transitions a shard dropped as already stored
    lost: int = 0  # transitions whose push failed or whose actor died with them in flight
    sampled: int = 0  # transitions sampled by the learner
    version: int = 0  # latest published weights version
    wall_s: float = 0.0  # wall-clock seconds of training, summed over resumed sessions
    time_to_target_s: float | None = None  # wall_s when held-out success first reached the target
    env_steps_to_target: int | None = None  # env_steps at that moment
    best_success: float = 0.0  # best held-out success seen
    last_success: float | None = None  # latest held-out success


def stop_reason(run: RunConfig, c: Counters, wall_s: float) -> str | None:
    """Why a run at these counters and run clock should stop, or None. Budgets of 0 are unlimited."""
    if run.max_env_steps and c.env_steps >= run.max_env_steps:
        return f"env-step budget reached ({c.env_steps} >= {run.max_env_steps})"
    if run.max_updates and c.updates >= run.max_updates:
        return f"update budget reached ({c.updates} >= {run.max_updates})"
    if run.max_seconds and wall_s >= run.max_seconds:
        return f"time budget reached ({wall_s:.0f} s >= {run.max_seconds:.0f} s)"
    if run.target_success and c.time_to_target_s is not None:
        return f"target reached (held-out success {c.last_success:.3f} >= {run.target_success})"
    return None


class RunTracker:
    """Owns the run clock, the counters and the run's outputs. The supervisor asks it what is due (`stop_reason`,
    `eval_due`, `log_due`, `checkpoint_due`) and reports what happened (`record_eval`, `log`, `checkpoint_done`).

    `clock` (seconds, monotonic) is injectable so that tests control time.
    """

    def __init__(
        self,
        config: Config,
        directory: Path,
        counters: Counters | None = None,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.clock = clock
        self.dir = directory
        self.counters = counters or Counters()
        self._wall_at_start = self.counters.wall_s
        self.startup_s: float | None = None  # this session's set-up before training (see start_clock)
        self.last_checkpoint: str | None = None  # the latest checkpoint written in this session
        self._last_log = 0.0
        self._last_counters = dataclasses.replace(self.counters)
        self.start_clock()  # the supervisor restarts it once every component is up
        self.sinks: MultiSink = open_run_sinks(directory, purge_step=self.counters.env_steps or None, config=config)
        self.progress = ConsoleProgress() if not quiet else None

    # ---- clock and budgets ------------------------------------------------------------------------------------
    def start_clock(self, setup_began: float | None = None) -> None:
        """Start (or restart) the run clock: the supervisor calls it when every component is up and training begins,
        so that `wall_s` and time to target count training in both runtimes, not construction (Ray's start and the
        workers' imports, building networks and optimizers). The seconds since `setup_began` (a reading of
        `clock`) are reported as the summary's `startup_s`."""
        now = self.clock()
        if setup_began is not None:
            self.startup_s = now - setup_began
        self._session_start = now
        self._last_eval = now
        self._last_checkpoint = (now, self.counters.updates)
        self._last_rate_time = now

    def wall_s(self) -> float:
        return self._wall_at_start + self.clock() - self._session_start

    def stop_reason(self) -> str | None:
        """Why the run should stop now, or None. Budgets of 0 are unlimited."""
        return stop_reason(self.config.run, self.counters, self.wall_s())

    def checkpoint_due(self) -> bool:
        """Periodic checkpoints by time (`checkpoint.interval_s`) and/or updates (`checkpoint.interval_updates`)."""
        ck = self.config.checkpoint
        when, updates = self._last_checkpoint
        by_time = ck.interval_s > 0 and self.clock() - when >= ck.interval_s
        by_updates = ck.interval_updates > 0 and self.counters.updates - updates >= ck.interval_updates
        return by_time or by_updates

    def updates_until_due(self) -> int | None:
        """Updates until the update budget or an update-count checkpoint is due (None: neither is set), so that a
        runtime that can stop on an exact update count lands on them."""
        ck, run, c = self.config.checkpoint, self.config.run, self.counters
        left = []
        if run.max_updates:
            left.append(run.max_updates - c.updates)
        if ck.interval_updates > 0:
            left.append(self._last_checkpoint[1] + ck.interval_updates - c.updates)
        return max(min(left), 0) if left else None

    def checkpoint_done(self, path: Path | None) -> None:
        """A checkpoint was written to `path` (None: the write failed; the next attempt waits a full interval)."""
        self._last_checkpoint = (self.clock(), self.counters.updates)
        if path is None:
            return
        self.last_checkpoint = str(path)
        self.sinks.write(
            self.counters.env_steps,
            {"kind": "checkpoint", "path": str(path), "updates": self.counters.updates, "wall_s": self.wall_s()},
        )

    def eval_due(self) -> bool:
        return self.clock() - self._last_eval >= self.config.run.eval_interval_s

    # ---- records ----------------------------------------------------------------------------------------------
    def record_eval(self, success: float, mean_return: float, examples: list | None = None) -> None:
        self._last_eval = self.clock()
        c = self.counters
        c.last_success = float(success)
        c.best_success = max(c.best_success, float(success))
        target = self.config.run.target_success
        if target and success >= target and c.time_to_target_s is None:
            c.time_to_target_s = self.wall_s()
            c.env_steps_to_target = c.env_steps
        self.sinks.write(
            c.env_steps,
            {
                "kind": "eval",
                "env_steps": c.env_steps,
                "updates": c.updates,
                "wall_s": self.wall_s(),
                "eval.success": success,
                "eval.return": mean_return,
            },
        )
        self.message(
            f"[eval] env_steps={format_si(c.env_steps)} updates={c.updates} held-out success={success:.3f} "
            f"return={mean_return:.3f}"
        )
        for prompt, text, ok in (examples or [])[:3]:
            self.message(f"   {'+' if ok >= 1 else '-'} {prompt} -> {text}")

    def log_due(self) -> bool:
        return self.clock() - self._last_log >= self.config.run.log_interval_s

    def log(self, extras: dict[str, Any]) -> dict[str, Any]:
        """A metrics record with rates since the previous one, and the live progress line; the record."""
        now = self.clock()
        dt = max(now - self._last_rate_time, 1e-9)
        c, prev = self.counters, self._last_counters
        rates = {
            "rate.env_steps_per_s": (c.env_steps - prev.env_steps) / dt,
            "rate.updates_per_s": (c.updates - prev.updates) / dt,
            "rate.inserts_per_s": (c.inserted - prev.inserted) / dt,
            "rate.samples_per_s": (c.sampled - prev.sampled) / dt,
        }
        self._last_counters = dataclasses.replace(c)
        self._last_rate_time = now
        self._last_log = now
        record = {
            "kind": "train",
            "env_steps": c.env_steps,
            "updates": c.updates,
            "episodes": c.episodes,
            "inserted": c.inserted,
            "sampled": c.sampled,
            "generated": c.generated,
            "rejected": c.rejected,
            "duplicates": c.duplicates,
            "lost": c.lost,
            "version": c.version,
            "wall_s": self.wall_s(),
            **rates,
            **extras,
        }
        self.sinks.write(c.env_steps, record)
        if self.progress:
            spi = c.sampled / max(c.inserted, 1)
            parts = [
                f"{self.wall_s():6.0f}s",
                f"steps {format_si(c.env_steps)} ({format_si(rates['rate.env_steps_per_s'])}/s)",
                f"upd {format_si(c.updates)} ({rates['rate.updates_per_s']:.0f}/s)",
                f"ins/smp {format_si(rates['rate.inserts_per_s'])}/{format_si(rates['rate.samples_per_s'])}/s",
                f"spi {spi:.2f}",
            ]
            for key, label in (
                ("train.success", "succ"),
                ("learner.loss", "loss"),
                ("learner.q_mean", "q"),
                ("learner.demo_accuracy", "demo acc"),  # with demonstrations: the oracle's token is the greedy one
                ("actor.epsilon_min", "eps"),
                ("replay.size", "replay"),
                ("version_lag", "lag"),
            ):
                if key in extras and extras[key] is not None:
                    value = extras[key]
                    parts.append(f"{label} {format_si(value) if key == 'replay.size' else f'{value:.3g}'}")
            if c.last_success is not None:
                parts.append(f"eval {c.last_success:.2f}")
            if c.rejected or c.duplicates or c.lost:
                parts.append(f"rej/dup/lost {format_si(c.rejected)}/{format_si(c.duplicates)}/{format_si(c.lost)}")
            self.progress.show(" | ".join(parts))
        return record

    def message(self, text: str) -> None:
        if self.progress:
            self.progress.message(text)

    def summary(self, reason: str | None) -> dict[str, Any]:
        c = self.counters
        return {
            "run_dir": str(self.dir),
            "task": self.config.env.task,
            "difficulty": self.config.env.difficulty,
            "stop_reason": reason,
            "env_steps": c.env_steps,
            "updates": c.updates,
            "episodes": c.episodes,
            "transitions": {
                "generated": c.generated,
                "inserted": c.inserted,
                "rejected": c.rejected,
                "duplicates": c.duplicates,
                "lost": c.lost,
            },
            "wall_s": round(self.wall_s(), 3),
            "startup_s": None if self.startup_s is None else round(self.startup_s, 3),
            "time_to_target_s": c.time_to_target_s,
            "env_steps_to_target": c.env_steps_to_target,
            "target_success": self.config.run.target_success or None,
            "final_success": c.last_success,
            "best_success": c.best_success,
        }

    def close(self) -> None:
        self.sinks.close()
        if self.progress:
            self.progress.close()


def prepare_run_dir(config: Config, resuming: bool = False, say: Callable[[str], None] = print) -> Path:
    """Create the run directory and save the resolved config there. A new run never writes into a directory that
    holds another run (`holds_run`): under the default `runs/<name>` it takes the next free `runs/<name>-2`, `-3`,
    ... (saying so, and naming the run after it); an explicit `run.run_dir` holding one is an error pointing at
    `--resume`. A run without a name is named after its directory."""
    directory = run_dir(config)
    if not resuming and holds_run(directory):
        if config.run.run_dir:
            raise ValueError(
                f"{directory} already holds a run: continue it with `--resume {directory}`, or give a new --run-dir"
            )
        base, k = directory, 2
        while holds_run(directory := base.with_name(f"{base.name}-{k}")):
            k += 1
        say(f"[run] {base} holds an earlier run (`--resume {base}` continues it); this run goes to {directory}")
        config.run.name = directory.name  # so that run_dir(config) is this directory for every part of the run
    config.run.name = config.run.name or directory.name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(dump_yaml(config))
    return directory


def holds_run(directory: Path) -> bool:
    """Whether `directory` holds a run that started: metrics, a status or a checkpoint (a config alone does not)."""
    checkpoints = directory / "checkpoints"
    return (
        (directory / "metrics.jsonl").exists()
        or (directory / "status.json").exists()
        or (checkpoints.is_dir() and any(checkpoints.iterdir()))
    )


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
