"""The run clock: it counts training from `start_clock()` (not the runners' construction) and carries a resumed
run's earlier seconds."""

import time

from distdqn.config import load_config
from distdqn.run import Counters, RunTracker


def make_tracker(tmp_path, counters=None, **run):
    overrides = [f"run.{k}={v}" for k, v in run.items()]
    return RunTracker(load_config(None, overrides), tmp_path, counters, quiet=True)


def test_clock_counts_from_start_clock(tmp_path):
    tracker = make_tracker(tmp_path, eval_interval_s=0.2)
    time.sleep(0.3)  # construction: not training time
    assert tracker.wall_s() >= 0.3 and tracker.eval_due()
    tracker.start_clock(setup_began=time.monotonic() - 2.0)
    assert tracker.wall_s() < 0.1
    assert 2.0 <= tracker.summary(None)["startup_s"] < 2.1  # set-up is reported, not counted as training
    assert not tracker.eval_due()  # the evaluation interval counts from the start too
    time.sleep(0.25)
    assert tracker.eval_due()
    tracker.close()


def test_resumed_run_keeps_its_earlier_seconds(tmp_path):
    tracker = make_tracker(tmp_path, counters=Counters(wall_s=100.0))
    time.sleep(0.1)
    tracker.start_clock()
    assert 100.0 <= tracker.wall_s() < 100.1
    tracker.close()
