"""The replay core and the wire codec need only numpy and msgpack: importing them loads neither Ray nor torch."""

import subprocess
import sys


def test_replay_and_wire_import_neither_ray_nor_torch():
    modules = ["distdqn.wire", "distdqn.replay", "distdqn.replay.sharding", "distdqn.replay.rate_limiter"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
