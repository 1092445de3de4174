"""scripts/probe_wordle_board.py: greedy held-out Wordle games, each guess checked against the earlier feedback."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distdqn.envs import make_env
from distdqn.envs.wordle import feedback

REPO = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("probe_wordle_board", REPO / "scripts" / "probe_wordle_board.py")
board = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(board)


def letters(word: str) -> np.ndarray:
    return np.array([ord(c) - ord("a") for c in word])


@pytest.mark.parametrize(
    "guess, kind",
    [
        ("apple", None),  # the answer itself keeps every constraint
        ("blame", "green moved"),  # the green a left place 1
        ("alloy", "yellow in place"),  # l again where it was yellow
        ("aeons", "yellow dropped"),  # no l at all
        ("aelre", "gray reused"),  # r was gray
    ],
)
def test_each_broken_constraint_is_named(guess, kind):
    earlier, answer = letters("alert"), letters("apple")  # marks: a green, l e yellow, r t gray
    assert board.broken(letters(guess), earlier, feedback(earlier, answer)) == kind


def test_a_guess_made_twice_is_counted_once_per_game_and_among_the_failures():
    a, b = letters("alert"), letters("apple")
    games = [[a, b, a], [a, b], [a, a, a], [b]]
    assert board.repeated_guesses(games, np.array([True, False, False, True])) == (2, 1)


def _games(policy_of, episodes=64):
    env = make_env("wordle", num_envs=episodes, seed=0, split="test", difficulty="medium", action_mask=True)
    policy = policy_of(env)
    return board.first_games(env, lambda obs: policy(), seed=0)


def test_the_solver_keeps_to_consistent_words_and_a_random_typist_does_not():
    games = _games(lambda env: env.oracle_actions)
    rows, counts, failed_consistent = board.read_board(*games)
    assert sum(r["inconsistent"] for r in rows) == 0 and sum(counts.values()) == 0 and failed_consistent == 0
    assert board.repeated_guesses(games[0], games[2]) == (0, 0)  # a consistent guess is never a repeat
    assert rows[0]["guess"] == 2 and rows[0]["played"] > 0
    rng = np.random.default_rng(0)
    rows, counts, _ = board.read_board(*_games(lambda env: lambda: env.random_actions(rng)))
    played, bad = sum(r["played"] for r in rows), sum(r["inconsistent"] for r in rows)
    assert bad > 0.8 * played and sum(counts.values()) == bad


def test_the_probe_trains_plays_and_writes_its_table(tmp_path, capsys):
    out = tmp_path / "board.json"
    board.main(["--max-seconds", "1", "--episodes", "16", "--json", str(out), "--mask-repeats"])
    result = json.loads(out.read_text())
    summary = result["summary"]
    assert summary["episodes"] == 16 and 0.0 <= summary["inconsistent_share"] <= 1.0
    assert sum(summary["broken"].values()) == sum(r["inconsistent"] for r in result["rows"])
    assert summary["failed_with_a_repeated_guess"] <= min(summary["failed"], summary["games_with_a_repeated_guess"])
    assert 0.0 <= summary["success_with_mask_repeats"] <= 1.0
    printed = capsys.readouterr().out
    assert "break earlier feedback" in printed and "repeated guesses refused" in printed


def test_the_probe_reads_a_runs_published_weights_and_names_a_wrong_task(tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    train = [sys.executable, "-m", "distdqn", *"train --local --quiet --examples 0 --max-env-steps 300".split()]
    for task in ("wordle", "copy"):
        subprocess.run([*train, "--task", task, "--run-dir", str(tmp_path / task)], check=True, env=env, cwd=REPO)
    out = tmp_path / "board.json"
    board.main(["--run", str(tmp_path / "wordle"), "--episodes", "8", "--json", str(out)])
    assert json.loads(out.read_text())["summary"]["weights"] == f"run {tmp_path / 'wordle'}"
    with pytest.raises(SystemExit):
        board.main(["--run", str(tmp_path / "copy")])
    assert "reads Wordle boards; the run's task is 'copy'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        board.main(["--run", str(tmp_path / "none")])
    assert "no such run directory" in capsys.readouterr().err
