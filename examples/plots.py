"""Figures for the example programs: one function per PNG file.

Every function takes plain NumPy arrays and an output path, draws with
matplotlib's non-interactive Agg backend, writes the PNG and closes the figure,
so nothing ever opens a window or blocks.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # write files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 100


def _save(fig, path):
    """Write `fig` to `path` (creating its folder) and release it."""
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _as_image(x):
    """(H, W) or (H, W, 1) array -> (H, W) float array for imshow."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    return x


def confusion_matrix(y_true, y_pred, num_classes=10):
    """Counts of (true, predicted) pairs: row = true label, column = prediction.

    Shapes: y_true, y_pred (N,) ints -> (num_classes, num_classes) int64.
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    flat = y_true * num_classes + y_pred
    counts = np.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def plot_training_curves(history, path):
    """Accuracy (left) and loss (right) per epoch, training vs validation.

    `history` is a dict of per-epoch lists, as in `model.fit(...).history`:
    'accuracy', 'loss' and optionally 'val_accuracy', 'val_loss'.
    """
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in (
        (ax_acc, "accuracy", "Accuracy"),
        (ax_loss, "loss", "Loss"),
    ):
        train = np.asarray(history.get(key, []), dtype=np.float64)
        val = np.asarray(history.get("val_" + key, []), dtype=np.float64)
        if train.size:
            epochs = np.arange(1, train.size + 1)
            ax.plot(epochs, train, "o-", label="training")
        if val.size:
            epochs = np.arange(1, val.size + 1)
            ax.plot(epochs, val, "s--", label="validation (test set)")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        n = max(train.size, val.size, 1)
        # integer epoch ticks, not 0.5 steps, without crowding long runs
        ax.set_xticks(np.arange(1, n + 1, max(1, n // 10)))
        ax.margins(y=0.2)  # room for the legend above and below the curves
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("Training history")
    fig.text(
        0.5,
        0.01,
        "training values are running means over each epoch; validation is measured after it",
        ha="center",
        fontsize=8,
        color="0.4",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, path)


def plot_predictions(images, predicted, true, path, count=20, columns=10):
    """The first `count` images with predicted and true label; mistakes in red.

    Shapes: images (N, 28, 28[, 1]), predicted (N,), true (N,).
    """
    count = min(count, len(images))
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(1.5 * columns, 2.0 * rows + 0.5),
        squeeze=False,
        layout="constrained",
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        pred, label = int(predicted[i]), int(true[i])
        ax.imshow(_as_image(images[i]), cmap="binary")
        color = "tab:green" if pred == label else "red"
        ax.set_title(f"pred {pred}\ntrue {label}", color=color, fontsize=10)
    wrong = int(np.sum(np.asarray(predicted[:count]) != np.asarray(true[:count])))
    fig.suptitle(f"First {count} test images ({wrong} wrong, shown in red)")
    return _save(fig, path)


def plot_confusion_matrix(matrix, path, class_names=None):
    """Annotated heat map of a (K, K) count matrix: rows true, columns predicted."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    names = class_names if class_names is not None else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    acc = correct / total if total else 0.0
    ax.set_title(f"Confusion matrix ({correct}/{total} correct, {acc:.2%})")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(k):
        for j in range(k):
            value = int(matrix[i, j])
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > threshold else "black",
            )
    fig.tight_layout()
    return _save(fig, path)


def plot_filters(kernel, path, columns=8):
    """The learned kernels of a convolution, one small image per output channel.

    Shapes: kernel (KH, KW, C_in, C_out); with C_in > 1 the input channels are
    averaged. Each filter gets its own colour scale (red positive, blue negative,
    white zero) so its pattern is visible whatever its magnitude.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    filters = kernel.mean(axis=2)  # (KH, KW, C_out)
    n = filters.shape[-1]
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.3 * columns, 1.45 * rows + 0.6), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        f = filters[..., i]
        limit = float(np.abs(f).max()) or 1.0
        ax.imshow(f, cmap="bwr", vmin=-limit, vmax=limit)
        ax.set_title(f"#{i}", fontsize=8)
    kh, kw = filters.shape[:2]
    fig.suptitle(f"{n} learned {kh}x{kw} kernels of the first convolution (red +, blue -)")
    fig.tight_layout()
    return _save(fig, path)


def plot_feature_maps(image, stages, path, channels=8, title=None):
    """A digit and, row by row, the first `channels` maps of each stage.

    Shapes: image (H, W[, 1]); stages is a list of (name, maps) with maps
    (H', W', C) for one image, e.g. [('conv2d (relu)', (26, 26, 32)), ...].
    """
    rows = len(stages) + 1
    fig, axes = plt.subplots(
        rows, channels, figsize=(1.4 * channels, 1.55 * rows + 0.4), squeeze=False
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    axes[0, 0].imshow(_as_image(image), cmap="binary")
    axes[0, 0].set_title("input", fontsize=9)
    for ax in axes[0, 1:]:
        ax.axis("off")
    for r, (name, maps) in enumerate(stages, start=1):
        maps = np.asarray(maps, dtype=np.float32)
        shown = min(channels, maps.shape[-1])
        for c in range(channels):
            ax = axes[r, c]
            if c >= shown:
                ax.axis("off")
                continue
            ax.imshow(maps[..., c], cmap="viridis")
            if r == 1:
                ax.set_title(f"channel {c}", fontsize=8)
        h, w, total = maps.shape
        axes[r, 0].set_ylabel(
            f"{name}\n{h}x{w}x{total}", fontsize=8, rotation=0, ha="right", va="center"
        )
    fig.suptitle(title or f"Feature maps (first {channels} channels of each stage)")
    fig.tight_layout()
    return _save(fig, path)


def _image_grid(rows, columns, scale=1.3):
    fig, axes = plt.subplots(
        rows, columns, figsize=(scale * columns, scale * rows + 0.6), squeeze=False
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def plot_retrieval(images, labels, queries, neighbours, path):
    """Each query (left column) and its nearest neighbours, wrong labels framed in red.

    Shapes: images (N, H, W[, C]), labels (N,), queries (Q,), neighbours (Q, K) indices.
    """
    k = neighbours.shape[1]
    fig, axes = _image_grid(len(queries), k + 1)
    for r, (q, found) in enumerate(zip(queries, neighbours)):
        axes[r, 0].imshow(_as_image(images[q]), cmap="binary")
        axes[r, 0].set_ylabel(f"query\nlabel {labels[q]}", fontsize=8)
        for c, j in enumerate(found, start=1):
            ax = axes[r, c]
            ax.imshow(_as_image(images[j]), cmap="binary")
            if labels[j] != labels[q]:
                for spine in ax.spines.values():
                    spine.set_color("red")
                    spine.set_linewidth(2)
    fig.suptitle(f"Queries and their {k} most similar test images (other labels in red)")
    fig.tight_layout()
    return _save(fig, path)


def plot_strips(strips, predicted, true, path):
    """Strips of digits with the digits read and the true ones; a wrong strip in red.

    Shapes: strips (N, H, W[, 1]), predicted and true (N, D) digits.
    """
    fig, axes = plt.subplots(len(strips), 1, figsize=(5, 1.25 * len(strips) + 0.5), squeeze=False)
    for ax, strip, p, t in zip(axes[:, 0], strips, predicted, true):
        ax.imshow(_as_image(strip), cmap="binary")
        ax.set_xticks([])
        ax.set_yticks([])
        ok = np.array_equal(p, t)
        ax.set_title(
            f"read {''.join(map(str, p))}   true {''.join(map(str, t))}",
            color="tab:green" if ok else "red",
            fontsize=10,
        )
    fig.suptitle("Strips of test digits, read by the model")
    fig.tight_layout()
    return _save(fig, path)


def plot_super_resolution(rows, titles, path, psnr=None):
    """Columns of images side by side (low resolution, bicubic, ours, original), one row
    per sample; ``psnr`` adds each column's PSNR to its title.

    Shapes: rows (R, C, H_c, W_c[, 1]) as a list of lists of images, titles (C,).
    """
    fig, axes = _image_grid(len(rows), len(titles), scale=1.6)
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            axes[r, c].imshow(_as_image(image), cmap="binary", vmin=0, vmax=1)
            if r == 0:
                title = (
                    titles[c]
                    if psnr is None or psnr[c] is None
                    else f"{titles[c]}\n{psnr[c]:.2f} dB"
                )
                axes[r, c].set_title(title, fontsize=9)
    fig.suptitle("2x super-resolution of test digits")
    fig.tight_layout()
    return _save(fig, path)
