"""Datasets, loaded the way ``keras.datasets`` loads them.

    from engine.datasets import mnist  # noqa: E402
    (x_train, y_train), (x_test, y_test) = mnist.load_data()

Every loading problem raises a subclass of :class:`DatasetError`:

* :class:`DatasetNotFoundError` (also a ``FileNotFoundError``): the files are
  not there and could not be downloaded;
* :class:`DatasetCorruptError` (also a ``ValueError``): a file is there but is
  wrong: checksum mismatch, truncated, bad header, inconsistent arrays;
* :class:`WrongDatasetError` (a :class:`DatasetCorruptError`): a file is a
  valid file of another known dataset (Fashion-MNIST's files given to MNIST);

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


# Imported last: the dataset modules import the error classes above from here.
from engine.datasets import cifar10, fashion_mnist, mnist  # noqa: E402

__all__ = [
    "DatasetCorruptError",
    "DatasetError",
    "DatasetNotFoundError",
    "WrongDatasetError",
    "cifar10",
    "fashion_mnist",
    "mnist",
]
