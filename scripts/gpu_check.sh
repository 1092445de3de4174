#!/usr/bin/env bash
# The GPU check of issue 16, prepared to run once on a lent GPU machine (nothing is fetched there: its image has
# torch, numpy, msgpack, yaml and pytest; Ray is not needed). From the development machine, the device tool's `run`
# with the command `bash scripts/gpu_check.sh` and timeout_s 540; on any machine with a GPU, the same command.
# It writes to $OUT (a temp dir when unset): the GPU and torch versions, the gpu-marked CPU/CUDA equivalence tests,
# and `bench_core.py --devices cpu cuda` (the GPU learner at batch 512 and 2048, float32 and bf16, beside the CPU
# learner in the same process run) as a table and JSON. About 3 minutes.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi > /dev/null || ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: no CUDA device here (nvidia-smi, or torch.cuda.is_available() with $PY)" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" \
    | tee -a "$OUT/gpu.txt"
timeout 180 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/unit/test_learner.py 2>&1 | tee "$OUT/gpu_tests.txt"
timeout 300 "$PY" scripts/bench_core.py --devices cpu cuda --learner-only --json "$OUT/bench_core_gpu.json" 2>&1 \
    | tee "$OUT/bench_core_gpu.txt"
echo "gpu_check: results in $OUT"
