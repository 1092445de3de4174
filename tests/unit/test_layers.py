"""Layering: the core (config, envs, wire, replay, networks, learner, actor, local runtime) never imports Ray."""

import subprocess
import sys

CORE = [
    "distdqn.config",
    "distdqn.envs",
    "distdqn.spec",
    "distdqn.wire",
    "distdqn.replay.prioritized",
    "distdqn.networks",
    "distdqn.losses",
    "distdqn.actor",
    "distdqn.learner",
    "distdqn.local",
    "distdqn.checkpoint",
    "distdqn.evaluation",
    "distdqn.cli",
    "distdqn.plot",
    "distdqn.trackers",
]


def test_core_never_imports_ray():
    code = "import sys\n" + "".join(f"import {m}\n" for m in CORE) + "print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
