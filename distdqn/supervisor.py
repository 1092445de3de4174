"""The supervisor: one control loop for both runtimes — budgets, held-out evaluation, logging, checkpoints,
signals, shutdown and the final summary — around a `Runtime` (`distdqn.runtime`) that only moves data.

The loop, until a budget, the target, a signal or a failure stops it:

    progress = runtime.advance(ADVANCE_S)        train for a moment (the runtime keeps its workers busy meanwhile)
    fold progress into the run counters          env steps, inserts, episodes; the learner's totals
    evaluate on held-out prompts when due        `run.eval_interval_s`, on the newest published weights
    log when due                                 `run.log_interval_s`: metrics.jsonl, TensorBoard, the live line
    checkpoint when due                          `checkpoint.interval_s` / `checkpoint.interval_updates`

then `runtime.stop()` (in-flight work lands), a final held-out evaluation unless the target was just measured, a
final checkpoint (unless the learner is gone) and the summary. SIGTERM and SIGINT (Ctrl-C, `ray job stop`,
Kubernetes pod deletion, Slurm preemption) mean "checkpoint, then stop"; a second signal stops at once (checkpoint
writes are atomic, so it never leaves a half-written one).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from distdqn import checkpoint as ck
from distdqn import control
from distdqn.config import Config
from distdqn.evaluation import Evaluator
from distdqn.run import Counters, RunTracker
from distdqn.runtime import (
    ActorView,
    EpisodeRecord,
    Progress,
    Runtime,
    RuntimeState,
    ScaleRefused,
    WorkerUnavailable,
)

ADVANCE_S = 0.25  # seconds per `runtime.advance`: how often the supervisor looks at its clocks
EVAL_SEED_OFFSET = 12_345  # held-out evaluation plays the same episodes every time: seed run.seed + this
TRAIN_WINDOW_EPISODES = 1_000  # training success and return are averaged over about this many recent episodes
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def describe(error: BaseException) -> str:
    """`Type: first line of the message`: how a failure is named in one line."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


class Supervisor:
    """Owns one run's life around `runtime` (see the module docstring); `run()` returns the run summary."""

    def __init__(
        self,
        config: Config,
        directory: Path,
        runtime: Runtime,
        counters: Counters | None = None,
        quiet: bool = False,
        setup_began: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.runtime = runtime
        self.setup_began = clock() if setup_began is None else setup_began
        self.tracker = RunTracker(config, directory, counters, quiet=quiet, clock=clock)
        self._episodes: deque[EpisodeRecord] = deque()
        self._actors: dict[int, ActorView] = {}
        self._metrics: dict[str, Any] = {}
        self.signal: str | None = None  # the name of the first stop signal received
        self._record: dict[str, Any] = {}  # the latest metrics record
        self._shard_sizes: list[int] = []
        self.actors_target = config.actor.num_actors  # `distdqn scale` changes it while the run goes on
        request = control.read_request(directory)  # a request left from an earlier session is not replayed
        self._applied_request = request["id"] if request else None
        self._refusal: str | None = None  # why the runtime refused the applied request, if it did
        self._sampled_before = self.tracker.counters.sampled  # the run's count before the learner's current one
        self._sampled_here = 0  # the current learner's count (Progress.sampled)
        self._evaluator = Evaluator(config.network, config.env)  # one network for every evaluation of the run
        self._examples_wanted = 5  # generations each evaluation keeps (the end of the run prints the last ones)
        self._last_eval: tuple[int, Any] | None = None  # (updates, EvalResult) of the latest evaluation

    # ---- the run ----------------------------------------------------------------------------------------------
    def run(self, examples: int = 0) -> dict[str, Any]:
        """Train until a budget, the target, a signal or a failure stops the run; then stop the runtime, evaluate,
        write the final checkpoint, print `examples` held-out generations; the summary."""
        self._examples_wanted = max(self._examples_wanted, examples)
        with self._stop_signals():
            self.publish_status("starting")
            self.runtime.start()
            self.tracker.start_clock(self.setup_began)
            self.publish_status("running")
            try:
                reason = self._loop()
            except Exception as error:  # a bug or an environment problem (a task raising, a full disk, ...)
                reason = f"failed: {describe(error)}"
            self.publish_status("stopping", reason)
            failed = reason.startswith("failed")
            self._attempt("stopping the workers", lambda: self._fold(self.runtime.stop()))
            if self.tracker.counters.last_success is None or not reason.startswith("target reached"):
                self._attempt("the final evaluation", self.evaluate)  # the success of the weights the run ends with
            self._attempt("the final checkpoint", lambda: self.save_checkpoint(final=True))
            if examples and not failed:
                self._attempt("the examples", lambda: self.show_examples(examples))
            self._record = {**self._record, **self._extras()}  # the final view, not the last periodic one
            self.publish_status("failed" if failed else "finished", reason)
        return self.tracker.summary(reason)

    def _attempt(self, what: str, step: Callable[[], Any]) -> None:
        """One step of the shutdown; its failure (after a failed run, the learner may be gone) is one line."""
        try:
            step()
        except Exception as error:
            self.tracker.message(f"[supervisor] {what} failed: {describe(error)}")

    def _loop(self) -> str:
        tracker = self.tracker
        try:
            while True:
                if self.signal:
                    return f"interrupted ({self.signal})"
                if reason := tracker.stop_reason():
                    return reason
                progress = self.runtime.advance(ADVANCE_S, tracker.updates_until_due())
                self._fold(progress)
                if progress.failure:
                    return f"failed: {progress.failure}"
                if tracker.eval_due():
                    self.evaluate()
                self._apply_control()
                if tracker.log_due():
                    self._record = tracker.log(self._extras())
                    self.publish_status("running")
                if tracker.checkpoint_due():
                    self.save_checkpoint()
        except KeyboardInterrupt:  # Ctrl-C where no handler could be installed (not the main thread)
            return "interrupted"

    @contextlib.contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """SIGINT / SIGTERM: the first asks the loop to checkpoint and stop, a second raises KeyboardInterrupt at
        once. Handlers can only be installed from the main thread; elsewhere Ctrl-C stays a KeyboardInterrupt."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self.signal is not None:
                raise KeyboardInterrupt(f"second stop signal ({name})")
            self.signal = name
            self.tracker.message(f"[supervisor] {name}: stopping after a final checkpoint (send it again to stop now)")

        previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    # ---- what the runtime reports -----------------------------------------------------------------------------
    def _fold(self, p: Progress) -> None:
        c = self.tracker.counters
        c.env_steps += p.env_steps
        c.generated += p.generated
        c.inserted += p.inserted
        c.rejected += p.rejected
        c.duplicates += p.duplicates
        c.lost += p.lost
        c.episodes += sum(e.count for e in p.episodes)
        if p.updates is not None:
            c.updates, c.version = p.updates, p.version or 0
        if p.sampled is not None:  # the learner's own count restarts when it is restored or restarted
            if p.sampled < self._sampled_here:
                self._sampled_before += self._sampled_here
            self._sampled_here = p.sampled
            c.sampled = self._sampled_before + p.sampled
        self._episodes.extend(e for e in p.episodes if e.count)
        while self._episodes and sum(e.count for e in self._episodes) - self._episodes[0].count >= (
            TRAIN_WINDOW_EPISODES
        ):
            self._episodes.popleft()
        if p.actors:
            self._actors = dict(p.actors)
        if p.shard_sizes:
            self._shard_sizes = list(p.shard_sizes)
        self._metrics.update(p.metrics)
        for text in p.messages:
            self.tracker.message(text)

    # ---- status and control ------------------------------------------------------------------------------------
    def _apply_control(self) -> None:
        """Take a new `distdqn scale` request, and carry out the actor target when the runtime can."""
        request = control.read_request(self.tracker.dir)
        if request is not None and request["id"] != self._applied_request:
            self._applied_request, self._refusal = request["id"], None
            self.actors_target = request["actors"]
            self.tracker.message(f"[control] request {request['id']}: {self.actors_target} actors")
        actor = self.config.actor
        if self.actors_target == actor.num_actors:
            return
        try:
            if self.runtime.scale(self.actors_target):
                actor.num_actors = self.actors_target  # checkpoints (and so resumes) keep the new count
        except ScaleRefused as refusal:
            self._refusal = str(refusal)
            self.tracker.message(f"[control] request {self._applied_request} refused: {refusal}")
            self.actors_target = actor.num_actors
            self.publish_status("running")  # `distdqn scale` is waiting for the answer

    def publish_status(self, state: str, reason: str | None = None) -> None:
        """Write status.json (see `distdqn.control`); a failure to write is not the run's failure."""
        c, r = self.tracker.counters, self._record
        by_node: dict[str, int] = {}
        for view in self._actors.values():
            if view.node:
                by_node[view.node[:12]] = by_node.get(view.node[:12], 0) + 1
        status = {
            "state": state,
            "stop_reason": reason,
            "run_dir": str(self.tracker.dir),
            "task": self.config.env.task,
            "difficulty": self.config.env.difficulty,
            "wall_s": self.tracker.wall_s(),
            "env_steps": c.env_steps,
            "updates": c.updates,
            "inserted": c.inserted,
            "sampled": c.sampled,
            "env_steps_per_s": r.get("rate.env_steps_per_s"),
            "updates_per_s": r.get("rate.updates_per_s"),
            "samples_per_insert": c.sampled / c.inserted if c.inserted else None,
            "eval_success": c.last_success,
            "best_success": c.best_success,
            "target_success": self.config.run.target_success or None,
            "time_to_target_s": c.time_to_target_s,
            "train_success": r.get("train.success"),
            "actors_alive": 0 if state in ("finished", "failed") else len(self._actors),  # the run ended: none
            "actors_target": self.actors_target,
            "actor_restarts": r.get("actor.restarts", 0),
            "restarts": {kind: r.get(f"{kind}.restarts", 0) for kind in ("actor", "shard", "learner")},
            "actors_by_node": by_node,
            "epsilons": {str(i): round(v.epsilon, 6) for i, v in sorted(self._actors.items())},
            "version": c.version,
            "version_lag": r.get("version_lag"),
            "replay_size": r.get("replay.size"),
            "replay_shards": self._shard_sizes,
            "last_checkpoint": self.tracker.last_checkpoint,
            "control_request": self._applied_request,
            "control_refused": self._refusal,
        }
        try:
            control.write_status(self.tracker.dir, status)
        except OSError as error:
            self.tracker.message(f"[status] cannot write status.json ({error})")

    def _extras(self) -> dict[str, Any]:
        """The run's metrics beyond the counters: training success (overall and by epsilon), actor view, and the
        runtime's own (learner.*, replay.*, actor.*)."""
        window = list(self._episodes)
        count = sum(e.count for e in window)
        extras: dict[str, Any] = {
            "train.success": sum(e.success_sum for e in window) / count if count else None,
            "train.return": sum(e.return_sum for e in window) / count if count else None,
            "actor.epsilon_min": min((a.epsilon for a in self._actors.values()), default=None),
            "actor.count": len(self._actors),
            "version_lag": self._version_lag(),
        }
        by_eps: dict[str, list[float]] = {}
        for e in window:
            totals = by_eps.setdefault(f"{e.epsilon:.3g}", [0.0, 0.0])
            totals[0] += e.success_sum
            totals[1] += e.count
        for eps, (successes, n) in sorted(by_eps.items()):
            extras[f"train.success_by_eps.{eps}"] = successes / n
        extras.update(self._metrics)
        return extras

    # ---- evaluation -------------------------------------------------------------------------------------------
    def evaluate(self, examples: int = 5) -> float | None:
        """Greedy held-out evaluation of the newest weights (the same episodes every time); None when the runtime
        has no weights to offer (its learner is gone)."""
        weights = self.runtime.latest_weights()
        if weights is None:
            return None
        cfg = self.config
        result = self._evaluator.evaluate(
            weights,
            episodes=cfg.run.eval_episodes,
            seed=cfg.run.seed + EVAL_SEED_OFFSET,
            examples=max(examples, self._examples_wanted),
        )
        self.tracker.record_eval(result.success, result.mean_return, result.examples[:examples])
        self._last_eval = (self.tracker.counters.updates, result)
        return result.success

    def _version_lag(self) -> int | None:
        """How many weight versions the most stale actor is behind the newest known (an actor may already hold a
        version newer than the learner's last report)."""
        if not self._actors:
            return None
        versions = [a.version for a in self._actors.values()]
        return max(self.tracker.counters.version, *versions) - min(versions)

    def show_examples(self, n: int) -> None:
        """`n` generations of the evaluation the run's final success comes from: the same weights and episodes."""
        if self._last_eval is None:
            return
        updates, result = self._last_eval
        print(f"held-out generations (greedy; the evaluation at {updates:,} updates, success {result.success:.3f}):")
        for prompt, text, ok in result.examples[:n]:
            print(f"  {'+' if ok >= 1 else '-'} {prompt} -> {text}")

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def save_checkpoint(self, final: bool = False) -> Path | None:
        """Write a checkpoint of the whole run (replay too with `checkpoint.include_replay`). A failed write is
        reported and leaves the previous checkpoint intact (writes are atomic); the run goes on."""
        tracker = self.tracker
        tracker.counters.wall_s = tracker.wall_s()
        write_replay = self.runtime.write_replay if self.config.checkpoint.include_replay else None
        try:
            state = self.runtime.state_dict()
            path = ck.save_run(
                tracker.dir, self.config, tracker.counters, state.learner, state.actors, state.limiter, write_replay
            )
        except (OSError, WorkerUnavailable) as error:
            what = "final checkpoint" if final else "checkpoint"
            tracker.message(f"[checkpoint] {what} not written ({describe(error)}); the previous one stands")
            tracker.checkpoint_done(None)
            return None
        tracker.checkpoint_done(path)
        return path

    def restore(self, path: Path) -> Path:
        """Continue from the checkpoint at `path` (a run directory or a checkpoint directory): learner, optimizer,
        actors by index (extra actors start fresh), rate limiter, replay snapshots. Call before `run()`."""
        checkpoint = ck.find_checkpoint(path)
        saved = ck.read_run_state(checkpoint)
        try:
            state = RuntimeState(ck.load_learner_state(checkpoint), saved["limiter"], list(saved["actors"]))
        except (KeyError, TypeError) as error:
            raise ck.CheckpointError(
                f"{checkpoint / ck.STATE_FILE}: not a checkpoint state ({describe(error)})"
            ) from None
        size, problems = self.runtime.load_state_dict(state, ck.replay_snapshot_dirs(checkpoint))
        for problem in problems:
            self.tracker.message(f"[resume] {problem}")
        c = self.tracker.counters
        self.tracker.message(f"[resume] {checkpoint}: env_steps={c.env_steps} updates={c.updates} replay={size}")
        return checkpoint

    def close(self) -> None:
        try:
            self.runtime.close()
        finally:
            self.tracker.close()
