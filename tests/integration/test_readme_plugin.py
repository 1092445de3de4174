"""The README's plug-in task example works as printed: its code block is written to a module and trained."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_plugin_task_trains(tmp_path):
    readme = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(# mytask\.py.*?)```", readme, re.S).group(1)
    (tmp_path / "mytask.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "distdqn",
            "train",
            "--local",
            "--quiet",
            "--task",
            "mytask:Rhyme",
            "--max-updates",
            "300",
            "--run-dir",
            str(tmp_path / "run"),
            "--json",
            str(tmp_path / "s.json"),
            "replay.min_size_to_sample=256",
            "learner.batch_size=64",
            "--examples",
            "0",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["final_success"] >= 0.9
