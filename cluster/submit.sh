#!/usr/bin/env bash
# Submit `distdqn train` to a running Ray cluster as a Ray job (see cluster/submit.py and cluster/README.md):
#
#   bash cluster/submit.sh ADDRESS [--python PY] [--no-wait] [--submission-id ID] -- TRAIN_ARGS...
#
#   ADDRESS     the head's job server: HOST (port 8265, the dashboard port), HOST:PORT or http(s)://HOST:PORT
#   --python    the cluster's Python, which has distdqn's dependencies on every node (default: `python`)
#   TRAIN_ARGS  every `distdqn train` flag; --run-dir DIR (or --resume DIR) is required and absolute
#
# The client Python (needs ray): $PYTHON, else this checkout's .venv, else python3 on PATH.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py=${PYTHON:-}
if [ -z "$py" ]; then
  if [ -x "$here/../.venv/bin/python" ]; then py="$here/../.venv/bin/python"; else py=python3; fi
fi
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
exec "$py" "$here/submit.py" "$@"
