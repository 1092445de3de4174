"""The parameter store: the latest published weights (version + object-store reference) and the learner's
progress counters, read by actors and the driver. A plain class; the driver's `connect_components` makes it a Ray
actor.

Weights never travel through this actor by value: the learner `ray.put`s a numpy state dict once per publication and
hands over the reference wrapped in a list (a bare ObjectRef argument would be resolved by Ray), so a publication
costs one object-store write however many actors pull it, and an actor pulls only when the version moved.
"""

from __future__ import annotations

from typing import Any


class ParameterStore:
    def __init__(self) -> None:
        self.version = -1
        self._ref: list[Any] = []
        self.learner_counters: dict[str, Any] = {"updates": 0, "sampled": 0, "target_syncs": 0}

    def publish(self, version: int, ref: list[Any], counters: dict[str, Any] | None = None) -> None:
        """Record a newer weights version; an older or equal version (a retried call) is ignored."""
        if version > self.version:
            self.version = version
            self._ref = ref
        if counters:
            self.learner_counters.update(counters)

    def report(self, counters: dict[str, Any]) -> None:
        """Learner progress between publications (sample count for the actors' rate limiting)."""
        self.learner_counters.update(counters)

    def latest(self, known_version: int = -1) -> tuple[int, list[Any] | None, dict[str, Any]]:
        """(version, [ref] or None when `known_version` is current, learner counters)."""
        ref = self._ref if self.version > known_version else None
        return self.version, ref, self.learner_counters

    def ping(self) -> bool:
        return True
