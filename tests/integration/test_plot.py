"""`distdqn plot` on real runs: two tiny local runs' metrics.jsonl drawn to PNGs that are checked pixel by pixel."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from distdqn.config import load_config  # noqa: E402
from distdqn.plot import plot_runs  # noqa: E402
from distdqn.trainer import train  # noqa: E402
from tests.fakes import COPY_RUN  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN_COLOURS = {"C0": (31, 119, 180), "C1": (255, 127, 14)}  # matplotlib's first two line colours


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real short runs (local runtime) that differ in the learning rate, with evaluations every second."""
    base = tmp_path_factory.mktemp("runs")
    out = []
    for lr in ("3e-3", "1e-3"):
        directory = base / f"lr{lr}"
        config = load_config(
            None,
            [
                *COPY_RUN,
                f"learner.lr={lr}",
                "run.max_updates=120",
                "run.eval_interval_s=0.5",
                "run.log_interval_s=0.2",
                "checkpoint.interval_s=0",
                f"run.run_dir={directory}",
            ],
        )
        train(config, directory, "local", quiet=True, examples=0)
        out.append(directory)
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    rgb_image = (image[..., :3] * 255).astype(int)
    return int((np.abs(rgb_image - np.array(rgb)).max(axis=-1) < tolerance).sum())


def distdqn(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "distdqn", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_draws_the_default_panels_with_both_runs(runs, tmp_path):
    out = tmp_path / "curves.png"
    done = distdqn("plot", *map(str, runs), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert png_size(out) == (1500, 640)  # 5 default panels: 3 columns x 2 rows of 5 x 3.2 inches at 100 dpi
    image = imread(out)
    assert (image[..., :3] < 0.9).any(axis=-1).mean() > 0.02  # not a blank canvas
    for name, rgb in RUN_COLOURS.items():
        assert pixels_near(image, rgb) > 200, f"no line in {name}: a run is missing"


def test_each_metric_and_axis_draws_a_different_picture(runs, tmp_path):
    pictures = {}
    for metric, x in (("eval.success", "env_steps"), ("learner.loss", "env_steps"), ("learner.loss", "wall_s")):
        path = plot_runs(runs[:1], tmp_path / f"{metric}-{x}.png", metrics=[metric], x=x)
        assert png_size(path) == (500, 320)
        pictures[(metric, x)] = imread(path)
        assert pixels_near(pictures[(metric, x)], RUN_COLOURS["C0"]) > 50
        assert pixels_near(pictures[(metric, x)], RUN_COLOURS["C1"]) == 0  # one run, one colour
    images = list(pictures.values())
    assert all(not np.array_equal(a, b) for i, a in enumerate(images) for b in images[i + 1 :])


def test_cli_unknown_metric_is_one_line_with_a_suggestion(runs, tmp_path):
    done = distdqn("plot", str(runs[0]), "--metric", "eval.sucess", "--out", str(tmp_path / "x.png"))
    assert done.returncode == 2 and "did you mean 'eval.success'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.png").exists()
