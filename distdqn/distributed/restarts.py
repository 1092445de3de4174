"""How often a worker may be restarted: exponential back-off, capped per time window (`cluster.max_restarts`,
`cluster.restart_window_s`, `cluster.restart_backoff_s`).

A worker's k-th restart within the window waits `backoff_s * 2**(k-1)` seconds (at most MAX_BACKOFF_S), so an
actor that fails in its constructor does not loop at full speed; past `max_restarts` within the window the run
stops, naming the worker and its last error.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

MAX_BACKOFF_S = 60.0


class RestartPolicy:
    def __init__(
        self, max_restarts: int, window_s: float, backoff_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.backoff_s = backoff_s
        self.clock = clock
        self._history: dict[Hashable, deque[float]] = {}

    def recent(self, key: Hashable) -> int:
        """Restarts of `key` within the window."""
        history = self._history.setdefault(key, deque())
        while history and self.clock() - history[0] > self.window_s:
            history.popleft()
        return len(history)

    def delay(self, key: Hashable) -> float | None:
        """Seconds to wait before restarting `key` now, or None when it has used up its restarts in the window.
        Records the restart."""
        n = self.recent(key)
        if n >= self.max_restarts:
            return None
        self._history[key].append(self.clock())
        return min(self.backoff_s * 2**n, MAX_BACKOFF_S) if self.backoff_s else 0.0
