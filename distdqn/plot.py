"""Learning curves from runs' `metrics.jsonl` to one PNG (`distdqn plot`): one panel per metric, runs overlaid.

A picture without starting TensorBoard, for comparing runs side by side. Reading the files needs nothing beyond the
standard library; drawing needs matplotlib (`pip install 'distdqn[plot]'`), imported only when a figure is drawn.

Records of a resumed run continue the same file from the checkpoint's counters, so its x values step back at a
resume; the points the resumed session superseded (x at or beyond the step-back) are dropped, as TensorBoard's
`purge_step` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from distdqn.extras import require
from distdqn.typed import suggest

XAxis = Literal["env_steps", "wall_s"]
X_AXES: tuple[XAxis, ...] = ("env_steps", "wall_s")
DEFAULT_METRICS = ("eval.success", "train.success", "learner.loss", "rate.env_steps_per_s", "rate.updates_per_s")
TITLES = {
    "eval.success": "held-out success",
    "train.success": "training success",
    "learner.loss": "TD loss",
    "rate.env_steps_per_s": "env steps / s",
    "rate.updates_per_s": "updates / s",
}
PANEL_INCHES = (5.0, 3.2)  # width, height of one panel
MAX_COLUMNS = 3


def metrics_file(run: Path) -> Path:
    """A run directory's `metrics.jsonl` (or the file itself when given); FileNotFoundError names what is missing."""
    path = run if run.suffix == ".jsonl" else run / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no metrics.jsonl (is it a run directory?)")
    return path


def read_records(run: Path) -> list[dict[str, Any]]:
    """Every record of a run's metrics.jsonl, in order; a torn last line (a run killed mid-write) is skipped."""
    records = []
    for line in metrics_file(run).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def series(records: list[dict[str, Any]], metric: str, x: XAxis = "env_steps") -> tuple[list[float], list[float]]:
    """(xs, ys) of `metric` against `x` over the records that carry both, minus the points a resume superseded."""
    xs: list[float] = []
    ys: list[float] = []
    for record in records:
        xv, yv = record.get(x), record.get(metric)
        if not (_is_number(xv) and _is_number(yv)):
            continue
        while xs and xs[-1] >= xv:  # a resumed session restarts at its checkpoint: drop what it replaces
            xs.pop()
            ys.pop()
        xs.append(float(xv))
        ys.append(float(yv))
    return xs, ys


def available_metrics(records: list[dict[str, Any]]) -> set[str]:
    """The numeric keys of a run's records (candidates for `--metric`)."""
    return {k for r in records for k, v in r.items() if _is_number(v) and k not in X_AXES}


def run_labels(runs: Sequence[Path]) -> list[str]:
    """Each run's directory name, with its parent's name in front when two runs share a name."""
    names = [(run.parent if run.suffix == ".jsonl" else run).resolve() for run in runs]
    labels = [p.name for p in names]
    return [f"{p.parent.name}/{p.name}" if labels.count(p.name) > 1 else p.name for p in names]


def plot_runs(
    runs: Sequence[Path],
    out: Path,
    metrics: Sequence[str] | None = None,
    x: XAxis = "env_steps",
    dpi: int = 100,
) -> Path:
    """Draw `metrics` (the defaults when None) of every run against `x` into the PNG `out`; `out`.

    A metric that no run recorded is an error when asked for by name (naming the nearest recorded one); a default
    metric missing from every run (no evaluation yet, a runtime without a loss) gets an empty panel saying so."""
    if x not in X_AXES:
        raise ValueError(f"x axis must be one of {list(X_AXES)}, got {x!r}")
    if not runs:
        raise ValueError("no runs to plot")
    data = [read_records(Path(run)) for run in runs]
    recorded = set().union(*(available_metrics(records) for records in data))
    chosen = list(metrics or DEFAULT_METRICS)
    if metrics:
        for metric in chosen:
            if metric not in recorded:
                raise ValueError(
                    f"metric {metric!r} is in no run's metrics.jsonl{suggest(metric, recorded)}; recorded: "
                    f"{', '.join(sorted(recorded))}"
                )
    matplotlib = require("matplotlib", "plot", "distdqn plot")
    matplotlib.use("Agg")  # files only: no display needed
    from matplotlib import pyplot as plt

    columns = min(len(chosen), MAX_COLUMNS)
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows), squeeze=False)
    try:
        labels = run_labels([Path(run) for run in runs])
        for ax, metric in zip(axes.flat, chosen, strict=False):
            drawn = False
            for label, records in zip(labels, data, strict=True):
                xs, ys = series(records, metric, x)
                if xs:
                    ax.plot(xs, ys, label=label, marker="." if len(xs) < 30 else None)
                    drawn = True
            ax.set_title(TITLES.get(metric, metric) + (f" ({metric})" if metric in TITLES else ""))
            ax.set_xlabel("env steps" if x == "env_steps" else "wall seconds (run clock)")
            ax.grid(alpha=0.3)
            if drawn:
                ax.legend(fontsize="small")
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        for ax in list(axes.flat)[len(chosen) :]:
            ax.set_visible(False)
        fig.tight_layout()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return out
