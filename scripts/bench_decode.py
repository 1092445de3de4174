"""Benchmark of the Transformer trunk's decoding: the actor and evaluation path (`QNetwork.advance`) with its
key/value cache against recomputing the whole prefix at every step, side by side in one process on the same games.

Each row steps B environments of a task for a fixed number of env steps with greedy masked actions from the
network (a fresh, untrained one: what is timed is the forward, not the policy), one CPU thread. `cache` is
`advance` (each slot's new tokens only, against the cached keys and values); `recompute` is the path it replaced:
`q_at` over every slot's whole current prefix (`QNetwork.q_at(tokens[:, :max_len], length - 1)`). Both give the same
Q-values to float rounding (checked on every step of a warm-up pass). Tasks, each with its config's env options
(the action mask, ...) and a 2-layer 64-wide Transformer: wordle medium (rows of up to 61 tokens, 5 feedback tokens
appended after each guess), shortest_path hard (a 63-token edge list before the walk), translation medium (22),
sort medium (13) and arithmetic medium (10).

    .venv/bin/python scripts/bench_decode.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distdqn.config import NetworkConfig, load_config  # noqa: E402
from distdqn.envs import make_env_from_config  # noqa: E402
from distdqn.networks import QNetwork, build_network, mask_q  # noqa: E402

TASKS = [
    ("wordle", "medium"),
    ("shortest_path", "hard"),
    ("translation", "medium"),
    ("sort", "medium"),
    ("arithmetic", "medium"),
]
NETWORK = NetworkConfig(trunk="transformer", num_layers=2, hidden_dim=64, num_heads=4)
PEERS = ("cache", "recompute")


def env_config(task: str, level: str):
    """The env section of `configs/<task>_<level>.yaml` (its options: the action mask, ...)."""
    return load_config(ROOT / "configs" / f"{task}_{level}.yaml").env


def recompute(net: QNetwork, tokens: np.ndarray, length: np.ndarray) -> torch.Tensor:
    """Q at each slot's last position from its whole prefix (the path before the cache)."""
    rows = torch.from_numpy(tokens[:, : int(length.max())].astype(np.int64))
    return net.q_at(rows, torch.from_numpy(length.astype(np.int64) - 1).unsqueeze(1))[:, 0]


class Game:
    """B slots of a task decoded greedily by one peer."""

    def __init__(self, task: str, level: str, batch: int, peer: str, net: QNetwork, check: bool):
        self.env = make_env_from_config(env_config(task, level), num_envs=batch, seed=0)
        self.peer, self.net, self.check = peer, net, check
        self.obs = self.env.reset()
        self.state = net.initial_state(batch)
        self.reset = np.ones(batch, dtype=bool)

    def step(self) -> None:
        obs = self.obs
        if self.peer == "cache" or self.check:
            self.state, q = self.net.advance(self.state, obs.tokens, obs.length, self.reset)
        if self.peer == "recompute":
            q_full = recompute(self.net, obs.tokens, obs.length)
            if self.check:
                torch.testing.assert_close(q, q_full, atol=1e-4, rtol=1e-4)
            q = q_full
        mask = None if obs.action_mask is None else torch.from_numpy(obs.action_mask.copy())  # the env's, read-only
        self.obs, _, _, _, info = self.env.step(mask_q(q, mask).argmax(-1).numpy())
        self.reset = np.zeros(len(self.reset), dtype=bool)
        self.reset[info.done_idx] = True


def bench(task: str, level: str, batch: int, steps: int, rounds: int) -> list[dict]:
    torch.manual_seed(0)
    probe = make_env_from_config(env_config(task, level), num_envs=1)
    net = build_network(NETWORK, probe.vocab_size, probe.max_len).eval()
    games = {peer: Game(task, level, batch, peer, net, check=False) for peer in PEERS}
    checked = Game(task, level, batch, "recompute", net, check=True)
    seconds = dict.fromkeys(PEERS, 0.0)
    with torch.no_grad():
        for _ in range(steps):
            checked.step()
        for _ in range(rounds):  # interleaved, so a busy machine slows both alike
            for peer in PEERS:
                t0 = time.perf_counter()
                for _ in range(steps):
                    games[peer].step()
                seconds[peer] += time.perf_counter() - t0
    rows = []
    for peer in PEERS:
        rate = rounds * steps * batch / seconds[peer]
        rows.append(
            {"task": f"{task} {level}", "max_len": probe.max_len, "B": batch, "peer": peer, "env_steps_per_s": rate}
        )
    rows[0]["speedup_vs_recompute"] = rows[0]["env_steps_per_s"] / rows[1]["env_steps_per_s"]
    rows[1]["speedup_vs_recompute"] = 1.0
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (< 1 minute in all)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, rounds = (30, 2) if args.quick else (60, 5)
    rows = [r for task, level in TASKS for b in (32, 128) for r in bench(task, level, b, steps, rounds)]
    print(f"Transformer decoding ({NETWORK.num_layers} layers, {NETWORK.hidden_dim} wide), 1 thread")
    print("  task                   max_len     B   peer        env steps/s   cache / recompute")
    for r in rows:
        print(
            f"  {r['task']:<22s} {r['max_len']:>7d} {r['B']:>5d}   {r['peer']:<10s} {r['env_steps_per_s']:>12,.0f}"
            f"   {r['speedup_vs_recompute']:>16.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
