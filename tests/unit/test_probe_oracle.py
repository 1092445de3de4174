"""scripts/probe_oracle.py: supervised training of the Q-network on the task oracle's moves (the network-or-signal
diagnostic of the README's "Wordle medium" and shortest path hard paragraphs)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distdqn.envs import make_env

_SPEC = importlib.util.spec_from_file_location(
    "probe_oracle", Path(__file__).resolve().parents[2] / "scripts" / "probe_oracle.py"
)
probe_oracle = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(probe_oracle)


def test_the_stream_pairs_each_prefix_with_the_oracle_move_and_the_mask():
    env = make_env("shortest_path", num_envs=8, seed=0, difficulty="easy", action_mask=True)
    twin = make_env("shortest_path", num_envs=8, seed=0, difficulty="easy", action_mask=True)
    obs = twin.reset()
    tokens, positions, actions, mask = probe_oracle.OracleStream(env).next(20)  # 3 env steps of 8 slots, cut to 20
    assert tokens.shape[0] == positions.shape[0] == actions.shape[0] == mask.shape[0] == 20
    want = twin.oracle_actions()
    np.testing.assert_array_equal(actions[:8].numpy(), want)
    np.testing.assert_array_equal(positions[:8].numpy(), obs.length - 1)
    np.testing.assert_array_equal(tokens[:8, : obs.length.max()].numpy(), obs.tokens[:, : obs.length.max()])
    assert mask[torch.arange(20), actions].all()  # the oracle's move is always legal
    obs = twin.step(want)[0]
    np.testing.assert_array_equal(positions[8:16].numpy(), obs.length - 1)


def test_the_probe_learns_copy_easy_from_the_oracle(tmp_path):
    out = tmp_path / "probe.json"
    probe_oracle.main(
        ["--task", "copy", "--max-seconds", "8", "--eval-every", "100", "--eval-episodes", "200", "--json", str(out)]
    )
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["updates"] == 100 and rows[-1]["seconds"] >= 8
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert max(r["heldout_success"] for r in rows) >= 0.5  # ~0.95 in 8 s on the 2-core VM; an untrained net scores 0


def test_a_probe_stopped_early_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    def two_evaluations_then_ctrl_c(config, *args):
        for updates in (100, 200):
            yield {
                "updates": updates,
                "seconds": updates / 100,
                "examples": 8 * updates,
                "loss": 1.0,
                "heldout_success": 0.5,
            }
        raise KeyboardInterrupt

    monkeypatch.setattr(probe_oracle, "probe", two_evaluations_then_ctrl_c)
    out = tmp_path / "probe.json"
    with pytest.raises(KeyboardInterrupt):
        probe_oracle.main(["--task", "copy", "--max-seconds", "600", "--json", str(out)])
    data = json.loads(out.read_text())
    assert [r["updates"] for r in data["rows"]] == [100, 200] and data["config"]["task"] == "copy"


def test_a_plugin_task_without_an_oracle_is_one_clear_error(capsys):
    with pytest.raises(SystemExit):
        probe_oracle.main(["--task", "tests.fakes:SyntheticEnv", "--max-seconds", "1"])
    assert "has no oracle policy: the probe plays the task's oracle" in capsys.readouterr().err


def test_a_bad_override_is_the_config_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit):
        probe_oracle.main(["--task", "copy", "--set", "network.hiden_dim=32"])
    err = capsys.readouterr().err
    assert "network.hiden_dim" in err and "hidden_dim" in err and "Traceback" not in err


def test_the_dqfd_probe_trains_with_the_learners_pretraining_step(tmp_path):
    out = tmp_path / "probe.json"
    probe_oracle.main(
        ["--task", "copy", "--loss", "dqfd", "--max-seconds", "8", "--eval-every", "100", "--eval-episodes", "200"]
        + ["--json", str(out)]
    )
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert data["config"]["loss"] == "dqfd" and rows[0]["updates"] == 100
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert max(r["heldout_success"] for r in rows) >= 0.5  # an untrained net scores 0


def test_the_dqfd_probe_names_a_task_without_an_oracle(capsys):
    with pytest.raises(SystemExit):
        probe_oracle.main(["--task", "tests.fakes:SyntheticEnv", "--loss", "dqfd", "--max-seconds", "1"])
    assert "has no oracle" in capsys.readouterr().err


def test_the_dqfd_probe_evaluates_averages_beside_the_online_weights(tmp_path):
    out = tmp_path / "probe.json"
    probe_oracle.main(
        ["--task", "copy", "--loss", "dqfd", "--max-seconds", "4", "--eval-every", "100", "--eval-episodes", "100"]
        + ["--ema", "0", "0.99", "--set", "learner.weight_ema=0.999", "--json", str(out)]
    )
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) >= 2 and all({"heldout_success_ema_0", "heldout_success_ema_0.99"} <= set(r) for r in rows)
    # decay 0 is the online weights themselves: the plain column is them too, not the config's learner.weight_ema
    assert [r["heldout_success_ema_0"] for r in rows] == [r["heldout_success"] for r in rows]
