"""Datasets, loaded the way ``keras.datasets`` loads them, and a user's own images.

    from engine.datasets import mnist  # noqa: E402
    (x_train, y_train), (x_test, y_test) = mnist.load_data()

Every loading problem raises a subclass of :class:`DatasetError`:

* :class:`DatasetNotFoundError` (also a ``FileNotFoundError``): the files are
  not there and could not be downloaded;
* :class:`DatasetCorruptError` (also a ``ValueError``): a file is there but is
  wrong: checksum mismatch, truncated, bad header, inconsistent arrays;
* :class:`WrongDatasetError` (a :class:`DatasetCorruptError`): a file is a
  valid file of another known dataset (Fashion-MNIST's files given to MNIST);
* :class:`DatasetDependencyError` (also an ``ImportError``): an optional
  package the loader needs (Pillow, for images) is not installed.

The message always names the file or folder and says what to do about it.
"""


class DatasetError(Exception):
    """Base class of all dataset loading errors."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """Dataset files are missing and could not be downloaded."""


class DatasetCorruptError(DatasetError, ValueError):
    """A dataset file exists but its content is wrong (checksum, truncation, format)."""


class WrongDatasetError(DatasetCorruptError):
    """A dataset file is intact but belongs to another known dataset."""


class DatasetDependencyError(DatasetError, ImportError):
    """An optional package needed to load the data is not installed."""


# Imported last: the dataset modules import the error classes above from here.
from engine.datasets import cifar10, fashion_mnist, mnist  # noqa: E402
from engine.datasets.image_dataset import image_dataset_from_directory  # noqa: E402

__all__ = [
    "DatasetCorruptError",
    "DatasetDependencyError",
    "DatasetError",
    "DatasetNotFoundError",
    "WrongDatasetError",
    "cifar10",
    "fashion_mnist",
    "image_dataset_from_directory",
    "mnist",
]
