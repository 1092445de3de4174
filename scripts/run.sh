#!/usr/bin/env bash
# Set up (idempotent) and run the main job: distributed training of the default task on an embedded local Ray
# instance, then greedy generations on held-out prompts. Extra arguments go to `distdqn train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/distdqn train --config configs/keyword_easy.yaml "$@"
