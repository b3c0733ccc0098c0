"""A user's own images, one folder per class, as ``keras.utils.image_dataset_from_directory``.

    main_directory/
        class_a/  a_image_1.jpg  a_image_2.jpg ...
        class_b/  b_image_1.jpg ...

    train = image_dataset_from_directory("main_directory", image_size=(64, 64),
                                         validation_split=0.2, subset="training", seed=1)
    train.class_names     # ['class_a', 'class_b']
    images, labels = train[0]   # float32 (32, 64, 64, 3), int32 (32,)

Files are found and split exactly as Keras does (same order, same shuffle for
the same seed, so the same training and validation files); the images are
decoded with Pillow and resized as Keras's JAX backend resizes them
(:mod:`engine.datasets.image_resize`). The result is not a ``tf.data.Dataset``
but an :class:`ImageDataset`, which follows Keras's ``PyDataset`` convention:
``len(ds)`` batches, ``ds[i]`` reads batch ``i`` from disk, ``ds.on_epoch_end()``
reshuffles. Pillow is an optional dependency: ``pip install 'xpcnn[images]'``.
"""

from __future__ import annotations

import math
import os

import numpy as np

from engine import utils
from engine.datasets import DatasetCorruptError, DatasetDependencyError, DatasetNotFoundError
from engine.datasets.image_resize import INTERPOLATIONS, resize

__all__ = ["ALLOWLIST_FORMATS", "ImageDataset", "image_dataset_from_directory", "load_image"]

#: The file extensions Keras indexes (compared lower-cased). Animated GIFs give their first frame.
ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
_LABEL_MODES = ("int", "categorical", "binary", None)
# Accepted by Keras's TensorFlow path only; its JAX backend refuses them too.
_UNSUPPORTED_INTERPOLATIONS = ("area", "gaussian", "mitchellcubic")


def image_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    color_mode="rgb",
    batch_size=32,
    image_size=(256, 256),
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    interpolation="bilinear",
    follow_links=False,
    crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False,
    data_format=None,
    verbose=True,
):
    """Batches of images (and labels) streamed from the image files under ``directory``.

    Args (Keras's names and defaults):
        directory: with ``labels="inferred"``, a folder holding one subfolder
            per class (searched recursively); otherwise any folder.
        labels: ``"inferred"`` (from the subfolders), ``None`` (images only),
            or a list/tuple of one int per file, in the order of the sorted
            file paths (``os.walk`` order, as Keras).
        label_mode: ``"int"`` (int32 (B,)), ``"categorical"`` (float32 one-hot
            (B, classes)), ``"binary"`` (float32 (B, 1), exactly 2 classes) or
            ``None`` (images only).
        class_names: with ``labels="inferred"``, the subfolders to use and
            their order (default: all, sorted).
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"``: 1, 3 or 4 channels.
        batch_size: images per batch, or ``None`` for single samples.
        image_size: ``(height, width)`` (or one int) every image is resized to.
        shuffle: shuffle the files (reshuffled every epoch); ``False`` keeps
            them sorted.
        seed: shuffling seed; required with ``validation_split`` and shuffling,
            so that both subsets see the same shuffle.
        validation_split: fraction of the files kept for validation (the last
            ones after shuffling).
        subset: ``"training"``, ``"validation"`` or ``"both"`` (a pair of
            datasets); only with ``validation_split``.
        interpolation: one of ``"bilinear"``, ``"nearest"``, ``"bicubic"``,
            ``"lanczos3"``, ``"lanczos5"``.
        follow_links: also walk into symlinked subfolders.
        crop_to_aspect_ratio: crop to the target aspect ratio before resizing.
        pad_to_aspect_ratio: pad (with 0) to the target aspect ratio instead.
        data_format: ``None`` or ``"channels_last"`` (xpcnn is channels-last).
        verbose: print how many files and classes were found.

    Returns:
        An :class:`ImageDataset` (two for ``subset="both"``: training, validation).

    Raises:
        DatasetNotFoundError: no such folder, or no image files in it.
        DatasetDependencyError: Pillow is not installed.
        ValueError: a bad argument (named, with its value).
    """
    _pillow()  # fail now, not at the first batch
    num_channels, image_size, interpolation = _check_arguments(
        labels,
        label_mode,
        class_names,
        color_mode,
        batch_size,
        image_size,
        interpolation,
        crop_to_aspect_ratio,
        pad_to_aspect_ratio,
        data_format,
    )
    _check_split(validation_split, subset, shuffle, seed)
    if labels is None or label_mode is None:
        labels = label_mode = None
    if seed is None:
        seed = np.random.randint(1e6)  # as Keras: reproducible under set_random_seed
    directory = os.fspath(directory)
    inferred = labels == "inferred"
    file_paths, labels, class_names = _index_directory(
        directory, labels, class_names, follow_links, verbose
    )
    if not file_paths:
        where = " (one subfolder per class)" if inferred else ""
        raise DatasetNotFoundError(
            f"No images found in directory {directory}{where}. Allowed formats: {ALLOWLIST_FORMATS}"
        )
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(
            f'label_mode="binary" needs exactly 2 classes, got class_names={class_names}.'
        )
    if label_mode == "categorical" and labels is not None and len(labels):
        if labels.max() >= len(class_names):
            raise ValueError(
                f'label_mode="categorical" one-hot encodes labels 0..{len(class_names) - 1} '
                f"(one per class in {class_names}), got label {labels.max()}."
            )
    if shuffle:  # Keras's global shuffle, the same permutation for paths and labels
        order = np.arange(len(file_paths))
        np.random.RandomState(seed).shuffle(order)
        file_paths = [file_paths[i] for i in order]
        labels = labels[order] if labels is not None else None
    settings = dict(
        class_names=class_names,
        label_mode=label_mode,
        batch_size=batch_size,
        image_size=image_size,
        num_channels=num_channels,
        interpolation=interpolation,
        crop_to_aspect_ratio=crop_to_aspect_ratio,
        pad_to_aspect_ratio=pad_to_aspect_ratio,
        seed=seed,
    )
    if subset == "both":  # as Keras: the validation subset is not shuffled per epoch
        parts = (("training", shuffle), ("validation", False))
        return tuple(
            ImageDataset(
                *_split(file_paths, labels, validation_split, part, verbose),
                shuffle=part_shuffle,
                **settings,
            )
            for part, part_shuffle in parts
        )
    file_paths, labels = _split(file_paths, labels, validation_split, subset, verbose)
    return ImageDataset(file_paths, labels, shuffle=shuffle, **settings)


class ImageDataset:
    """Batches of (images, labels) read from image files, by Keras's ``PyDataset`` rules.

    ``len(ds)`` is the number of batches; ``ds[i]`` decodes, converts and
    resizes batch ``i``'s files and returns ``(images, labels)``, or only the
    images when there are no labels:

        images  float32 (B, height, width, channels), pixel values 0..255
        labels  int32 (B,) | float32 one-hot (B, classes) | float32 (B, 1)

    With ``batch_size=None`` the items are single samples (no batch axis).
    Iterating ``for images, labels in ds`` gives one epoch, every file once.
    With ``shuffle`` each :meth:`on_epoch_end` (fit calls it) draws a new
    order from ``(seed, epoch)``; the first epoch follows :attr:`file_paths`.

    Attributes:
        file_paths: the files, in the first epoch's order.
        labels: their int32 labels (None without labels).
        class_names: the class names, label i being class_names[i] (None
            without labels).
    """

    def __init__(
        self,
        file_paths,
        labels,
        *,
        class_names,
        label_mode,
        batch_size,
        image_size,
        num_channels,
        interpolation,
        crop_to_aspect_ratio,
        pad_to_aspect_ratio,
        shuffle,
        seed,
    ):
        self.file_paths = list(file_paths)
        self.labels = labels
        self.class_names = class_names if labels is not None else None
        self.label_mode = label_mode
        self.batch_size = batch_size
        self.image_size = image_size
        self.num_channels = num_channels
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.pad_to_aspect_ratio = pad_to_aspect_ratio
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._order = np.arange(len(self.file_paths))

    def __len__(self):
        if self.batch_size is None:
            return len(self.file_paths)
        return math.ceil(len(self.file_paths) / self.batch_size)

    @property
    def num_batches(self):
        """``len(self)``, as Keras's PyDataset names it."""
        return len(self)

    def __getitem__(self, index):
        if not utils.is_int(index):
            raise TypeError(f"ImageDataset indices must be ints, got {index!r}.")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"batch index {index} out of range for {n} batches")
        index = int(index) % n
        if self.batch_size is None:
            i = self._order[index]
            image = self._load(self.file_paths[i])
            return image if self.labels is None else (image, self._encode(self.labels[i]))
        picks = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        images = np.empty((len(picks), *self.image_size, self.num_channels), np.float32)
        for k, i in enumerate(picks):  # one file per step: decoding is Pillow's work
            images[k] = self._load(self.file_paths[i])
        return images if self.labels is None else (images, self._encode(self.labels[picks]))

    def on_epoch_end(self):
        """Start the next epoch: with ``shuffle``, a new order of the files."""
        self.epoch += 1
        if self.shuffle:
            self._order = np.random.default_rng([self.seed, self.epoch]).permutation(
                len(self.file_paths)
            )

    def __repr__(self):
        classes = f", {len(self.class_names)} classes" if self.class_names else ""
        return (
            f"<ImageDataset: {len(self.file_paths)} files{classes}, {len(self)} batches of "
            f"{self.batch_size} images {self.image_size[0]}x{self.image_size[1]}"
            f"x{self.num_channels}>"
        )

    def _encode(self, labels):
        if self.label_mode == "categorical":
            return np.eye(len(self.class_names), dtype=np.float32)[labels]
        if self.label_mode == "binary":
            return np.asarray(labels, np.float32)[..., None]
        return np.asarray(labels, np.int32)

    def _load(self, path):
        return load_image(
            path,
            self.num_channels,
            self.image_size,
            self.interpolation,
            self.crop_to_aspect_ratio,
            self.pad_to_aspect_ratio,
        )


def load_image(
    path,
    num_channels,
    image_size,
    interpolation="bilinear",
    crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False,
):
    """One image file as float32 (height, width, num_channels), as Keras's loader makes it:
    Pillow decodes and converts it (to "L", "RGB" or "RGBA"; 16- and 32-bit grayscale
    stay as they are), then it is resized in float32.

    Raises:
        DatasetNotFoundError: the file is gone.
        DatasetCorruptError: Pillow cannot read it.
    """
    image_module = _pillow()
    try:
        with image_module.open(path) as img:
            img.load()  # decode now, so a truncated file fails here
            if num_channels == 1 and img.mode not in ("L", "I;16", "I"):
                img = img.convert("L")
            elif num_channels == 3 and img.mode != "RGB":
                img = img.convert("RGB")
            elif num_channels == 4 and img.mode != "RGBA":
                img = img.convert("RGBA")
            pixels = np.asarray(img, dtype=np.float32)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file (was it removed?)") from None
    except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as e:
        # SyntaxError: some of Pillow's decoders report a malformed file with it.
        raise DatasetCorruptError(
            f"{path}: cannot be read as an image ({e}); replace it or remove it from the folder"
        ) from e
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return resize(pixels, image_size, interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio)


def _pillow():
    """Pillow's ``PIL.Image``, or a DatasetDependencyError saying how to install it."""
    try:
        from PIL import Image
    except ImportError as e:
        raise DatasetDependencyError(
            "image_dataset_from_directory decodes images with Pillow, which is not "
            "installed: pip install 'xpcnn[images]' (or pip install Pillow)"
        ) from e
    return Image


def _check_arguments(
    labels,
    label_mode,
    class_names,
    color_mode,
    batch_size,
    image_size,
    interpolation,
    crop_to_aspect_ratio,
    pad_to_aspect_ratio,
    data_format,
):
    """Keras's argument checks; returns (num_channels, image_size pair, interpolation)."""
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                'labels must be "inferred", None, or a list/tuple of one int label per '
                f"file, got labels={labels!r}."
            )
        if not all(utils.is_int(v) and v >= 0 for v in labels):
            raise ValueError(f"labels must be non-negative ints, got labels={labels!r}.")
        if class_names:
            raise ValueError(
                'class_names can only be given with labels="inferred", got '
                f"labels={labels!r} and class_names={class_names!r}."
            )
    if class_names is not None:
        if labels is None:
            raise ValueError(f"class_names cannot be given with labels=None: {class_names!r}.")
        if not isinstance(class_names, (list, tuple)) or not all(
            isinstance(c, str) for c in class_names
        ):
            raise ValueError(f"class_names must be a list of folder names, got {class_names!r}.")
    if label_mode not in _LABEL_MODES:
        raise ValueError(f"label_mode must be one of {_LABEL_MODES}, got {label_mode!r}.")
    if color_mode not in _CHANNELS:
        raise ValueError(f"color_mode must be one of {tuple(_CHANNELS)}, got {color_mode!r}.")
    if batch_size is not None:
        utils.positive_int(batch_size, "batch_size")
    size = utils.as_pair(image_size, "image_size")
    if not isinstance(interpolation, str):
        raise ValueError(f"interpolation must be a string, got {interpolation!r}.")
    method = interpolation.lower()
    if method in _UNSUPPORTED_INTERPOLATIONS:
        raise ValueError(
            f"interpolation={interpolation!r} is not supported (Keras's JAX backend lacks it "
            f"too); use one of {INTERPOLATIONS}."
        )
    if method not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}.")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("Only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True.")
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f'data_format must be None or "channels_last" (xpcnn is channels-last), '
            f"got {data_format!r}."
        )
    return _CHANNELS[color_mode], size, method


def _check_split(validation_split, subset, shuffle, seed):
    """Keras's check_validation_split_arg."""
    if validation_split is not None and (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float))
        or (validation_split and not 0 < validation_split < 1)
    ):
        raise ValueError(
            f"validation_split must be a float between 0 and 1, got {validation_split!r}."
        )
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError(
            "subset and validation_split go together: got "
            f"validation_split={validation_split!r}, subset={subset!r}."
        )
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'subset must be "training", "validation" or "both", got {subset!r}.')
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "With validation_split and shuffle=True, give a seed, so that the training "
            "and validation subsets come from the same shuffle and do not overlap."
        )
    if seed is not None and not utils.is_int(seed):
        raise ValueError(f"seed must be an int or None, got {seed!r}.")


def _index_directory(directory, labels, class_names, follow_links, verbose):
    """(file paths, int32 labels or None, class names) in Keras's order: class folders
    sorted (or as ``class_names``), then ``os.walk`` roots sorted, then file names sorted."""
    if not os.path.isdir(directory):
        raise DatasetNotFoundError(f"{directory}: no such folder")
    if labels == "inferred":
        subdirs = [
            d
            for d in sorted(os.listdir(directory))
            if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")
        ]
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise ValueError(
                    f"class_names {list(class_names)} must name subfolders of {directory}; "
                    f"it has {subdirs}."
                )
            subdirs = list(class_names)
    else:
        subdirs = [""]  # explicit or no labels: every file under directory
    file_paths, file_labels = [], []
    for label, subdir in enumerate(subdirs):
        walk = os.walk(os.path.join(directory, subdir), followlinks=follow_links)
        for root, _, names in sorted(walk, key=lambda entry: entry[0]):
            for name in sorted(names):
                if name.lower().endswith(ALLOWLIST_FORMATS):
                    file_paths.append(os.path.join(root, name))
                    file_labels.append(label)
    if labels == "inferred":
        labels = np.asarray(file_labels, np.int32)
        class_names = subdirs
    elif labels is not None:
        if len(labels) != len(file_paths):
            raise ValueError(
                f"labels has {len(labels)} entries but {directory} holds "
                f"{len(file_paths)} image files; give one label per file."
            )
        class_names = [str(v) for v in sorted(set(labels))]
        labels = np.asarray(labels, np.int32)
    if labels is None:
        class_names = None
    if verbose:
        if labels is None:
            print(f"Found {len(file_paths)} files.")
        else:
            print(f"Found {len(file_paths)} files belonging to {len(class_names)} classes.")
    return file_paths, labels, class_names


def _split(file_paths, labels, validation_split, subset, verbose):
    """Keras's split: the last ``int(validation_split * n)`` files are the validation set
    (never all: validation_split < 1)."""
    if not validation_split:
        return file_paths, labels
    num_val = int(validation_split * len(file_paths))
    if num_val == 0:
        raise ValueError(
            f"validation_split={validation_split} of {len(file_paths)} files leaves no file "
            "for validation; use a larger validation_split or more files."
        )
    if subset == "training":
        if verbose:
            print(f"Using {len(file_paths) - num_val} files for training.")
        return file_paths[:-num_val], None if labels is None else labels[:-num_val]
    if verbose:
        print(f"Using {num_val} files for validation.")
    return file_paths[-num_val:], None if labels is None else labels[-num_val:]
