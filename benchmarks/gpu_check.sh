#!/usr/bin/env bash
# The one prepared GPU check: on a machine with CuPy and a CUDA device, run the CuPy test
# cases, then `pytest benchmarks/`, from the source tree (nothing installed), and keep the
# logs and the benchmark JSON in $OUT (default gpu-results/). Usage, from the repo root:
#     OUT=/some/folder bash benchmarks/gpu_check.sh
# The Keras parity suite is left out (the GPU image has no Keras); MNIST tests skip unless
# XPCNN_DATA_DIR points at the four files.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

{ nvidia-smi; python3 -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)"; } \
    > "$out/machine.txt" 2>&1
python3 -m pytest tests --ignore=tests/keras -m gpu -q -rs -p no:cacheprovider 2>&1 | tee "$out/gpu-tests.txt"
tests_rc=${PIPESTATUS[0]}
python3 -m pytest benchmarks/ -q -p no:cacheprovider --benchmark-json="$out/bench.json" 2>&1 \
    | tee "$out/bench.txt"
bench_rc=${PIPESTATUS[0]}
echo "gpu tests exit $tests_rc, benchmarks exit $bench_rc" | tee -a "$out/machine.txt"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
