"""examples/keras_io_convnet.py on Keras itself, for the figures beside ours.

The file's two import lines are put back to Keras's (``import keras``, ``from keras import
layers``) and the rest runs unchanged, on Keras 3 with JAX on the CPU (the test extra),
except that Keras's MNIST download is replaced by the same files ours reads (there is no
internet here). Both runs print the example's own lines; the wall time of the whole
program is printed at the end.

    python examples/keras_io_convnet.py
    python benchmarks/keras_io_reference.py
"""

import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

from engine.datasets import mnist  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "keras_io_convnet.py"


def keras_program():
    text = EXAMPLE.read_text()
    for ours, theirs in (
        ("import engine as keras\n", "import keras\n"),
        ("from engine import layers\n", "from keras import layers\n"),
    ):
        assert ours in text, f"{EXAMPLE} no longer has the line {ours!r}"
        text = text.replace(ours, theirs)
    return text


def main():
    keras.datasets.mnist.load_data = lambda path=None: mnist.load_data()
    start = time.perf_counter()
    exec(compile(keras_program(), str(EXAMPLE), "exec"), {"__name__": "__main__"})
    print(
        f"Keras {keras.__version__} ({keras.backend.backend()}): "
        f"{time.perf_counter() - start:.0f} s for the whole program"
    )


if __name__ == "__main__":
    main()
