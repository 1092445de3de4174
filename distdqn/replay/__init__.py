"""Prioritized replay: the sum/min tree, one shard's storage and sampling, snapshots and their restore rule, the
rate limiter and sharding maths."""

from distdqn.replay.prioritized import PrioritizedReplay, load_state_dir, save_state_dir
from distdqn.replay.rate_limiter import RateLimiter
from distdqn.replay.restore import RestoreReport, restore_snapshots, restore_states
from distdqn.replay.sharding import allocate, global_weights
from distdqn.replay.sumtree import SumMinTree

__all__ = [
    "PrioritizedReplay",
    "RateLimiter",
    "RestoreReport",
    "SumMinTree",
    "allocate",
    "global_weights",
    "load_state_dir",
    "restore_snapshots",
    "restore_states",
    "save_state_dir",
]
