#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with torch (CPU build unless a GPU is present) and distdqn.
#   DISTDQN_VENV   where the venv lives (default .venv)
#   DISTDQN_TORCH  the torch requirement to install when torch is missing
#                  (default: torch==2.13.0 from the CPU wheel index on machines without an NVIDIA GPU,
#                   a plain `torch` — PyPI's CUDA build — on machines with one)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DISTDQN_VENV:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "${DISTDQN_TORCH:-}" ]; then
    echo "[setup] installing $DISTDQN_TORCH"
    # shellcheck disable=SC2086  # word splitting intended: a requirement plus pip options
    $PIP install -q $DISTDQN_TORCH
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "[setup] NVIDIA GPU found: installing torch with CUDA"
    $PIP install -q torch
  else
    echo "[setup] no GPU: installing the CPU build of torch"
    # A local wheel (as on our dev machines) satisfies torch==2.13.0 without a download; elsewhere the CPU index does.
    $PIP install -q torch==2.13.0 2>/dev/null \
      || $PIP install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
      || $PIP install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi

# torch is already satisfied, so this never replaces it with a different build.
stamp="$VENV/.distdqn-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! "$VENV/bin/python" -c "import distdqn, ray, msgpack" 2>/dev/null; then
  echo "[setup] installing distdqn and its dependencies"
  $PIP install -q -e ".[dev]"
  touch "$stamp"
fi
"$VENV/bin/python" -c "import torch, ray; print(f'[setup] ready: torch {torch.__version__} (cuda={torch.cuda.is_available()}), ray {ray.__version__}')"
