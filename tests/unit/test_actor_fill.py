"""The actor's fill below the replay's minimum size (ActorWorker._may_fill): while the learner reports the replay
short of `replay.min_size_to_sample`, each actor pushes its share of the reported shortfall per report and then
waits for a newer one; the share renews every FILL_BUDGET_S seconds even when no report moves. (The integration
test `test_the_learner_pretrains_on_demonstrations_while_actors_wait` checks the bound on real Ray actors.)"""

from collections import deque
from types import SimpleNamespace

import pytest

from distdqn.distributed import actor_worker
from distdqn.distributed.actor_worker import ActorWorker, own_shards
from distdqn.replay.rate_limiter import RateLimiter


@pytest.fixture
def clock(monkeypatch):
    now = SimpleNamespace(t=100.0)
    monkeypatch.setattr(actor_worker.time, "monotonic", lambda: now.t)
    return now


def worker(num_actors: int, min_size: int = 256) -> ActorWorker:
    """The fill's state alone: an ActorWorker without its Ray actor, env or network."""
    w = object.__new__(ActorWorker)
    w.limiter = RateLimiter(min_size, samples_per_insert=8.0, tolerance=0.5)
    w.num_actors = num_actors
    w._totals = {"inserted": 0}
    w._in_flight = deque()
    w._fill_mark = (0, 0.0)
    return w


def test_an_actor_fills_its_share_of_the_shortfall_then_waits_for_a_newer_report(clock):
    w = worker(num_actors=2)
    assert w._may_fill(reported=0)  # share: (256 - 0) / 2 = 128 transitions
    w._in_flight.append(SimpleNamespace(items=100))  # in flight counts as stored
    assert w._may_fill(reported=0)
    w._totals["inserted"] = 28
    assert not w._may_fill(reported=0)  # 128 stored since the mark: its share, whatever the stale report says
    clock.t += 0.5
    assert not w._may_fill(reported=0)
    clock.t += actor_worker.FILL_BUDGET_S  # no report moved for a while (pushes lost to a restarted shard, say)
    assert w._may_fill(reported=0)


def test_the_share_is_of_what_the_report_says_is_missing(clock):
    w = worker(num_actors=4)
    w._fill_mark = (0, clock.t)
    w._totals["inserted"] = 10
    assert w._may_fill(reported=200)  # 10 * 4 = 40 < 56 missing
    w._totals["inserted"] = 14
    assert not w._may_fill(reported=200)  # 14 * 4 = 56: the shortfall, spread over 4 actors
    w._fill_mark = (14, clock.t)  # a newer report moved the size: the count starts again from here
    assert w._may_fill(reported=250)


@pytest.mark.parametrize(("actors", "shards"), [(1, 1), (2, 4), (3, 4), (4, 4), (8, 3), (1, 5)])
def test_every_shard_is_fed_and_each_actor_has_a_shard(actors, shards):
    owned = [own_shards(i, actors, shards) for i in range(actors)]
    assert all(owned) and {k for own in owned for k in own} == set(range(shards))
    if actors >= shards:
        assert owned == [[i % shards] for i in range(actors)]  # index mod K, as before
    else:
        assert sum(len(own) for own in owned) == shards  # each shard has one actor
