"""Shortest-path task (ILQL-style): walk from start to goal on a random graph whose edge list is the prompt.

Prompt: `u1 v1 ; u2 v2 ; ... <sep> start goal <sep>` (undirected edges, node tokens n0..n23). Each action is the
next node. Per step:
  - a move along an edge of the current node is legal: reward `step_reward`, plus `goal_reward` when it reaches the
    goal, which ends the episode;
  - anything else (a non-neighbour, staying put, a non-node token) is illegal: reward `illegal_reward` and the
    episode ends. With `action_mask=True` the env also publishes the legal moves as an action mask;
  - after `max_walk_steps` moves without reaching the goal the episode is truncated.
Success ("optimality") = shortest_distance(start, goal) / steps_taken when the goal is reached, else 0, so a mean
over episodes is the mean optimality.

Graph pool: `num_graphs` connected graphs per option set, generated once from `graph_seed` (never from the env
seed): a random spanning tree over `num_nodes` nodes plus `extra_edges` random extra edges. All-pairs distances
come from one Floyd-Warshall over the whole pool; `next_hop` (the oracle's move) from the distances.
Splits (`split_by`): "pair" holds out the `test_fraction` of ordered (graph, start, goal) triples with the
smallest seed-free hashes, so the test split asks for unseen start-goal pairs on familiar graphs; "graph" holds
out whole graphs (the last ceil(test_fraction * num_graphs) of the pool), so the agent must read the edge list.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal

import numpy as np

from distdqn.envs.base import TextEnv, Vocab, resolve_options
from distdqn.envs.registry import register
from distdqn.envs.splits import split_hash

MAX_NODES = 24
NODE_TOKENS = [f"n{i}" for i in range(MAX_NODES)]
EDGE_END = ";"
SEP = "<sep>"
VOCAB_TOKENS = ["<pad>", *NODE_TOKENS, EDGE_END, SEP]
_NODE0 = 1  # id of n0
_SALT = 2
_UNREACHABLE = 10**6


@dataclasses.dataclass
class Options:
    """Options of the shortest-path task (see the module docstring for the rules)."""

    num_nodes: int = 6  # nodes per graph, 3..24
    extra_edges: int = 1  # edges added to the random spanning tree, 0..(n*(n-1)/2 - (n-1))
    num_graphs: int = 1  # size of the fixed graph pool
    graph_seed: int = 0  # seed of the pool (the env seed only draws episodes)
    split_by: Literal["pair", "graph"] = "pair"  # hold out start-goal pairs or whole graphs
    test_fraction: float = 0.2  # share held out for the test split, in (0, 1)
    max_walk_steps: int = 12  # moves before truncation, >= num_nodes - 1
    step_reward: float = -0.1  # reward of every legal move, in [-1, 0]
    goal_reward: float = 1.0  # added when the goal is reached, in (0, 1]
    illegal_reward: float = -1.0  # reward of an illegal move (which ends the episode), in [-1, 0]
    action_mask: bool = False  # publish the legal moves as an action mask

    def __post_init__(self):
        n = self.num_nodes
        if not 3 <= n <= MAX_NODES:
            raise ValueError(f"env.options.num_nodes must be in 3..{MAX_NODES}, got {n}")
        max_extra = n * (n - 1) // 2 - (n - 1)
        if not 0 <= self.extra_edges <= max_extra:
            raise ValueError(f"env.options.extra_edges must be in 0..{max_extra} for {n} nodes, got {self.extra_edges}")
        if self.num_graphs < 1:
            raise ValueError(f"env.options.num_graphs must be >= 1, got {self.num_graphs}")
        if self.split_by == "graph" and self.num_graphs < 2:
            raise ValueError(f"env.options.num_graphs must be >= 2 with split_by='graph', got {self.num_graphs}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"env.options.test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.max_walk_steps < n - 1:
            raise ValueError(
                f"env.options.max_walk_steps must be >= num_nodes - 1 = {n - 1}, got {self.max_walk_steps}"
            )
        for key in ("step_reward", "illegal_reward"):
            if not -1.0 <= getattr(self, key) <= 0.0:
                raise ValueError(f"env.options.{key} must be in [-1, 0], got {getattr(self, key)}")
        if not 0.0 < self.goal_reward <= 1.0:
            raise ValueError(f"env.options.goal_reward must be in (0, 1], got {self.goal_reward}")


PRESETS: dict[str, dict] = {
    "easy": {"num_nodes": 6, "extra_edges": 1, "num_graphs": 1, "split_by": "pair", "max_walk_steps": 10},
    "medium": {"num_nodes": 10, "extra_edges": 3, "num_graphs": 16, "split_by": "pair", "max_walk_steps": 20},
    "hard": {"num_nodes": 16, "extra_edges": 6, "num_graphs": 512, "split_by": "graph", "max_walk_steps": 32},
}


@dataclasses.dataclass
class GraphPool:
    """A fixed pool of G graphs on n nodes. adj [G, n, n] bool, dist [G, n, n] int32 (hops), next_hop [G, n, n]
    (the smallest neighbour of u on a shortest path to v; u itself when u == v), prompts [G, P] token ids."""

    adj: np.ndarray
    dist: np.ndarray
    next_hop: np.ndarray
    prompts: np.ndarray


@functools.lru_cache(maxsize=8)
def make_graph_pool(num_nodes: int, extra_edges: int, num_graphs: int, graph_seed: int) -> GraphPool:
    """Generate the pool: per graph a random spanning tree (node i>0 of a random order joins a random earlier node)
    plus random extra edges, and its prompt edges in random order. Distances by batched Floyd-Warshall.
    Cached (envs of one process share a pool), so its arrays are read-only."""
    rng = np.random.default_rng([graph_seed, num_nodes, extra_edges, num_graphs])
    n = num_nodes
    adj = np.zeros((num_graphs, n, n), dtype=bool)
    num_edges = n - 1 + extra_edges
    edges = np.zeros((num_graphs, num_edges, 2), dtype=np.int64)
    iu, ju = np.triu_indices(n, k=1)
    for g in range(num_graphs):  # construction only, once per pool
        order = rng.permutation(n)
        parents = order[rng.integers(0, np.arange(1, n))]
        adj[g, order[1:], parents] = adj[g, parents, order[1:]] = True
        free = np.flatnonzero(~adj[g, iu, ju])
        extra = rng.choice(free, size=extra_edges, replace=False)
        adj[g, iu[extra], ju[extra]] = adj[g, ju[extra], iu[extra]] = True
        u, v = np.nonzero(np.triu(adj[g]))
        flip = rng.random(num_edges) < 0.5
        pairs = np.stack([np.where(flip, v, u), np.where(flip, u, v)], axis=1)
        edges[g] = pairs[rng.permutation(num_edges)]
    dist = np.where(adj, 1, _UNREACHABLE).astype(np.int64)
    dist[:, np.arange(n), np.arange(n)] = 0
    for k in range(n):
        dist = np.minimum(dist, dist[:, :, k, None] + dist[:, None, k, :])
    # on_path[g, u, v, w]: w is a neighbour of u one hop closer to v
    on_path = adj[:, :, None, :] & (dist[:, None, :, :].transpose(0, 1, 3, 2) == dist[:, :, :, None] - 1)
    next_hop = np.where(on_path.any(axis=3), on_path.argmax(axis=3), np.arange(n)[None, :, None])
    sep = np.full((num_graphs, num_edges, 1), VOCAB_TOKENS.index(EDGE_END))
    prompts = np.concatenate([edges + _NODE0, sep], axis=2).reshape(num_graphs, 3 * num_edges)
    arrays = [adj, dist.astype(np.int32), next_hop.astype(np.int32), prompts.astype(np.int32)]
    for a in arrays:
        a.setflags(write=False)
    return GraphPool(*arrays)


def split_triples(pool: GraphPool, options: Options, split: str) -> np.ndarray:
    """The (graph, start, goal) triples [N, 3] of a split, start != goal; deterministic, independent of any seed."""
    g_count, n, _ = pool.dist.shape
    g, s, t = np.meshgrid(np.arange(g_count), np.arange(n), np.arange(n), indexing="ij")
    g, s, t = g.ravel(), s.ravel(), t.ravel()
    keep = s != t
    if options.split_by == "pair":
        # exactly round(test_fraction * N) triples held out: those with the smallest hashes (small pools would be
        # too lopsided with a plain threshold)
        u = np.where(keep, split_hash((g * MAX_NODES + s) * MAX_NODES + t, _SALT), np.inf)
        held_out = np.zeros(len(u), dtype=bool)
        held_out[np.argsort(u, kind="stable")[: round(options.test_fraction * keep.sum())]] = True
        keep &= held_out if split == "test" else ~held_out
    else:
        num_test = math.ceil(options.test_fraction * g_count)
        held_out = g >= g_count - num_test
        keep &= held_out if split == "test" else ~held_out
    triples = np.stack([g[keep], s[keep], t[keep]], axis=1)
    if len(triples) == 0:
        raise ValueError(f"env.options.test_fraction={options.test_fraction} leaves the {split!r} split empty")
    return triples


class ShortestPathEnv(TextEnv):
    """Batched shortest-path walking; see the module docstring."""

    name = "shortest_path"

    def __init__(self, num_envs: int, options: Options, seed: int = 0, split: str = "train"):
        self.options = options
        self.has_action_mask = options.action_mask
        self.pool = make_graph_pool(options.num_nodes, options.extra_edges, options.num_graphs, options.graph_seed)
        self.triples = split_triples(self.pool, options, split)
        self._prompt_width = self.pool.prompts.shape[1] + 4  # edges, <sep> start goal <sep>
        super().__init__(
            num_envs,
            Vocab(VOCAB_TOKENS),
            max_len=self._prompt_width + options.max_walk_steps,
            max_steps=options.max_walk_steps,
            seed=seed,
            split=split,
        )
        self._sep = self.vocab.id(SEP)
        self.graph = np.zeros(num_envs, dtype=np.int64)
        self.node = np.zeros(num_envs, dtype=np.int64)  # current node
        self.goal = np.zeros(num_envs, dtype=np.int64)
        self.distance = np.ones(num_envs, dtype=np.int32)  # shortest start-goal distance
        self._mask = np.zeros((num_envs, self.vocab_size), dtype=bool)

    def _reset_slots(self, idx: np.ndarray) -> None:
        g, s, t = self.triples[self.rng.integers(0, len(self.triples), size=len(idx))].T
        p = self.pool.prompts.shape[1]
        self.tokens[idx, :p] = self.pool.prompts[g]
        self.tokens[idx, p] = self._sep
        self.tokens[idx, p + 1] = _NODE0 + s
        self.tokens[idx, p + 2] = _NODE0 + t
        self.tokens[idx, p + 3] = self._sep
        self.length[idx] = p + 4
        self.graph[idx], self.node[idx], self.goal[idx] = g, s, t
        self.distance[idx] = self.pool.dist[g, s, t]

    def _score(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = self.options
        target = actions.astype(np.int64) - _NODE0
        is_node = (target >= 0) & (target < o.num_nodes)
        legal = is_node & self.pool.adj[self.graph, self.node, np.where(is_node, target, 0)]
        reached = legal & (target == self.goal)
        reward = np.where(legal, o.step_reward + reached * o.goal_reward, o.illegal_reward)
        self.node = np.where(legal, target, self.node)
        success = np.where(reached, self.distance / self.steps, 0.0)
        return reward.astype(np.float32), ~legal | reached, success.astype(np.float32)

    def _action_mask(self) -> np.ndarray:
        """[B, V] bool: the neighbours of each slot's current node (views into a reused buffer; copy to keep)."""
        self._mask[:, _NODE0 : _NODE0 + self.options.num_nodes] = self.pool.adj[self.graph, self.node]
        return self._mask

    def oracle_actions(self) -> np.ndarray:
        """The next node on a shortest path to the goal."""
        return (_NODE0 + self.pool.next_hop[self.graph, self.node, self.goal]).astype(np.int64)


@register("shortest_path")
def make_shortest_path(num_envs: int = 1, seed: int = 0, split: str = "train", difficulty: str = "easy", **options):
    """Factory for the registry: options override the difficulty preset."""
    opts = resolve_options(Options, PRESETS, difficulty, options, task="shortest_path")
    return ShortestPathEnv(num_envs, opts, seed=seed, split=split)
