"""Where the images come from: the embedded digits, image folders, tfds.

Small data (CIFAR-sized) is decoded once into uint8 arrays held in memory
(`load_arrays`); large data (ImageNet) is streamed from files with bounded
memory by `zoo.pipeline`, which uses `list_folder` and `tfds_split` here.

Dataset specs, as `--dataset` takes them:
    digits          scikit-learn's bundled 8x8 handwritten digits (1,797
                    real images), scaled to the recipe's input size: the
                    offline default.
    tfds:NAME       a TensorFlow Datasets dataset (cifar10, imagenet2012).
    folder:PATH     PATH/train/<class>/*.jpg and PATH/test/<class>/*.jpg.

Nothing here imports TensorFlow at module level: the in-memory path also
serves the JAX-without-TF backend (folders are decoded with Pillow).
"""

import concurrent.futures
import dataclasses
import os
import pathlib

import numpy as np

DIGITS = "digits"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclasses.dataclass
class ArraySplits:
    """Decoded images (N, H, W, 3) uint8 and labels (N,) int32 per split."""

    train: tuple
    val: tuple
    test: tuple
    classes: list


def parse(spec):
    """Splits a dataset spec into (kind, argument).

    Raises:
        ValueError: for a spec that is not digits, tfds:NAME or folder:PATH.
    """
    if spec == DIGITS:
        return DIGITS, None
    kind, sep, arg = spec.partition(":")
    if sep and arg and kind in ("tfds", "folder"):
        return kind, arg
    raise ValueError(
        f"`--dataset` must be 'digits', 'tfds:NAME' (e.g. tfds:cifar10, "
        f"tfds:imagenet2012) or 'folder:PATH'. Received {spec!r}."
    )


def canonical(spec):
    """`spec` with a folder's path made absolute, `~` expanded, no trailing slash.

    Two spellings of one folder are then one run (and one config.json).

    Raises:
        ValueError: for a spec that `parse` refuses.
    """
    kind, arg = parse(spec)
    if kind == "folder":
        return f"folder:{os.path.abspath(os.path.expanduser(arg))}"
    return spec


def check_source(spec):
    """Cheap checks of a dataset before a run starts: its files are there.

    Raises:
        ValueError: a folder tree that `check_folder` refuses.
        ImportError: a package the dataset needs is missing, naming the extra.
    """
    kind, arg = parse(spec)
    if kind == "folder":
        require("PIL", "pillow", "image folders")
        check_folder(arg)
    elif kind == DIGITS:
        require("sklearn", "scikit-learn", "the digits demo (--dataset=digits)")


def require(module, package, needed_by):
    """Imports `module`, or raises an ImportError that says what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{needed_by} needs the {package} package, which is not installed "
            f"({error}). Install the zoo's extras: pip install \"keras-resnet[zoo]\" "
            f"(from a clone: pip install \".[zoo]\"), or pip install {package}."
        ) from error


def split_train_val(images, labels, val_size, seed):
    """Deterministic seeded split of the training split into train and val.

    Args:
        images, labels: the whole training split.
        val_size: examples held out (the paper's 5k of 50k).
        seed: seeds the permutation.
    """
    n = len(labels)
    if not 0 <= val_size < n:
        raise ValueError(
            f"`val_size` must be in [0, {n}) for a training split of {n} images. "
            f"Received val_size={val_size}."
        )
    order = np.random.default_rng(seed).permutation(n)
    train, val = order[: n - val_size], order[n - val_size :]
    return (images[train], labels[train]), (images[val], labels[val])


def load_arrays(spec, recipe, data_dir=None):
    """Loads a small dataset into memory, decoded once, split train/val/test.

    Args:
        spec: a dataset spec (see the module docstring).
        recipe: the `Recipe`; gives image_size, val_size and seed.
        data_dir: tfds data directory.

    Returns:
        An `ArraySplits` with images at recipe.image_size.
    """
    kind, arg = parse(spec)
    size = recipe.image_size
    if kind == DIGITS:
        (x, y), test, classes = _digits(size, recipe.seed)
    elif kind == "folder":
        classes = check_folder(arg)
        x, y = _decode_folder(pathlib.Path(arg) / "train", classes, size)
        test = _decode_folder(pathlib.Path(arg) / "test", classes, size)
    else:
        (x, y), test, classes = _tfds_arrays(arg, data_dir, size)
    train, val = split_train_val(x, y, recipe.val_size, recipe.seed)
    return ArraySplits(train=train, val=val, test=test, classes=classes)


def _digits(size, seed):
    """scikit-learn's 8x8 digits as RGB 0..255 images of size x size.

    Each 8x8 image (values 0..16) is upsampled by the largest integer
    factor that fits (nearest neighbour), zero-padded to `size`, and
    repeated over 3 channels. A seeded 80/20 split gives train and test.
    """
    load_digits = require("sklearn.datasets", "scikit-learn", "the digits demo").load_digits
    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    factor = max(1, size // 8)
    images = images.repeat(factor, axis=1).repeat(factor, axis=2)[: , :size, :size]
    pad_lo = (size - images.shape[1]) // 2
    pad_hi = size - images.shape[1] - pad_lo
    images = np.pad(images, ((0, 0), (pad_lo, pad_hi), (pad_lo, pad_hi)))
    images = np.repeat(images[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int32)
    order = np.random.default_rng(seed + 1).permutation(len(labels))
    n_test = len(labels) // 5
    test, train = order[:n_test], order[n_test:]
    classes = [str(c) for c in range(10)]
    return (images[train], labels[train]), (images[test], labels[test]), classes


def class_names(spec, data_dir=None):
    """The class names of a dataset, index = label, without loading its images."""
    kind, arg = parse(spec)
    if kind == DIGITS:
        return [str(c) for c in range(10)]
    if kind == "folder":
        return check_folder(arg)
    tfds = require("tensorflow_datasets", "tensorflow-datasets", f"--dataset={spec}")
    return list(tfds.builder(arg, data_dir=data_dir).info.features["label"].names)


def check_folder(root):
    """Checks an image-folder tree and returns its sorted class names.

    Raises:
        ValueError: if train/ or test/ is missing, a class folder is empty,
            or the two splits have different class folders.
    """
    root = pathlib.Path(root)
    found = {}
    for split in ("train", "test"):
        folder = root / split
        if not folder.is_dir():
            raise ValueError(
                f"Image folder {root} has no {split}/ directory; expected "
                f"{root}/train/<class>/*.jpg and {root}/test/<class>/*.jpg."
            )
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not classes:
            raise ValueError(f"{folder} has no class folders.")
        for name in classes:
            if not _image_files(folder / name):
                raise ValueError(
                    f"Class folder {folder / name} holds no images (looked for {IMAGE_SUFFIXES})."
                )
        found[split] = classes
    if found["train"] != found["test"]:
        only_train = sorted(set(found["train"]) - set(found["test"]))
        only_test = sorted(set(found["test"]) - set(found["train"]))
        raise ValueError(
            f"The class folders of {root}/train and {root}/test differ: only in "
            f"train: {only_train}; only in test: {only_test}."
        )
    return found["train"]


def list_folder(folder, classes):
    """(paths, labels) of every image under folder/<class>/, sorted."""
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = _image_files(pathlib.Path(folder) / name)
        paths += [str(f) for f in files]
        labels += [label] * len(files)
    return paths, np.asarray(labels, np.int32)


def _image_files(folder):
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _decode_folder(folder, classes, size):
    paths, labels = list_folder(folder, classes)
    workers = min(8, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        images = list(pool.map(lambda p: decode_file(p, size), paths, chunksize=256))
    return np.stack(images), labels


def decode_file(path, size):
    """Decodes one image file to (size, size, 3) uint8 RGB with Pillow.

    Raises:
        ValueError: naming the file, if it cannot be read or decoded.
    """
    Image = require("PIL.Image", "pillow", "image folders")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
            return np.asarray(image, np.uint8)
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"Cannot decode image file {path}: {error}") from error


def _tfds_arrays(name, data_dir, size):
    """A small tfds dataset (e.g. cifar10) as arrays; downloads if needed."""
    import tensorflow as tf

    tfds = require("tensorflow_datasets", "tensorflow-datasets", f"--dataset=tfds:{name}")
    # tfds.load downloads and prepares the dataset on first use.
    splits, info = tfds.load(
        name, split=["train", "test"], data_dir=data_dir, as_supervised=True, with_info=True
    )
    arrays = []
    for split in splits:
        # Batches of 10k rather than batch_size=-1, which needs split sizes
        # (absent under tfds.testing.mock_data).
        parts = [(np.asarray(x), np.asarray(y)) for x, y in tfds.as_numpy(split.batch(10000))]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts]).astype(np.int32)
        if images.shape[1:3] != (size, size):
            images = np.asarray(tf.cast(tf.image.resize(images, (size, size)), tf.uint8))
        arrays.append((images.astype(np.uint8), labels))
    classes = info.features["label"].names
    return arrays[0], arrays[1], list(classes)


def load_test(spec, size, data_dir=None, seed=0):
    """The test split alone, decoded: (images uint8 (N, size, size, 3), labels, classes).

    Args:
        spec: a dataset spec (see the module docstring).
        size: image side.
        data_dir: tfds data directory.
        seed: the digits' train/test split seed (a recipe's `seed`).
    """
    kind, arg = parse(spec)
    if kind == DIGITS:
        _, (images, labels), classes = _digits(size, seed)
    elif kind == "folder":
        classes = check_folder(arg)
        images, labels = _decode_folder(pathlib.Path(arg) / "test", classes, size)
    else:
        _, (images, labels), classes = _tfds_arrays(arg, data_dir, size)
    return images, labels, classes
