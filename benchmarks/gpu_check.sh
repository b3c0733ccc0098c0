#!/usr/bin/env bash
# The one prepared GPU check: on a machine with CuPy and a CUDA device, run the CuPy test
# cases, then `pytest benchmarks/`, then the tutorial's training (examples/mnist_train.py) where
# MNIST is found, from the source tree (nothing installed), and keep the logs, the benchmark
# JSON and the run's figures in $OUT (default gpu-results/). Usage, from the repo root:
#     OUT=/some/folder bash benchmarks/gpu_check.sh
# The Keras parity suite is left out (the GPU image has no Keras). The MNIST test and the
# training run need the four MNIST files: XPCNN_DATA_DIR, or ../shared/data beside the repo
# (a device machine has neither unless the files travel with the tree: see benchmarks/README).
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
# The real job on the GPU, where MNIST is at hand; MNIST_ARGS can shorten it (--epochs 1).
data="${XPCNN_DATA_DIR:-../shared/data}"
if [ -d "$data/mnist" ] || [ -f "$data/mnist.npz" ]; then
    # shellcheck disable=SC2086 # MNIST_ARGS is a list of options
    python3 examples/mnist_train.py --backend cupy --data-dir "$data" --out "$out/mnist" \
        ${MNIST_ARGS:-} > "$out/mnist-train.txt" 2>&1
    train_rc=$?
    tr '\r' '\n' < "$out/mnist-train.txt" | grep -v 'step/s' | tail -15
else
    echo "MNIST not found in $data (set XPCNN_DATA_DIR): no training run" | tee "$out/mnist-train.txt"
    train_rc=0
fi
echo "gpu tests exit $tests_rc, benchmarks exit $bench_rc, training exit $train_rc" \
    | tee -a "$out/machine.txt"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] && [ "$train_rc" -eq 0 ]
