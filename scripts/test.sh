#!/usr/bin/env bash
# Set up (idempotent) and run the test suite: `bash scripts/test.sh [pytest args]`.
# The default run skips tests marked slow (`-m slow` selects them): runs of several minutes each, the medium
# levels' learning tests and a GPT-2-small-sized smoke run; the easy levels' learning tests are in the default run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_TMPDIR=${RAY_TMPDIR:-$(mktemp -d /tmp/distdqn-ray-XXXX)}
exec .venv/bin/python -m pytest "$@"
