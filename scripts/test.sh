#!/usr/bin/env bash
# Set up (idempotent) and run the test suite: `bash scripts/test.sh [pytest args]`.
# The default run skips tests marked slow; CI adds the CI learning tests (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_TMPDIR=${RAY_TMPDIR:-$(mktemp -d /tmp/distdqn-ray-XXXX)}
exec .venv/bin/python -m pytest "$@"
