"""The restart policy: exponential back-off, a cap per window, and the window sliding on."""

from distdqn.distributed.restarts import MAX_BACKOFF_S, RestartPolicy


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_backoff_doubles_and_the_cap_ends_it():
    clock = Clock()
    policy = RestartPolicy(max_restarts=3, window_s=100.0, backoff_s=0.5, clock=clock)
    assert [policy.delay("actor 0") for _ in range(3)] == [0.5, 1.0, 2.0]
    assert policy.delay("actor 0") is None  # the fourth within the window
    assert policy.delay("actor 1") == 0.5  # per worker


def test_window_slides():
    clock = Clock()
    policy = RestartPolicy(max_restarts=2, window_s=10.0, backoff_s=1.0, clock=clock)
    policy.delay("shard 0")
    clock.now = 5.0
    policy.delay("shard 0")
    assert policy.delay("shard 0") is None
    clock.now = 10.5  # the first restart left the window
    assert policy.recent("shard 0") == 1
    assert policy.delay("shard 0") == 2.0


def test_backoff_is_capped_and_zero_means_at_once():
    policy = RestartPolicy(max_restarts=100, window_s=1e9, backoff_s=1.0, clock=Clock())
    assert max(policy.delay("x") for _ in range(20)) == MAX_BACKOFF_S
    assert RestartPolicy(5, 10.0, 0.0, clock=Clock()).delay("x") == 0.0
