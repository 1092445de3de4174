#!/usr/bin/env bash
# Submit a training run to a running Ray cluster with `ray job submit`:
#   bash cluster/submit.sh HEAD_HOST [distdqn train flags...]
# The job's driver runs on the cluster (RAY_ADDRESS is set there, so `distdqn train` joins it); the working
# directory (this repository) is uploaded. The token: RAY_AUTH_TOKEN or ~/.ray/auth_token (see cluster/onprem.yaml).
set -euo pipefail
head=${1:?usage: cluster/submit.sh HEAD_HOST [train flags...]}; shift
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
exec .venv/bin/ray job submit --address "http://${head}:8265" --working-dir . \
  --runtime-env-json '{"excludes": [".venv", "runs", ".git"]}' \
  -- python -m distdqn train --config configs/keyword_easy.yaml "$@"
