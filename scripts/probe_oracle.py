"""Oracle probe: can this Q-network learn this task at all? Supervised next-token training on the oracle's moves.

A DQN run that stalls leaves two suspects: the network (it cannot represent or generalise the task) and the
reinforcement signal (the right actions are too rarely tried or rewarded). This probe takes the signal away. It plays
the task's oracle (`oracle_actions`) on the training split, trains the same Q-network the config builds as a
classifier of the oracle's token (cross-entropy over Q(s, .) at the acting position, through the task's action
mask) and measures greedy held-out success every `--eval-every` updates with the evaluation every run uses. High
held-out success here and a stall under DQN point at the signal; a stall here points at the network.

    python scripts/probe_oracle.py --task arithmetic --level medium --max-seconds 240 \
        --set network.trunk=transformer network.num_layers=2 network.hidden_dim=64 network.num_heads=4

`--loss dqfd` trains with the learner's demonstration pre-training step instead (`learner.demo_pretrain_updates`:
TD + large-margin loss on the oracle's n-step transitions, `learner.demo_*` from `--set`; with
`learner.demo_episodes=true` each of the batch's rows is a whole episode), to compare its settings:

    python scripts/probe_oracle.py --task arithmetic --level medium --loss dqfd --max-seconds 150 \
        --set network.trunk=transformer network.num_layers=2 network.hidden_dim=64 network.num_heads=4 \
        network.copy_head=false actor.n_step=1 env.options.digit_reward=0.1 learner.demo_temperature=0.3

It takes `configs/<task>_<level>.yaml` when it exists (`--defaults` to ignore it) plus `--set` overrides; only the
`env.*` and `network.*` sections matter (and `learner.demo_*`, `actor.n_step`, `actor.gamma` with `--loss dqfd`).
Prints one line per evaluation; `--json PATH` writes `{"rows": [{"updates", "seconds", "examples", "loss",
"heldout_success"}, ...], "config": {...}}`, rewritten after every evaluation (a probe stopped early keeps its rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distdqn import spec  # noqa: E402
from distdqn.config import load_config  # noqa: E402
from distdqn.demonstrations import demo_source  # noqa: E402
from distdqn.envs import make_env_from_config, numeric_token_values, task_shape  # noqa: E402
from distdqn.evaluation import Evaluator  # noqa: E402
from distdqn.learner import Learner  # noqa: E402
from distdqn.networks import build_network, mask_q  # noqa: E402
from distdqn.typed import ConfigError  # noqa: E402


class OracleStream:
    """Batches of (prefix tokens [B, L], acting position [B], oracle action [B], action mask [B, V] or None) from
    the oracle playing `num_envs` training episodes side by side; every env step yields one example per slot."""

    def __init__(self, env):
        self.env = env
        self.obs = env.reset()

    def next(self, batch: int):
        env, parts = self.env, []
        while sum(len(p[0]) for p in parts) < batch:
            obs = self.obs
            actions = env.oracle_actions()
            mask = None if obs.action_mask is None else obs.action_mask.copy()
            parts.append((obs.tokens.copy(), obs.length.astype(np.int64) - 1, actions.astype(np.int64), mask))
            self.obs = env.step(actions)[0]
        tokens, positions, actions = (np.concatenate([p[i] for p in parts])[:batch] for i in range(3))
        masks = None if parts[0][3] is None else np.concatenate([p[3] for p in parts])[:batch]
        width = int(positions.max()) + 1
        return (
            torch.from_numpy(tokens[:, :width].astype(np.int64)),
            torch.from_numpy(positions),
            torch.from_numpy(actions),
            None if masks is None else torch.from_numpy(masks),
        )


def probe(config, max_seconds: float, batch: int, lr: float, eval_every: int, eval_episodes: int, seed: int):
    """Train and evaluate; yields one row per evaluation."""
    torch.manual_seed(seed)
    env = make_env_from_config(config.env, num_envs=batch, seed=seed, split="train")
    network = build_network(config.network, env.vocab_size, env.max_len, numeric_token_values(env.vocab.tokens))
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    evaluator = Evaluator(config.network, config.env)
    stream, start, updates, examples = OracleStream(env), time.perf_counter(), 0, 0
    while True:
        tokens, positions, actions, mask = stream.next(batch)
        q = network.q_at(tokens, positions[:, None])[:, 0]  # [B, V]
        loss = F.cross_entropy(mask_q(q, mask), actions)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        updates, examples = updates + 1, examples + batch
        elapsed = time.perf_counter() - start
        if updates % eval_every == 0 or elapsed >= max_seconds:
            weights = {k: v.detach().numpy() for k, v in network.state_dict().items()}
            result = evaluator.evaluate(weights, eval_episodes, seed=seed + 1)
            yield {
                "updates": updates,
                "seconds": round(elapsed, 1),
                "examples": examples,
                "loss": round(loss.item(), 4),
                "heldout_success": round(result.success, 4),
            }
            if elapsed >= max_seconds:
                return


def probe_dqfd(
    config,
    max_seconds: float,
    batch: int,
    lr: float,
    eval_every: int,
    eval_episodes: int,
    seed: int,
    ema: tuple[float, ...] = (),
):
    """`probe` with the learner's own pre-training step instead of a cross-entropy: `Learner.demo_update` on the
    `DemoStream` (TD + large-margin loss, the config's `learner.demo_*`), as `learner.demo_pretrain_updates` runs
    it. Yields the same rows (`loss` is the learner's total), evaluating the online weights (the config's
    `learner.weight_ema` is set aside) and, for each decay in `ema`, a moving average of them at that constant decay
    (`heldout_success_ema_<decay>`)."""
    learner_config = dataclasses.replace(
        config.learner, lr=lr, batch_size=batch, device="cpu", demo_pretrain_updates=1, weight_ema=0.0
    )  # the online weights; `ema` adds averages of them
    config = dataclasses.replace(config, learner=learner_config)
    shape = task_shape(config.env)
    learner = Learner(config.network, learner_config, shape.vocab_size, shape.max_len, seed, shape.token_values)
    stream = demo_source(config).build()
    evaluator = Evaluator(config.network, config.env)
    state = {k: v for k, v in learner.online.state_dict().items() if v.is_floating_point()}
    params = list(state.values())  # views of the live parameters: the EMA reads them after every step
    averaged = {decay: [p.detach().clone() for p in params] for decay in ema}
    start, examples = time.perf_counter(), 0
    while True:
        demo = stream.next(batch)  # batch transitions, or batch whole episodes with learner.demo_episodes
        examples += len(demo[spec.ACTION])
        metrics = learner.demo_update(demo)
        for decay, average in averaged.items():
            torch._foreach_lerp_(average, params, 1.0 - decay)
        elapsed = time.perf_counter() - start
        if learner.updates % eval_every == 0 or elapsed >= max_seconds:
            online = learner.weights()
            result = evaluator.evaluate(online, eval_episodes, seed=seed + 1)
            row = {
                "updates": learner.updates,
                "seconds": round(elapsed, 1),
                "examples": examples,
                "loss": round(float(metrics["loss"]), 4),
                "heldout_success": round(result.success, 4),
            }
            for decay, average in averaged.items():
                weights = online | {k: v.cpu().numpy() for k, v in zip(state, average, strict=True) if k in online}
                success = evaluator.evaluate(weights, eval_episodes, seed=seed + 1).success
                row[f"heldout_success_ema_{decay:g}"] = round(success, 4)
            yield row
            if elapsed >= max_seconds:
                return


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", required=True)
    p.add_argument("--level", default="easy")
    p.add_argument("--defaults", action="store_true", help="ignore configs/<task>_<level>.yaml")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted config overrides")
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--loss",
        choices=("cross_entropy", "dqfd"),
        default="cross_entropy",
        help="cross_entropy: a classifier of the oracle's token; dqfd: the learner's demonstration pre-training "
        "(TD + large margin, learner.demo_* from --set)",
    )
    p.add_argument("--eval-every", type=int, default=500, help="updates between held-out evaluations")
    p.add_argument("--eval-episodes", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument(
        "--ema",
        type=float,
        nargs="*",
        default=[],
        help="with --loss dqfd: also evaluate moving averages of the weights at these decays (constant, no ramp)",
    )
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.ema and args.loss != "dqfd":
        p.error("--ema evaluates averages of the learner's weights: it needs --loss dqfd")
    torch.set_num_threads(args.threads)
    path = ROOT / "configs" / f"{args.task}_{args.level}.yaml"
    path = path if path.exists() and not args.defaults else None
    try:
        config = load_config(path, [f"env.task={args.task}", f"env.difficulty={args.level}", *args.set])
    except ConfigError as e:
        p.error(str(e))
    print(f"oracle probe: {args.task} {args.level}, config {path.name if path else 'defaults'} {' '.join(args.set)}")
    print(f"{'updates':>8} {'seconds':>8} {'examples':>10} {'loss':>8} {'held-out':>9}")
    meta = {"task": args.task, "level": args.level, "config": path.name if path else "defaults", "set": args.set}
    meta |= {"network": dataclasses.asdict(config.network), "batch_size": args.batch_size, "lr": args.lr}
    meta |= {"loss": args.loss}
    rows = []
    try:
        train = probe if args.loss == "cross_entropy" else functools.partial(probe_dqfd, ema=tuple(args.ema))
        for row in train(
            config, args.max_seconds, args.batch_size, args.lr, args.eval_every, args.eval_episodes, args.seed
        ):
            rows.append(row)
            if args.json:  # after every evaluation, so a probe stopped early keeps what it measured
                args.json.write_text(json.dumps({"rows": rows, "config": meta}, indent=1) + "\n")
            print(
                f"{row['updates']:>8} {row['seconds']:>8.0f} {row['examples']:>10,d} {row['loss']:>8.4f} "
                f"{row['heldout_success']:>9.3f}"
                + "".join(f" ema {d:g} {row[f'heldout_success_ema_{d:g}']:.3f}" for d in args.ema),
                flush=True,
            )
    except NotImplementedError as e:  # TextEnv.oracle_actions's default
        p.error(f"{e}: the probe plays the task's oracle; give the env oracle_actions() -> [B], the right next token")
    except ConfigError as e:  # demo_source's: the same missing oracle, found before training
        p.error(str(e))


if __name__ == "__main__":
    main()
