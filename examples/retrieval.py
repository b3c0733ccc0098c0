"""Search for similar images: nearest neighbours in a trained CNN's feature space.

The tutorial names image retrieval among the things a CNN does. This program trains the
tutorial's network on MNIST (or loads one saved by mnist_train.py), takes its penultimate
layer as an embedding through a feature-extractor Model that shares the trained weights,
embeds the test set, and for each test image finds the 10 most similar other test images
(cosine similarity). It reports precision@10 (the share of those 10 with the query's
label) and draws some queries with their best matches.

    python examples/retrieval.py                          # train 3 epochs, then search
    python examples/retrieval.py --model runs/mnist/model.npz
    python examples/retrieval.py --epochs 1 --limit 3000  # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))
import cli  # noqa: E402  (makes the engine importable from a checkout)
import plots  # noqa: E402

import engine  # noqa: E402
from engine import Model, losses  # noqa: E402
from engine.datasets import mnist  # noqa: E402

PROG = "retrieval.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Find the test images most similar to each test image, in the feature "
        "space of a trained CNN, and measure precision@K on MNIST.",
    )
    cli.add_common_options(
        parser,
        epochs=3,
        batch_size=64,
        out="runs/retrieval",
        limit_help="train on the first N training images only (the test set stays whole)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="FILE",
        help="a trained model file (e.g. runs/mnist/model.npz) instead of training one",
    )
    parser.add_argument(
        "--k", type=cli.positive_int, default=10, help="neighbours per query (default: 10)"
    )
    parser.add_argument(
        "--queries",
        type=cli.positive_int,
        default=None,
        metavar="N",
        help="search for the first N test images only (default: all 10,000)",
    )
    return parser.parse_args(argv)


def tutorial_network():
    """The tutorial's network, its penultimate layer named 'embedding'."""
    layers = engine.layers
    return engine.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(64, activation="relu", name="embedding"),
            layers.Dense(10),
        ]
    )


def embedder(model):
    """A Model from the classifier's input to its penultimate layer's output (shared weights)."""
    penultimate = model.layers[-2]
    return Model(model.inputs, penultimate.output, name="embedder")


def nearest_neighbours(embeddings, queries, k, block=1024):
    """Indices (Q, k) of each query's k most similar rows of ``embeddings`` by cosine
    similarity, the query itself excluded; computed in blocks to bound memory."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    found = []
    for start in range(0, len(queries), block):
        rows = queries[start : start + block]
        similarity = unit[rows] @ unit.T
        similarity[np.arange(len(rows)), rows] = -np.inf  # not itself
        top = np.argpartition(-similarity, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1)
        found.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(found)


def precision_at_k(labels, queries, neighbours):
    """The mean over queries of the share of neighbours with the query's label."""
    return float(np.mean(labels[neighbours] == labels[queries][:, None]))


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    cli.start(PROG, args)
    (x_train, y_train), (x_test, y_test) = cli.load_images(PROG, mnist, args.data_dir, args.limit)
    if args.model is not None:
        try:
            model = engine.load_model(args.model)
        except (engine.WeightFileError, OSError) as exc:
            raise SystemExit(f"{PROG}: error: cannot load --model: {exc}") from None
    else:
        model = tutorial_network()
        model.compile(
            "adam", losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
        )
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed)
    extractor = embedder(model)
    print(f"embedding: the output of layer {model.layers[-2].name!r}, {extractor.output_shape}")
    embeddings = extractor.predict(x_test, batch_size=256)
    queries = np.arange(len(x_test) if args.queries is None else min(args.queries, len(x_test)))
    neighbours = nearest_neighbours(embeddings, queries, args.k)
    precision = precision_at_k(y_test, queries, neighbours)
    chance = float(np.mean(np.bincount(y_test, minlength=10) ** 2) * 10 / len(y_test) ** 2)
    print(f"precision@{args.k}: {precision:.4f} over {len(queries)} test queries")
    print(f"(a random neighbour has the query's label with probability {chance:.3f})")
    args.out.mkdir(parents=True, exist_ok=True)
    path = plots.plot_retrieval(
        x_test, y_test, queries[:8], neighbours[:8, :8], args.out / "retrieval.png"
    )
    print(f"saved {path}")
    print(f"total time: {time.perf_counter() - start:.1f}s")
    return precision


if __name__ == "__main__":
    main()
