#!/usr/bin/env bash
# Rehearse benchmarks/gpu_check.sh on a machine without a GPU, so that the one run a GPU
# session gets is not spent on a typo: `import cupy` gives tests/emulated_cupy.py (our CUDA
# kernels compiled as C++ loops; needs g++), every CuPy test case and GPU benchmark runs
# through the real script, and $OUT (default gpu-rehearsal/) fills as on the GPU. The GPU
# timings it prints are an emulation's, meaningless as speed. From the repo root, with the
# project's environment on PATH:
#     PATH=.venv/bin:$PATH bash benchmarks/gpu_rehearsal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shim="$(mktemp -d)"
trap 'rm -rf "$shim"' EXIT
cat > "$shim/sitecustomize.py" <<PY
import sys

sys.path.insert(0, "$PWD")
from tests.emulated_cupy import EmulatedCupy

sys.modules["cupy"] = EmulatedCupy()
PY
# The emulation is slow: the training run rehearses on 512 images for one epoch.
PYTHONPATH="$shim" OUT="${OUT:-gpu-rehearsal}" MNIST_ARGS="${MNIST_ARGS:---limit 512 --epochs 1}" \
    bash benchmarks/gpu_check.sh
