"""Peak memory of training the tutorial network, and of predicting all 60,000 MNIST images.

NumPy reports its allocations to tracemalloc, so the traced peak is the engine's own
memory (the data set, loaded before tracing starts, is not counted). Predicting streams
in batches: its peak grows with the batch size, never near one im2col buffer for all
60,000 images (60,000 x 26 x 26 x 9 floats = 1.46 GB for the first convolution alone).

    PYTHONPATH=. .venv/bin/python benchmarks/peak_memory.py --batch 128
    /usr/bin/time -v ...   # adds the process's maximum resident set size
"""

import argparse
import resource
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_torch import load_mnist  # noqa: E402
from tutorial import DATA_DIR, tutorial_model  # noqa: E402

from engine import backend  # noqa: E402

MB = 2**20


def traced_peak(fn):
    """fn()'s peak traced allocation in bytes above what was live before it."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--images", type=int, default=12800, help="training images")
    parser.add_argument("--data", default=DATA_DIR)
    args = parser.parse_args()
    backend.set_backend("numpy")
    x, y = load_mnist(args.data)
    model = tutorial_model()
    # From a new model: the peak includes the buffers layers keep between steps.
    train = traced_peak(
        lambda: model.fit(x[: args.images], y[: args.images], batch_size=args.batch, verbose=0)
    )
    predict = traced_peak(lambda: model.predict(x, batch_size=args.batch))
    im2col_all = len(x) * 26 * 26 * 9 * 4
    print(f"batch {args.batch}:")
    print(f"  training ({args.images} images), traced peak: {train / MB:.1f} MiB")
    print(
        f"  predict(60,000 images), traced peak: {predict / MB:.1f} MiB "
        f"(the outputs alone are {len(x) * 10 * 4 / MB:.1f} MiB; one im2col buffer for "
        f"all images would be {im2col_all / MB:.0f} MiB)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  process maximum resident set size: {rss:.0f} MiB (data set and Python included)")
    if predict > im2col_all / 2:
        raise SystemExit("predict does not stream: its peak is near a whole-data-set buffer")


if __name__ == "__main__":
    main()
