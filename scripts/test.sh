#!/usr/bin/env bash
# Set up (idempotent) and run the test suite: `bash scripts/test.sh [pytest args]`.
# The default run skips tests marked slow (none at present: the learning tests fit the default run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_TMPDIR=${RAY_TMPDIR:-$(mktemp -d /tmp/distdqn-ray-XXXX)}
exec .venv/bin/python -m pytest "$@"
