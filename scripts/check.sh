#!/usr/bin/env bash
# Every check before a commit: lint (ruff) and the test suite exactly as CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check distdqn tests scripts
bash scripts/test.sh "$@"
