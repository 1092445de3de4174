"""scripts/bench_core.py's learner part (issue 16): both implementations timed side by side per device, precision,
batch and vocabulary, the ratio taken against the reference of the same cell; `--devices cuda` refused clearly
where torch sees no GPU (the prepared GPU check, scripts/gpu_check.sh, runs it where one is lent)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("bench_core", ROOT / "scripts" / "bench_core.py")
bench_core = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_core)


def test_both_implementations_are_timed_on_the_same_cell_and_compared_within_it(capsys):
    rows = bench_core.bench_learner(vocab=32, seconds=0.2, batch_size=16)
    assert [r["impl"] for r in rows] == ["fast", "reference"]
    assert all(r["device"] == "cpu" and r["precision"] == "fp32" and r["batch"] == 16 for r in rows)
    assert all(
        r["updates_per_s"] > 0 and r["sampled_transitions_per_s"] == pytest.approx(16 * r["updates_per_s"])
        for r in rows
    )
    # the matrix products of one update, forward and backward (the GRU's 20 steps at least: 3 passes x [16, 64] x
    # [64, 192] each), and their rate
    assert all(r["mflop_per_update"] > 3 * 20 * 2 * 16 * 64 * 192 / 1e6 for r in rows)
    assert all(r["gflop_per_s"] == pytest.approx(r["mflop_per_update"] * r["updates_per_s"] / 1e3) for r in rows)
    other = [{**r, "batch": 32, "sampled_transitions_per_s": 2 * r["sampled_transitions_per_s"]} for r in rows]
    bf16 = [{**r, "precision": "bf16", "gflop_per_s": 7 * r["gflop_per_s"]} for r in rows]
    bench_core.add_speedups(rows + other + bf16)
    bench_core.print_learner_rows(rows + other + bf16, cpu_peak_gflops=1000.0)
    assert rows[1]["speedup_vs_reference"] == 1.0 and other[1]["speedup_vs_reference"] == 1.0
    assert rows[0]["speedup_vs_reference"] == pytest.approx(
        rows[0]["sampled_transitions_per_s"] / rows[1]["sampled_transitions_per_s"]
    )
    out = capsys.readouterr().out
    assert "GPU target" not in out  # no CUDA row, no GPU verdict
    needed = 3 * rows[1]["gflop_per_s"]
    assert f"3x the reference at batch 16, vocab 32: {needed:.1f} GFLOP/s at its FLOPs, {needed / 1000:.0%}" in out
    assert out.count("3x the reference at batch 16") == 1  # against the float32 peak: float32 rows only


def test_the_gpu_verdict_reads_the_best_cuda_row(capsys):
    rows = [
        {
            "device": "cuda",
            "precision": p,
            "impl": i,
            "batch": 512,
            "vocab": 32,
            "max_len": 20,
            "updates_per_s": u,
            "sampled_transitions_per_s": 512 * u,
            "mflop_per_update": 1000.0,
            "gflop_per_s": u,
        }
        for p, i, u in [
            ("fp32", "fast", 150.0),
            ("fp32", "reference", 100.0),
            ("bf16", "fast", 250.0),
            ("bf16", "reference", 120.0),
        ]
    ]
    bench_core.add_speedups(rows)
    bench_core.print_learner_rows(rows)
    assert "best 128,000, met" in capsys.readouterr().out
    assert rows[2]["speedup_vs_reference"] == pytest.approx(250 / 120)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_is_refused_where_torch_sees_no_gpu(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_core.py"),
            "--devices",
            "cuda",
            "--json",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "torch sees no CUDA device" in out.stderr
    assert not (tmp_path / "x.json").exists()
    gpu = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "OUT": str(tmp_path)},
    )
    assert gpu.returncode == 2 and "no CUDA device here" in gpu.stderr
