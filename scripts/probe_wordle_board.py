"""How well does a Wordle policy read the board? Greedy held-out games, and every guess checked against the feedback.

A guess is consistent when it could still be the answer given the marks of every earlier guess (the only words the
solvers of `distdqn/envs/wordle.py` ever play). A policy that keeps to consistent words solves nearly every game
(the random solver: 99.5% at medium), so the share of inconsistent guesses says how much of what a policy misses
is the reading of the board, and which constraint it breaks (a green letter moved, a yellow letter dropped or left
in place, a gray letter reused) says which part of the reading.

    python scripts/probe_wordle_board.py --run runs/wordle_medium           # a run's published weights
    python scripts/probe_wordle_board.py --max-seconds 300                  # configs/wordle_medium.yaml's
                                                                            # demonstration step alone, 300 s

`--max-seconds` trains as `scripts/probe_oracle.py --loss dqfd --batch-size 16` does, at the config's learning rate,
clipping and `learner.demo_*`, and reads the weights the learner publishes (the moving average with `learner.weight_ema`).
Prints a table; `--json PATH` writes `{"rows": [...], "summary": {...}}`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distdqn.checkpoint import load_for_inference  # noqa: E402
from distdqn.config import load_config  # noqa: E402
from distdqn.demonstrations import demo_source  # noqa: E402
from distdqn.envs import make_env_from_config, numeric_token_values, task_shape  # noqa: E402
from distdqn.envs.wordle import WORD_LEN, feedback  # noqa: E402
from distdqn.learner import Learner  # noqa: E402
from distdqn.networks import build_network, load_published, mask_q  # noqa: E402

KINDS = ("green moved", "yellow in place", "yellow dropped", "gray reused")


def train(config, max_seconds: float, seed: int) -> tuple[dict[str, np.ndarray], int]:
    """The config's demonstration step alone for `max_seconds`: (published weights, updates)."""
    learner_config = dataclasses.replace(config.learner, batch_size=16, device="cpu", demo_pretrain_updates=1)
    config = dataclasses.replace(config, learner=learner_config)  # demo_source reads learner.demo_*
    shape = task_shape(config.env)
    learner = Learner(config.network, learner_config, shape.vocab_size, shape.max_len, seed, shape.token_values)
    stream, start = demo_source(config).build(), time.perf_counter()
    while time.perf_counter() - start < max_seconds:
        learner.demo_update(stream.next(16))
    return learner.weights(), learner.updates


def first_games(env, act, seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The first game of every slot of a Wordle `env`, played by `act(obs) -> actions [B]` from a reset at `seed`:
    (each game's guesses [g, 5] letter indices, answers [B, 5], solved [B])."""
    obs = env.reset(seed=seed)
    answers, games = env.answer.copy(), [None] * env.num_envs
    while any(g is None for g in games):
        obs, _, _, _, info = env.step(act(obs))
        for k, slot in enumerate(info.done_idx):
            if games[slot] is None:
                row = info.final_tokens[k, 1 : info.final_length[k]]  # guesses, each followed by its 5 marks
                games[slot] = (row[: len(row) // (2 * WORD_LEN) * 2 * WORD_LEN], bool(info.success[k]))
    letter0 = env.vocab.id("a")
    guesses = [row.reshape(-1, 2 * WORD_LEN)[:, :WORD_LEN] - letter0 for row, _ in games]
    return guesses, answers, np.array([solved for _, solved in games])


def play(config, weights: dict[str, np.ndarray], episodes: int, seed: int):
    """Greedy held-out games by the published `weights`, one per slot (`first_games`)."""
    env = make_env_from_config(config.env, num_envs=episodes, seed=seed, split="test")
    network = build_network(config.network, env.vocab_size, env.max_len, numeric_token_values(env.vocab.tokens))
    load_published(network, weights)
    network.eval()

    def greedy(obs) -> np.ndarray:
        tokens = torch.from_numpy(obs.tokens[:, : obs.length.max()].astype(np.int64))
        q = network.q_at(tokens, torch.from_numpy(obs.length.astype(np.int64) - 1)[:, None])[:, 0]
        mask = None if obs.action_mask is None else torch.from_numpy(obs.action_mask)
        return mask_q(q, mask).argmax(dim=1).numpy()

    with torch.inference_mode():
        return first_games(env, greedy, seed)


def broken(guess: np.ndarray, earlier: np.ndarray, marks: np.ndarray) -> str | None:
    """The first constraint of one earlier guess's `marks` that `guess` breaks, or None if it keeps them all."""
    if (feedback(earlier, guess) == marks).all():
        return None
    if any(marks[p] == 2 and guess[p] != earlier[p] for p in range(WORD_LEN)):
        return KINDS[0]
    if any(marks[p] == 1 and guess[p] == earlier[p] for p in range(WORD_LEN)):
        return KINDS[1]
    if any(marks[p] == 1 and earlier[p] not in guess for p in range(WORD_LEN)):
        return KINDS[2]
    return KINDS[3]  # what is left: a letter marked gray (no more copies) appears too often


def read_board(guesses, answers, success) -> tuple[list[dict], dict[str, int], int]:
    """(per guess number from the second: played / inconsistent / share, counts of the constraint kinds broken
    (the first one per inconsistent guess), failed games in which every guess was consistent)."""
    counts = {kind: 0 for kind in KINDS}
    by_guess: dict[int, list[int]] = {}  # guess number -> [inconsistent, played]
    failed_all_consistent = 0
    for game, answer, solved in zip(guesses, answers, success, strict=True):
        marks = [feedback(g, answer) for g in game]
        bad_game = False
        for k in range(1, len(game)):
            kinds = [broken(game[k], game[j], marks[j]) for j in range(k)]
            kind = next((x for x in kinds if x is not None), None)
            by_guess.setdefault(k + 1, [0, 0])
            by_guess[k + 1][1] += 1
            if kind is not None:
                counts[kind] += 1
                by_guess[k + 1][0] += 1
                bad_game = True
        failed_all_consistent += (not solved) and not bad_game
    rows = [
        {"guess": k, "played": n, "inconsistent": bad, "share": round(bad / n, 3)}
        for k, (bad, n) in sorted(by_guess.items())
    ]
    return rows, counts, failed_all_consistent


def repeated_guesses(guesses, success) -> tuple[int, int]:
    """(games with a guess made twice, failed games with one): the share of failures that a keyboard refusing a
    repeated word could turn into more tries."""
    repeats = [len({g.tobytes() for g in game}) < len(game) for game in guesses]
    return sum(repeats), sum(r and not solved for r, solved in zip(repeats, success, strict=True))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a run directory or checkpoint: its published weights")
    source.add_argument("--max-seconds", type=float, help="train configs/wordle_medium.yaml's demonstration step")
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "wordle_medium.yaml", help="with --max-seconds")
    p.add_argument("--episodes", type=int, default=300, help="held-out games, one per slot")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write {rows, summary}")
    p.add_argument(
        "--mask-repeats",
        action="store_true",
        help="also play the same games with env.options.mask_repeats (a keyboard that refuses a guess made before)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.run is not None:
        try:
            config, weights, _ = load_for_inference(args.run)
        except FileNotFoundError as e:
            p.error(str(e))
        what = f"run {args.run}"
    else:
        config = load_config(args.config, [])
        weights, updates = train(config, args.max_seconds, args.seed)
        what = f"{args.config.name}, demonstration step alone, {args.max_seconds:g} s ({updates:,} updates)"
    if config.env.task != "wordle":
        p.error(f"this probe reads Wordle boards; the run's task is {config.env.task!r}")
    guesses, answers, success = play(config, weights, args.episodes, args.seed)
    rows, counts, failed_all_consistent = read_board(guesses, answers, success)
    with_repeat, failed_with_repeat = repeated_guesses(guesses, success)
    later = sum(r["played"] for r in rows)
    summary = {
        "weights": what,
        "episodes": args.episodes,
        "success": round(float(success.mean()), 4),
        "inconsistent_share": round(sum(r["inconsistent"] for r in rows) / max(later, 1), 4),
        "failed": int((~success).sum()),
        "failed_with_every_guess_consistent": int(failed_all_consistent),
        "broken": counts,
        "games_with_a_repeated_guess": with_repeat,
        "failed_with_a_repeated_guess": failed_with_repeat,
    }
    print(f"Wordle board reading: {what}; {args.episodes} held-out games, greedy")
    print(
        f"held-out success {summary['success']:.3f}; guesses after the first that break earlier feedback: "
        f"{summary['inconsistent_share']:.1%}; failed games {summary['failed']}, of them with every guess "
        f"consistent {failed_all_consistent}"
    )
    print(f"{'guess':>6} {'played':>7} {'inconsistent':>13} {'share':>6}")
    for r in rows:
        print(f"{r['guess']:>6} {r['played']:>7} {r['inconsistent']:>13} {r['share']:>6.1%}")
    print("constraint broken (first one per guess): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"games with a guess made twice: {with_repeat}, of them failed: {failed_with_repeat}")
    if args.mask_repeats:
        options = {**config.env.options, "mask_repeats": True}
        refusing = dataclasses.replace(config, env=dataclasses.replace(config.env, options=options))
        _, _, solved = play(refusing, weights, args.episodes, args.seed)
        summary["success_with_mask_repeats"] = round(float(solved.mean()), 4)
        print(f"held-out success with repeated guesses refused (env.options.mask_repeats): {solved.mean():.3f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
