"""Sweep specs without running one: grid parsing, sweep files, trial points, names, configs and the ranking."""

import pytest

pytest.importorskip("ray.tune", reason="the tune extra (pip install 'distdqn[tune]') is not installed")

from distdqn.cli import main  # noqa: E402
from distdqn.config import ConfigError, load_config  # noqa: E402
from distdqn.distributed.sweep import (  # noqa: E402
    SweepSpec,
    parse_grid,
    points,
    rank,
    read_sweep_file,
    trial_config,
    trial_name,
)


def test_grid_items_and_bad_ones():
    assert parse_grid(["learner.lr=1e-3, 3e-4", "actor.n_step=3,5"]) == {
        "learner.lr": ["1e-3", "3e-4"],
        "actor.n_step": ["3", "5"],
    }
    for bad in ("learner.lr", "=1,2", "learner.lr="):
        with pytest.raises(ConfigError, match="must look like section.key=value1,value2"):
            parse_grid([bad])


def test_sweep_file_values_become_override_text(tmp_path):
    (tmp_path / "base.yaml").write_text("run: {seed: 5}\n")
    path = tmp_path / "sweep.yaml"
    path.write_text("config: base.yaml\nsamples: 2\ngrid:\n  learner.lr: [1e-3, 3e-4]\n  learner.double_dqn: [true]\n")
    data = read_sweep_file(path)
    assert data["grid"] == {"learner.lr": ["0.001", "0.0003"], "learner.double_dqn": ["true"]}
    assert data["samples"] == 2 and data["config"] == str(tmp_path / "base.yaml")
    path.write_text("grid: {learner.lr: [1]}\nsample: 2\n")
    with pytest.raises(ConfigError, match="expected keys grid"):
        read_sweep_file(path)


def test_points_names_and_trial_configs(tmp_path):
    base = load_config(None, ["run.seed=10", "run.max_updates=50"]).to_dict()
    spec = SweepSpec(base, {"learner.lr": ["1e-3", "3e-4"], "actor.n_step": ["3", "5"]}, samples=2)
    grid = points(spec)
    assert len(grid) == 8 and len({trial_name(spec, p) for p in grid}) == 8
    params = {"sample": "1", "actor.n_step": "5", "learner.lr": "3e-4"}  # any order: the name follows the grid
    assert trial_name(spec, params) == "learner.lr=3e-4,actor.n_step=5,sample=1"
    config = trial_config(spec, params, tmp_path)
    assert (config.learner.lr, config.actor.n_step, config.run.seed, config.run.max_updates) == (3e-4, 5, 11, 50)
    assert config.run.run_dir == str(tmp_path / "trials" / "learner.lr=3e-4,actor.n_step=5,sample=1")
    bad = SweepSpec(base, {"learner.lr": ["-1"]})
    with pytest.raises(ConfigError, match=r"trial learner.lr=-1,sample=0: learner.lr: must be > 0, got -1"):
        trial_config(bad, {"learner.lr": "-1", "sample": "0"}, tmp_path)


def test_rank_by_time_to_target_then_best_success_errors_last():
    rows = [
        {"trial": "slow", "time_to_target_s": 9.0, "best_success": 1.0},
        {"trial": "failed", "error": "boom"},
        {"trial": "never-good", "time_to_target_s": None, "best_success": 0.8},
        {"trial": "fast", "time_to_target_s": 3.0, "best_success": 0.95},
        {"trial": "never-bad", "time_to_target_s": None, "best_success": 0.2},
    ]
    assert [r["trial"] for r in rank(rows)] == ["fast", "slow", "never-good", "never-bad", "failed"]


def test_cli_refuses_a_sweep_without_a_grid(capsys):
    assert main(["sweep", "learner.lr=1e-3"]) == 2
    assert "nothing to sweep" in capsys.readouterr().err


def test_a_trial_reserves_one_bundle_per_worker_that_requests_resources():
    from distdqn.distributed.topology import bundles

    config = load_config(
        None,
        ["actor.num_actors=2", "replay.num_shards=2", "cluster.learner_num_gpus=0", "cluster.actor_num_cpus=0.5"]
        + ["cluster.shard_num_cpus=0"],
    )
    assert bundles(config) == [{"CPU": 1.0}, {"CPU": 0.5}, {"CPU": 0.5}, {}, {}]  # learner, 2 actors, 2 shards
