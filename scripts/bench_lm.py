"""Benchmark of the pretrained-LM Q-network (network.trunk: hf) on CPU: actor tokens/s with the KV cache against full
recompute, and learner updates/s, for the tiny test LM and a GPT-2-small-shaped one (random weights, no downloads).

Models, built in a temporary directory with `distdqn.pretrain` (word-level tokenizer of the text tasks):
  tiny        2 layers, 64 wide, 2 heads, the tokenizer's 78-token vocabulary (0.11M parameters; the tests' model)
  gpt2-small  12 layers, 768 wide, 12 heads, GPT-2's 50,257-token output and 1,024 positions (124M parameters)
The env's actions are the word-level tokenizer's; the LM head still computes all of the model's logits.

Actor: `LMQNetwork.advance` (the actors' path: incremental decoding with the KV cache, batched over B slots) against
the full recompute of every slot's prefix at every step (`LMQNetwork.peek`), side by side in the same run, on
`keyword_text` with random actions (resets as episodes end) at its rows of L = 11 tokens and with
`max_new_tokens=48` (L = 51). tokens/s = B * decoding steps / s (one token per slot per step; env step included).
Learner: `Learner.update` (double DQN, n-step, one trunk forward per stored row for Q(s) and Q(s'), target forward,
backward, Adam) on transitions an actor collected; sampled transitions/s = updates/s * batch.
One torch thread throughout (an actor's and the learner's default). `--quick` times 1 s per tiny row and 1.5 s per
GPT-2-small row (4x that without it) and skips GPT-2-small's L = 11 actor row.

    .venv/bin/python scripts/bench_lm.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distdqn import spec  # noqa: E402
from distdqn.actor import Actor  # noqa: E402
from distdqn.config import ActorConfig, EnvConfig, LearnerConfig, NetworkConfig  # noqa: E402
from distdqn.envs import make_env  # noqa: E402
from distdqn.learner import Learner  # noqa: E402
from distdqn.networks import build_network  # noqa: E402
from distdqn.pretrain import build_word_tokenizer, new_causal_lm, save_model  # noqa: E402
from tests.lm_fixtures import task_texts  # noqa: E402

# name -> (layers, width, heads, output vocabulary (None: the tokenizer's), positions)
MODELS = {"tiny": (2, 64, 2, None, 64), "gpt2-small": (12, 768, 12, 50257, 1024)}
TASK = "keyword_text"


def build_model(name: str, directory: Path) -> tuple[str, float]:
    """Write model `name` into `directory`; (directory, parameters in millions)."""
    layers, dim, heads, vocab, positions = MODELS[name]
    tokenizer = build_word_tokenizer(task_texts(), directory)
    model = new_causal_lm(vocab or len(tokenizer), layers=layers, dim=dim, heads=heads, positions=positions)
    save_model(model, tokenizer, directory)
    return str(directory), sum(p.numel() for p in model.parameters()) / 1e6


def decode_tokens_per_s(net, env, seconds: float, cached: bool) -> float:
    """B * steps / s of greedy-free decoding (random actions) through the KV cache or the full recompute."""
    rng = np.random.default_rng(0)
    obs, reset = env.reset(), np.ones(env.num_envs, dtype=bool)
    state = net.initial_state(env.num_envs)
    steps, start, warmup = 0, None, 3
    with torch.inference_mode():
        while start is None or time.perf_counter() - start < seconds:
            if cached:
                state, _ = net.advance(state, obs.tokens, obs.length, reset)
            else:
                net.peek(state, None, obs.tokens, obs.length)
            obs, _, _, _, info = env.step(env.random_actions(rng))
            reset = np.zeros(env.num_envs, dtype=bool)
            reset[info.done_idx] = True
            steps += 1
            if start is None and steps == warmup:  # the first steps build the cache: not counted
                steps, start = 0, time.perf_counter()
    return env.num_envs * steps / (time.perf_counter() - start)


def bench_actor(model: str, directory: str, params: float, batch: int, new_tokens: int | None, seconds: float):
    options = {} if new_tokens is None else {"max_new_tokens": new_tokens}
    env = make_env(TASK, num_envs=batch, seed=0, tokenizer=directory, **options)
    net = build_network(NetworkConfig(trunk="hf", pretrained=directory), env.vocab_size, env.max_len).eval()
    kv = decode_tokens_per_s(net, env, seconds, cached=True)
    full = decode_tokens_per_s(net, env, seconds, cached=False)
    return {
        "part": "actor",
        "model": model,
        "params_M": round(params, 2),
        "B": batch,
        "L": env.max_len,
        "kv_tokens_per_s": kv,
        "recompute_tokens_per_s": full,
        "speedup": kv / full,
    }


def collect_transitions(directory: str) -> tuple[dict, int, int]:
    """Transitions of the tiny LM's actor (rows of token ids: the same for every model of this tokenizer)."""
    env = EnvConfig(task=TASK, tokenizer=directory, envs_per_actor=64)
    net = NetworkConfig(trunk="hf", pretrained=directory)
    actor = Actor(env, net, ActorConfig(n_step=3, explore="lm", explore_top_k=20), 0, 1, seed=0)
    data = actor.collect(40).transitions
    return data, actor.vocab_size, actor.max_len


def bench_learner(model: str, directory: str, params: float, data, vocab: int, max_len: int, batch: int, seconds):
    rng = np.random.default_rng(0)
    config = LearnerConfig(device="cpu", batch_size=batch, num_threads=1)
    learner = Learner(NetworkConfig(trunk="hf", pretrained=directory), config, vocab, max_len, seed=0)

    def sample() -> dict:
        idx = rng.integers(0, len(data[spec.ACTION]), batch)
        out = {k: v[idx] for k, v in data.items()}
        out[spec.WEIGHT] = np.ones(batch, np.float32)
        return out

    learner.update(sample())
    updates, start = 0, time.perf_counter()
    while updates < 1 or time.perf_counter() - start < seconds:
        learner.update(sample())
        updates += 1
    elapsed = time.perf_counter() - start
    return {
        "part": "learner",
        "model": model,
        "params_M": round(params, 2),
        "batch": batch,
        "L": max_len,
        "updates_per_s": updates / elapsed,
        "sampled_transitions_per_s": updates * batch / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (< 1 minute in all on 2 cores)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scale = 1.0 if args.quick else 4.0
    # model -> (actor batches, actor max_new_tokens (None: the task's), learner batches, seconds per timing);
    # --quick keeps only GPT-2-small's long rows (each model load there is seconds)
    plan = {
        "tiny": ([16, 64], [None, 48], [64, 256], 1.0 * scale),
        "gpt2-small": ([16], [48] if args.quick else [None, 48], [16], 1.5 * scale),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tiny_dir, _ = build_model("tiny", Path(tmp) / "tiny")
        data, vocab, max_len = collect_transitions(tiny_dir)
        for model, (actor_batches, new_tokens_list, learner_batches, seconds) in plan.items():
            directory, params = build_model(model, Path(tmp) / model)
            for batch in actor_batches:
                for new_tokens in new_tokens_list:
                    rows.append(bench_actor(model, directory, params, batch, new_tokens, seconds))
                    print_row(rows[-1])
            for batch in learner_batches:
                rows.append(bench_learner(model, directory, params, data, vocab, max_len, batch, seconds))
                print_row(rows[-1])
    print_tables(rows)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))


def print_row(row: dict) -> None:
    print("  " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


def print_tables(rows: list[dict]) -> None:
    print("\n| actor | params | B | L | KV cache tokens/s | recompute tokens/s | speedup |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r["part"] == "actor":
            print(
                f"| {r['model']} | {r['params_M']}M | {r['B']} | {r['L']} | {r['kv_tokens_per_s']:,.0f} "
                f"| {r['recompute_tokens_per_s']:,.0f} | {r['speedup']:.2f}x |"
            )
    print("\n| learner | params | batch | L | updates/s | sampled transitions/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["part"] == "learner":
            print(
                f"| {r['model']} | {r['params_M']}M | {r['batch']} | {r['L']} | {r['updates_per_s']:.2f} "
                f"| {r['sampled_transitions_per_s']:,.0f} |"
            )


if __name__ == "__main__":
    main()
