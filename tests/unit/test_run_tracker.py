"""The run clock, on an injected clock: it counts training from `start_clock()` (not construction), reports
set-up as start-up, carries a resumed run's earlier seconds, and drives the evaluation, log and checkpoint cadence."""

from distdqn.config import load_config
from distdqn.run import Counters, RunTracker


class FakeClock:
    def __init__(self, now: float = 1024.0):  # a power of two: the sums below stay exact
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_tracker(tmp_path, clock, counters=None, *overrides):
    return RunTracker(load_config(None, list(overrides)), tmp_path, counters, quiet=True, clock=clock)


def test_clock_counts_from_start_clock(tmp_path):
    clock = FakeClock()
    tracker = make_tracker(tmp_path, clock, None, "run.eval_interval_s=0.25")
    clock.now += 0.5  # construction: not training time
    assert tracker.eval_due()
    tracker.start_clock(setup_began=clock.now - 2.0)
    assert tracker.wall_s() == 0.0
    assert tracker.summary(None)["startup_s"] == 2.0  # set-up is reported, not counted as training
    assert not tracker.eval_due()  # the evaluation interval counts from the start too
    clock.now += 0.125
    assert not tracker.eval_due()
    clock.now += 0.125
    assert tracker.eval_due() and tracker.wall_s() == 0.25
    tracker.close()


def test_resumed_run_keeps_its_earlier_seconds(tmp_path):
    clock = FakeClock()
    tracker = make_tracker(tmp_path, clock, Counters(wall_s=100.0))
    clock.now += 5.0
    tracker.start_clock()
    clock.now += 0.5
    assert tracker.wall_s() == 100.5
    tracker.close()


def test_time_budget_and_checkpoint_cadence(tmp_path):
    clock = FakeClock()
    tracker = make_tracker(
        tmp_path, clock, None, "run.max_seconds=10", "checkpoint.interval_s=4", "checkpoint.interval_updates=50"
    )
    tracker.start_clock()
    clock.now += 3.9
    assert tracker.stop_reason() is None and not tracker.checkpoint_due()
    tracker.counters.updates = 50
    assert tracker.checkpoint_due()  # by updates
    assert tracker.updates_until_due() == 0
    tracker.checkpoint_done(tmp_path / "ck")
    assert not tracker.checkpoint_due() and tracker.updates_until_due() == 50
    clock.now += 4.0
    assert tracker.checkpoint_due()  # by time
    clock.now += 2.1
    assert tracker.stop_reason().startswith("time budget reached")
    tracker.close()


def test_failed_checkpoint_waits_a_full_interval(tmp_path):
    clock = FakeClock()
    tracker = make_tracker(tmp_path, clock, None, "checkpoint.interval_s=4")
    tracker.start_clock()
    clock.now += 4.0
    assert tracker.checkpoint_due()
    tracker.checkpoint_done(None)  # the write failed
    assert not tracker.checkpoint_due()
    clock.now += 4.0
    assert tracker.checkpoint_due()
    tracker.close()
