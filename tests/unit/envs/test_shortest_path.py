"""Shortest-path task: the graph pool, legal and illegal moves, optimality, splits, seeding, oracle and random."""

import dataclasses

import numpy as np
import pytest
from env_checks import rollout

from distdqn.envs import make_env
from distdqn.envs.shortest_path import MAX_NODES, Options, make_graph_pool


def _env_at(graph_edges, start, goal, **options):
    """A one-slot easy env whose graph 0 is replaced by `graph_edges` (an undirected edge list) and whose current
    episode is start -> goal."""
    env = make_env("shortest_path", num_envs=1, **options)
    env.reset(seed=0)
    n = env.options.num_nodes
    adj = np.zeros((1, n, n), dtype=bool)
    for u, v in graph_edges:
        adj[0, u, v] = adj[0, v, u] = True
    dist = np.full((1, n, n), 99)
    for s in range(n):  # BFS, independent of the env's Floyd-Warshall
        dist[0, s, s], frontier = 0, [s]
        while frontier:
            frontier = [v for u in frontier for v in np.flatnonzero(adj[0, u]) if dist[0, s, v] == 99]
            for v in frontier:
                dist[0, s, v] = dist[0, s, adj[0, v]].min() + 1
    env.pool = dataclasses.replace(env.pool, adj=adj, dist=dist)
    env.graph[0], env.node[0], env.goal[0], env.distance[0] = 0, start, goal, dist[0, start, goal]
    return env


def _walk(env, nodes):
    rewards, end = [], None
    for node in nodes:
        _, r, term, trunc, info = env.step(np.array([env.vocab.id(f"n{node}")]))
        rewards.append(round(float(r[0]), 6))
        if term[0] or trunc[0]:
            end = (bool(term[0]), bool(trunc[0]), round(float(info.success[0]), 6))
            break
    return rewards, end


PATH6 = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5)]  # a 6-cycle


@pytest.mark.parametrize(
    "start, goal, walk, rewards, end",
    [
        (0, 2, [1, 2], [-0.1, 0.9], (True, False, 1.0)),  # optimal
        (0, 3, [5, 4, 3], [-0.1, -0.1, 0.9], (True, False, 1.0)),  # the other optimal way round
        (0, 2, [5, 4, 3, 2], [-0.1, -0.1, -0.1, 0.9], (True, False, 0.5)),  # long way: 2 / 4
        (0, 2, [1, 0, 1, 2], [-0.1, -0.1, -0.1, 0.9], (True, False, 0.5)),  # back and forth
        (0, 2, [2], [-1.0], (True, False, 0.0)),  # not an edge
        (0, 2, [0], [-1.0], (True, False, 0.0)),  # staying put
        (0, 2, [1, 7], [-0.1, -1.0], (True, False, 0.0)),  # a node outside the graph
        (0, 3, [1, 0] * 5, [-0.1] * 10, (False, True, 0.0)),  # truncated after max_walk_steps = 10
    ],
)
def test_moves_rewards_and_optimality(start, goal, walk, rewards, end):
    env = _env_at(PATH6, start, goal)
    assert _walk(env, walk) == (rewards, end)


def test_non_node_token_is_illegal():
    env = _env_at(PATH6, 0, 2)
    _, r, term, _, info = env.step(np.array([env.vocab.id("<sep>")]))
    assert (float(r[0]), bool(term[0]), float(info.success[0])) == (-1.0, True, 0.0)


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_pool_graphs_are_connected_with_consistent_distances(difficulty):
    o = make_env("shortest_path", difficulty=difficulty).options
    pool = make_graph_pool(o.num_nodes, o.extra_edges, o.num_graphs, o.graph_seed)
    n = o.num_nodes
    assert pool.adj.sum(axis=(1, 2)).tolist() == [2 * (n - 1 + o.extra_edges)] * o.num_graphs
    assert (pool.adj == pool.adj.transpose(0, 2, 1)).all() and not pool.adj[:, np.arange(n), np.arange(n)].any()
    assert pool.dist.max() <= n - 1  # connected
    g, u, v = np.nonzero(pool.dist > 0)
    hop = pool.next_hop[g, u, v]
    assert pool.adj[g, u, hop].all() and (pool.dist[g, hop, v] == pool.dist[g, u, v] - 1).all()
    again = make_graph_pool(o.num_nodes, o.extra_edges, o.num_graphs, o.graph_seed)
    assert np.array_equal(pool.prompts, again.prompts)


def test_prompt_encodes_the_graph_and_the_task():
    env = make_env("shortest_path", num_envs=3, seed=0)
    env.reset()
    for b, text in enumerate(env.prompts()):
        assert text.endswith(" <sep>")
        edge_text, task = text[: -len(" <sep>")].split(" <sep> ")
        edges = [tuple(int(x[1:]) for x in e.split()) for e in edge_text.split(" ;") if e.strip()]
        adj = env.pool.adj[env.graph[b]]
        assert len(edges) == adj.sum() // 2 and all(adj[u, v] for u, v in edges)
        assert task == f"n{env.node[b]} n{env.goal[b]}"


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_splits_are_disjoint_and_deterministic(difficulty):
    train = make_env("shortest_path", seed=0, split="train", difficulty=difficulty).triples
    test = make_env("shortest_path", seed=5, split="test", difficulty=difficulty).triples
    key = lambda t: set(map(tuple, t.tolist()))  # noqa: E731
    assert not key(train) & key(test)
    o = make_env("shortest_path", difficulty=difficulty).options
    assert len(train) + len(test) == o.num_graphs * o.num_nodes * (o.num_nodes - 1)
    assert 0.15 < len(test) / (len(train) + len(test)) < 0.25
    if o.split_by == "graph":
        assert not set(train[:, 0].tolist()) & set(test[:, 0].tolist())
    assert np.array_equal(train, make_env("shortest_path", seed=9, split="train", difficulty=difficulty).triples)


def test_seeding_and_auto_reset():
    def run(seed):
        env = make_env("shortest_path", num_envs=8, seed=seed, difficulty="medium")
        rng = np.random.default_rng(0)
        out = [env.reset().tokens.copy()]
        for _ in range(10):
            obs, _, term, trunc, info = env.step(env.random_actions(rng))
            done = term | trunc
            assert (obs.length[done] == env.prompt_length[done]).all()  # fresh prompt after the auto-reset
            assert (info.final_length > env.prompt_length[info.done_idx]).all() or not done.any()
            out.append(obs.tokens.copy())
        return np.stack(out)

    assert np.array_equal(run(1), run(1)) and not np.array_equal(run(1), run(2))


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_oracle_is_optimal(difficulty, split):
    env = make_env("shortest_path", num_envs=64, seed=0, split=split, difficulty=difficulty)
    success, _ = rollout(env, env.oracle_actions, episodes=200)
    assert success.mean() == 1.0  # success needs the goal: no truncation, no illegal move


@pytest.mark.parametrize("action_mask, bound", [(False, 0.05), (True, 0.65)])
def test_random_policy_baseline(action_mask, bound):
    env = make_env("shortest_path", num_envs=256, seed=0, action_mask=action_mask)
    rng = np.random.default_rng(0)
    success, _ = rollout(env, lambda: env.random_actions(rng), episodes=2000)
    # measured on easy: ~0.02 without a mask (illegal moves end episodes), ~0.5 with the mask (a random walk)
    assert len(success) > 1000 and np.mean(success) < bound


def test_action_mask_lists_the_neighbours():
    env = make_env("shortest_path", num_envs=16, seed=0, action_mask=True)
    obs = env.reset()
    assert obs.action_mask.shape == (16, env.vocab_size) and obs.action_mask.dtype == bool
    for b in range(16):
        legal = np.flatnonzero(obs.action_mask[b]) - 1
        assert legal.tolist() == np.flatnonzero(env.pool.adj[env.graph[b], env.node[b]]).tolist()
    assert make_env("shortest_path").reset().action_mask is None


@pytest.mark.parametrize(
    "options, named",
    [
        ({"num_nodes": MAX_NODES + 1}, "num_nodes"),
        ({"num_nodes": 4, "extra_edges": 4}, "extra_edges"),
        ({"num_graphs": 0}, "num_graphs"),
        ({"num_graphs": 1, "split_by": "graph"}, "num_graphs"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"max_walk_steps": 3}, "max_walk_steps"),
        ({"step_reward": 0.5}, "step_reward"),
        ({"goal_reward": 0.0}, "goal_reward"),
    ],
)
def test_bad_option_values_are_named(options, named):
    with pytest.raises(ValueError, match=named):
        Options(**options)
