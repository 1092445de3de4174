"""A tiny sweep on the embedded test instance: two Ray Tune trials side by side, each a distributed run whose
learner, actor and shard sit in the trial's placement group; ranked rows and the best config written out."""

import json
import os

import pytest

pytest.importorskip("ray.tune", reason="the tune extra (pip install 'distdqn[tune]') is not installed")

from distdqn.config import load_config  # noqa: E402
from distdqn.distributed.sweep import SweepSpec, format_table, run_sweep  # noqa: E402
from tests.fakes import SUPERVISED_RUN  # noqa: E402

pytestmark = pytest.mark.integration

# Each trial reserves 0.5 (its process) + 0.5 (learner) + 0.5 (actor) + 0.25 (shard) = 1.75 of the 4 CPUs, so both
# trials run at once and only 0.5 CPU stays outside the groups: workers placed outside them could not all start.
TRIAL = [
    *SUPERVISED_RUN,
    "actor.num_actors=1",
    "cluster.shard_num_cpus=0.25",
    "run.target_success=0.9",
    "run.eval_interval_s=1",
    "run.max_seconds=20",
]
BUNDLES = [{"CPU": 0.5}, {"CPU": 0.5}, {"CPU": 0.5}, {"CPU": 0.25}]


def test_a_grid_runs_as_tune_trials_in_placement_groups(ray_cluster, tmp_path):
    ray = ray_cluster
    base = load_config(None, [*TRIAL, "run.name=tiny"])
    spec = SweepSpec(base.to_dict(), {"learner.lr": ["3e-3", "1e-3"]}, samples=1)
    rows = run_sweep(spec, tmp_path, trial_cpus=0.5, quiet=True)

    assert [r.get("error") for r in rows] == [None, None], format_table(rows)
    assert sorted(r["params"]["learner.lr"] for r in rows) == ["1e-3", "3e-3"]
    # side by side (a trial writes config.yaml as it starts and summary.json as it ends): had the workers not been
    # in the groups, the 0.5 CPU left outside them could not have hosted either trial's learner, actor and shard
    spans = [
        (os.path.getmtime(f"{r['run_dir']}/config.yaml"), os.path.getmtime(f"{r['run_dir']}/summary.json"))
        for r in rows
    ]
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    for row in rows:
        records = [json.loads(line) for line in open(f"{row['run_dir']}/metrics.jsonl")]
        assert any(r.get("kind") == "eval" for r in records) and row["updates"] > 0
    reached = [r["time_to_target_s"] for r in rows if r["time_to_target_s"] is not None]
    assert reached == sorted(reached) and rows[: len(reached)] == [r for r in rows if r["time_to_target_s"] is not None]
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows

    best = load_config(tmp_path / "best.yaml")
    assert best.learner.lr == float(rows[0]["params"]["learner.lr"]) and best.run.run_dir == ""
    assert best.run.name == rows[0]["trial"] and best.run.target_success == 0.9

    groups = [g for g in ray.util.placement_group_table().values() if g["bundles"]]
    trial_groups = [g for g in groups if sorted(g["bundles"].values(), key=str) == sorted(BUNDLES, key=str)]
    assert len(trial_groups) == 2 and all(g["state"] == "REMOVED" for g in trial_groups)  # released at the end
    assert "time to target" in format_table(rows) and rows[0]["trial"] in format_table(rows)
