"""Fashion-MNIST (Zalando), as ``keras.datasets.fashion_mnist.load_data()`` returns it.

60,000 training and 10,000 test 28x28 grayscale images of 10 kinds of clothing
(:data:`CLASS_NAMES`), in the same four IDX files as MNIST, under the same
names. Where the data come from (first match wins):

1. ``path`` given to :func:`load_data`: a folder holding the four files, or a
   folder holding a ``fashion_mnist/`` subfolder with them (Debian's
   ``dataset-fashion-mnist`` package puts them in
   ``/usr/share/datasets/fashion-mnist``);
2. ``$XPCNN_DATA_DIR/fashion_mnist``;
3. the user cache, ``$XDG_CACHE_HOME/xpcnn/fashion_mnist`` (default
   ``~/.cache/xpcnn/fashion_mnist``).

Missing files are downloaded into that folder from :data:`MIRRORS` (Keras's
URL first). Every file must match its published SHA-256 (:data:`SHA256`) or,
for a local file, hold the same data gzipped differently
(:data:`CONTENT_SHA256`: Debian's package strips the gzip header's file name
and time); downloads are written atomically. MNIST's files, which have the
same names, are reported as MNIST's.

Errors are those of :func:`engine.datasets.mnist.load_data`.
"""

from __future__ import annotations

import os

from engine.datasets import DatasetNotFoundError, files, idx

__all__ = ["CLASS_NAMES", "CONTENT_SHA256", "MIRRORS", "SHA256", "TITLE", "load_data"]

TITLE = "Fashion-MNIST"

#: Label i is CLASS_NAMES[i] (Keras's table).
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: SHA-256 of the published files (zalandoresearch/fashion-mnist; their MD5s are in its README).
SHA256 = {
    idx.TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    idx.TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    idx.TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    idx.TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}

#: SHA-256 of the same files decompressed. Computed from Debian's copies, whose deflate
#: streams are the published ones: restoring the stripped header reproduces SHA256.
CONTENT_SHA256 = {
    idx.TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    idx.TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    idx.TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    idx.TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: Tried in order: Keras's copy, then Zalando's repository.
MIRRORS = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)


def load_data(path: str | os.PathLike | None = None):
    """Load Fashion-MNIST.

    Args:
        path: optional data folder (see the module docstring); ``None`` uses
            ``$XPCNN_DATA_DIR/fashion_mnist`` or the cache.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, all ``uint8``:
        ``x_train`` (60000, 28, 28), ``y_train`` (60000,),
        ``x_test`` (10000, 28, 28), ``y_test`` (10000,). Pixels are 0..255,
        labels 0..9 (:data:`CLASS_NAMES`). The arrays are writable and own
        their memory.

    Raises:
        DatasetNotFoundError: files missing and not downloadable.
        WrongDatasetError: a file is another dataset's (e.g. MNIST's).
        DatasetCorruptError: a file fails its checksum or is malformed.
    """
    if path is not None and os.path.isfile(path):
        raise DatasetNotFoundError(
            f"{path}: expected a folder holding the four Fashion-MNIST files"
        )
    folder = files.resolve_folder("fashion_mnist", path, idx.IDX_FILES)
    return idx.load_idx_folder(folder, "fashion_mnist")
