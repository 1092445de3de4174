"""Hyper-parameter sweeps on Ray Tune (`distdqn sweep`): a grid of dotted overrides times `samples` seeds, each point a
Tune trial that runs a whole distributed run in its own placement group; a table ranked by time to the held-out
target, and the best config written out.

Why Tune and not a loop of `train`: trials run side by side on the cluster as resources allow, Tune keeps their
results and errors, and its placement-group factory reserves each trial's learner, actors and shards at once, so a
trial never starts with half its workers (`topology.bundles` lists them; the trial's own process takes the first
bundle). A trial reports held-out success to Tune at every evaluation (a metrics sink), and writes its summary to
its run directory, `<sweep_dir>/trials/<trial>/`, beside its metrics.jsonl, TensorBoard events and checkpoints.

The sweep's files: `results.json` (the ranked rows), `best.yaml` (the winning trial's resolved config, ready for
`distdqn train -c`), `tune/` (Tune's own experiment state).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from pathlib import Path
from typing import Any

import ray
import yaml
from ray import tune

from distdqn.config import Config, ConfigError, apply_overrides, dump_yaml, validate
from distdqn.distributed.launcher import init_ray
from distdqn.distributed.topology import bundles, cpus_needed
from distdqn.run import write_json
from distdqn.trainer import build_supervisor
from distdqn.typed import YamlLoader, build

SAMPLE_KEY = "sample"  # the Tune parameter that numbers a grid point's repeats; trial seed = run.seed + sample


@dataclasses.dataclass
class SweepSpec:
    """What to sweep: a base config (as a dict of resolved values), a grid of override texts, repeats per point."""

    base: dict[str, Any]  # the resolved base config (`Config.to_dict()`): trials need no file on their node
    grid: dict[str, list[str]]  # dotted key -> values, as override text (`learner.lr` -> ["1e-3", "3e-4"])
    samples: int = 1  # runs per grid point, with seeds run.seed + 0 .. samples - 1


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """`["learner.lr=1e-3,3e-4", "actor.n_step=3,5"]` -> `{"learner.lr": ["1e-3", "3e-4"], ...}`."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not choices:
            raise ConfigError([f"--grid {item!r} must look like section.key=value1,value2"])
        grid[key.strip()] = choices
    return grid


def read_sweep_file(path: Path) -> dict[str, Any]:
    """A sweep YAML: `grid: {key: [values]}`, optional `samples`, `config` (relative to the file) and `overrides`."""
    data = yaml.load(path.read_text(), Loader=YamlLoader) or {}
    unknown = set(data) - {"grid", "samples", "config", "overrides"}
    if not isinstance(data, dict) or unknown or not isinstance(data.get("grid", {}), dict):
        raise ConfigError([f"{path}: expected keys grid (a mapping), samples, config, overrides; got {sorted(data)}"])
    text = {k: [v if isinstance(v, str) else json.dumps(v) for v in vs] for k, vs in data.get("grid", {}).items()}
    if data.get("config"):
        data["config"] = str((path.parent / data["config"]).resolve())
    return {**data, "grid": text}


def points(spec: SweepSpec) -> list[dict[str, str]]:
    """Every grid point x sample, as Tune parameters (dotted key -> override text, plus `sample`)."""
    keys = list(spec.grid)
    return [
        {**dict(zip(keys, values, strict=True)), SAMPLE_KEY: str(sample)}
        for values in itertools.product(*(spec.grid[k] for k in keys))
        for sample in range(spec.samples)
    ]


def trial_name(spec: SweepSpec, params: dict[str, Any]) -> str:
    """A readable, path-safe name from a point's parameters, in grid order: `learner.lr=1e-3,actor.n_step=3,sample=0`
    (the same in the trial and in the driver, whatever order Tune hands the parameters back in)."""
    text = ",".join(f"{k}={params[k]}" for k in [*spec.grid, SAMPLE_KEY])
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)


def trial_config(spec: SweepSpec, params: dict[str, str], sweep_dir: Path) -> Config:
    """The base config with a point's overrides, its seed, name and run directory under the sweep."""
    name = trial_name(spec, params)
    overrides = [f"{k}={v}" for k, v in params.items() if k != SAMPLE_KEY]
    try:
        config = build(Config, apply_overrides(json.loads(json.dumps(spec.base)), overrides))
        validate(config)
    except ConfigError as error:
        raise ConfigError([f"trial {name}: {p}" for p in error.problems]) from None
    config.run.seed += int(params[SAMPLE_KEY])
    config.run.name = name
    config.run.run_dir = str(sweep_dir / "trials" / name)
    return config


class TuneReport:
    """A metrics sink that reports every held-out evaluation to Tune (so Tune's table and searchers see it)."""

    def write(self, step: int, record: dict[str, Any]) -> None:
        if record.get("kind") == "eval":
            keys = ("eval.success", "env_steps", "updates", "wall_s")
            tune.report({k: record[k] for k in keys if record.get(k) is not None})

    def close(self) -> None:
        pass


def run_trial(params: dict[str, str], spec: SweepSpec, sweep_dir: str) -> None:
    """One Tune trial: a distributed run (its workers in the trial's placement group); summary.json in its run dir."""
    config = trial_config(spec, params, Path(sweep_dir))
    directory = Path(config.run.run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(dump_yaml(config))
    supervisor = build_supervisor(config, directory, "ray", quiet=True)
    try:
        supervisor.tracker.sinks.add(TuneReport())
        summary = supervisor.run()
    finally:
        supervisor.close()
    write_json(directory / "summary.json", summary)
    tune.report({"eval.success": summary["final_success"] or 0.0, "env_steps": summary["env_steps"], "done": 1})


def trial_resources(spec: SweepSpec, sweep_dir: Path, trial_cpus: float):
    """The placement group of one trial: its own process first, then its learner, actors and shards."""

    def resources(params: dict[str, str]) -> tune.PlacementGroupFactory:
        config = trial_config(spec, params, sweep_dir)
        return tune.PlacementGroupFactory([{"CPU": trial_cpus}, *[b for b in bundles(config) if b]])

    return resources


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials that reached the target first (sooner first), then the others by best held-out success; errors last."""

    def key(row: dict[str, Any]) -> tuple:
        ttt = row.get("time_to_target_s")
        return (row.get("error") is not None, ttt is None, ttt or 0.0, -(row.get("best_success") or 0.0))

    return sorted(rows, key=key)


def run_sweep(
    spec: SweepSpec, sweep_dir: Path, trial_cpus: float = 1.0, max_concurrent: int = 0, quiet: bool = False
) -> list[dict[str, Any]]:
    """Run every trial on the cluster of `spec.base["cluster"]` (a fresh embedded one by default); the ranked rows.
    Writes results.json and best.yaml into `sweep_dir`."""
    sweep_dir = sweep_dir.resolve()
    for params in points(spec):  # every trial's config is checked before the first one starts
        trial_config(spec, params, sweep_dir)
    base = build(Config, json.loads(json.dumps(spec.base)))
    started = init_ray(base.cluster, cpus_needed=trial_cpus + cpus_needed(base)[0])  # at least one trial fits
    try:
        trainable = tune.with_parameters(run_trial, spec=spec, sweep_dir=str(sweep_dir))
        tuner = tune.Tuner(
            tune.with_resources(trainable, trial_resources(spec, sweep_dir, trial_cpus)),
            param_space={k: tune.grid_search(v) for k, v in spec.grid.items()}
            | {SAMPLE_KEY: tune.grid_search([str(s) for s in range(spec.samples)])},
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent or None),
            run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=0 if quiet else 1),
        )
        results = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    rows = []
    for result in results:
        params = {k: str(v) for k, v in result.config.items()}
        name = trial_name(spec, params)
        directory = sweep_dir / "trials" / name
        row: dict[str, Any] = {"trial": name, "params": params, "run_dir": str(directory)}
        try:
            row.update(json.loads((directory / "summary.json").read_text()))
        except (OSError, ValueError):
            row["error"] = str(result.error).strip().splitlines()[-1] if result.error else "no summary.json"
        rows.append(row)
    rows = rank(rows)
    write_json(sweep_dir / "results.json", {"rows": rows})
    if rows and "error" not in rows[0]:
        best = build(Config, yaml.safe_load((Path(rows[0]["run_dir"]) / "config.yaml").read_text()))
        best.run.run_dir = ""  # `distdqn train -c best.yaml` starts a new run in runs/<name>
        (sweep_dir / "best.yaml").write_text(f"# best trial of {sweep_dir}: {rows[0]['trial']}\n" + dump_yaml(best))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The ranked rows as a text table: trial, time to target, env steps to it, final and best held-out success."""

    def number(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [f"{'rank':>4}  {'time to target':>14}  {'env steps':>10}  {'final':>6}  {'best':>6}  trial"]
    for i, row in enumerate(rows, 1):
        if "error" in row:
            lines.append(f"{i:>4}  {'failed':>14}  {'':>10}  {'':>6}  {'':>6}  {row['trial']}: {row['error']}")
            continue
        ttt = "not reached" if row.get("time_to_target_s") is None else f"{row['time_to_target_s']:.1f} s"
        lines.append(
            f"{i:>4}  {ttt:>14}  {number(row.get('env_steps_to_target'), 'd'):>10}  "
            f"{number(row.get('final_success'), '.3f'):>6}  {number(row.get('best_success'), '.3f'):>6}  {row['trial']}"
        )
    return "\n".join(lines)
