"""Where the images come from: the embedded digits, image folders, tfds.

Small data (CIFAR-sized) is decoded once into uint8 arrays held in memory
(`load_arrays`); large data (ImageNet) is streamed from files with bounded
memory by `zoo.pipeline`, which uses `list_folder` and `tfds_split` here.

Dataset specs, as `--dataset` takes them (`parse` takes one apart into a
`Dataset`, once, where it enters: every other function receives that):
    digits          scikit-learn's bundled 8x8 handwritten digits (1,797
                    real images), scaled to the recipe's input size: the
                    offline default.
    paper           the recipe's own data (`Recipe.dataset`, what the paper
                    trained on: tfds:cifar10 or tfds:imagenet2012).
    tfds:NAME       a TensorFlow Datasets dataset (cifar10, imagenet2012).
    folder:PATH     PATH/train/<class>/*.jpg and PATH/test/<class>/*.jpg.

Nothing here imports TensorFlow at module level: the in-memory path also
serves the JAX-without-TF backend (folders are decoded with Pillow).
"""

import concurrent.futures
import dataclasses
import os
import pathlib
import typing

import numpy as np

from keras_resnet import images as image_files

DIGITS = "digits"
FOLDER = "folder"
TFDS = "tfds"
# The recipe's own data (Recipe.dataset): what the paper trained on.
PAPER = "paper"
IMAGE_SUFFIXES = image_files.IMAGE_SUFFIXES


@dataclasses.dataclass
class ArraySplits:
    """Decoded images (N, H, W, 3) uint8 and labels (N,) int32 per split."""

    train: tuple
    val: tuple
    test: tuple
    classes: list


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset spec taken apart once (`parse`): what the zoo's modules pass around.

    `str(dataset)` is the spec again, in its one spelling (what config.json
    records): two spellings of one folder are one `Dataset`. `kind, arg =
    dataset` unpacks it.

    Attributes:
        kind: DIGITS, FOLDER or TFDS.
        arg: FOLDER: the folder's absolute path (`~` expanded, no trailing
            slash); TFDS: the dataset's name; DIGITS: None.
    """

    kind: str
    arg: typing.Optional[str] = None

    def __str__(self):
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"

    def __iter__(self):
        return iter((self.kind, self.arg))


def parse(spec, recipe=None):
    """The `Dataset` a spec names: the one place a spec string is taken apart.

    Args:
        spec: "digits", "folder:PATH", "tfds:NAME", "paper" (the recipe's
            own data, `Recipe.dataset`), or a `Dataset` (returned as it is).
        recipe: the `Recipe` whose data "paper" means.

    Raises:
        ValueError: naming the spec received and the valid ones.
    """
    if isinstance(spec, Dataset):
        return spec
    if spec == PAPER:
        if recipe is None:
            raise ValueError("'paper' is a recipe's own data: parse it with the recipe (`parse(spec, recipe)`).")
        return parse(recipe.dataset)
    if spec == DIGITS:
        return Dataset(DIGITS)
    kind, sep, arg = spec.partition(":") if isinstance(spec, str) else (None, "", "")
    if sep and arg and kind == FOLDER:
        return Dataset(FOLDER, os.path.abspath(os.path.expanduser(arg)))
    if sep and arg and kind == TFDS:
        return Dataset(TFDS, arg)
    raise ValueError(
        f"`--dataset` must be 'digits', 'paper' (the recipe's own data), 'tfds:NAME' (e.g. "
        f"tfds:cifar10, tfds:imagenet2012) or 'folder:PATH'. Received {spec!r}."
    )


def checked(dataset):
    """`dataset` if it is a `Dataset`; what every function here takes, never a spec string.

    Raises:
        TypeError: naming what was received and how to make one (`parse`).
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"zoo.datasets takes a Dataset: parse the spec once where it enters, e.g. "
            f"datasets.parse({dataset!r}). Received {dataset!r} of type {type(dataset).__name__}."
        )
    return dataset


def check_source(dataset, data_dir=None):
    """Cheap checks of a dataset before a run starts: its files are there.

    Args:
        dataset: a `Dataset`.
        data_dir: tfds data directory.

    Raises:
        ValueError: a folder tree that `check_folder` refuses; a tfds
            dataset that is unknown, or not prepared and not downloadable.
        ImportError: a package the dataset needs is missing, naming the extra.
    """
    kind, arg = checked(dataset)
    if kind == FOLDER:
        require("PIL", "pillow", "image folders")
        check_folder(arg)
    elif kind == DIGITS:
        require("sklearn", "scikit-learn", "the digits demo (--dataset=digits)")
    else:
        tfds_builder(arg, data_dir)


def tfds_builder(name, data_dir=None):
    """The tfds builder of dataset `name`; a clear error for an unknown name."""
    tfds = require("tensorflow_datasets", "tensorflow-datasets", f"--dataset=tfds:{name}")
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"--dataset=tfds:{name}: {first}") from None


def tfds_load(name, data_dir=None, manual_dir=None, **kwargs):
    """`tfds.load(name, ...)`, failing fast where tfds would download and cannot.

    A dataset not prepared in `data_dir` is downloaded by tfds, which
    retries an unreachable host for minutes before raising requests'
    ConnectionError. Here each download host first gets one request with a
    timeout (`check_downloadable`).

    Args:
        name, data_dir, kwargs: as `tfds.load` takes them.
        manual_dir: where tfds looks for files downloaded by hand; default
            DATA_DIR/downloads/manual.
    """
    tfds = require("tensorflow_datasets", "tensorflow-datasets", f"--dataset=tfds:{name}")
    try:
        return tfds.load(name, data_dir=data_dir, download=False, **kwargs)
    except AssertionError:  # "could not find data": not prepared yet.
        check_downloadable(tfds_builder(name, data_dir), manual_dir)
    return tfds.load(name, data_dir=data_dir, **kwargs)


# How long a download host may take to answer before a dataset counts as
# not downloadable.
TFDS_PROBE_TIMEOUT_S = 10


def check_downloadable(builder, manual_dir=None):
    """Raises, saying what to do offline, unless tfds can get the builder's files.

    Nothing to check for a dataset that needs a manual download (tfds then
    says which files), or whose files are all in the manual folder.

    Raises:
        ValueError: a download host that does not answer, naming the files
            and where to put them.
    """
    if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        return
    root = pathlib.Path(builder.data_dir).parents[1]  # DATA_DIR/NAME/VERSION
    manual = pathlib.Path(manual_dir) if manual_dir else root / "downloads" / "manual"
    needed = {
        url: info.filename or url.rsplit("/", 1)[-1]
        for url, info in tfds_downloads(builder).items()
        if not (info.filename and (manual / info.filename).exists())
    }
    for url in needed:
        problem = _unreachable(url)
        if problem:
            files = ", ".join(f"{f} (from {u})" for u, f in needed.items())
            raise ValueError(
                f"--dataset=tfds:{builder.name} is not prepared in {root}, and tfds cannot "
                f"download it: {url} does not answer ({problem}). Offline, put {files} into "
                f"{manual} and pass --data_dir={root} (or prepare the dataset on a machine "
                "with internet and copy its folder there); or train on an image folder with "
                "--dataset=folder:PATH."
            )


def tfds_downloads(builder):
    """{url: tfds UrlInfo} of the files a tfds builder downloads."""
    return dict(builder.url_infos or {})


def _unreachable(url):
    """Why `url` cannot be fetched (one request, no retries), or None if it answers."""
    import requests  # tfds's own dependency; it honours the proxy settings.

    try:
        with requests.head(url, timeout=TFDS_PROBE_TIMEOUT_S, allow_redirects=True):
            return None  # Any answer, even an error status: the host is there.
    except requests.RequestException as error:
        return f"{type(error).__name__}: {error}"[:300]


def require(module, package, needed_by):
    """Imports `module`, or raises an ImportError that says what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{needed_by} needs the {package} package, which is not installed "
            f"({error}). Install the zoo's extras: pip install \"keras-resnet-zoo[zoo]\" "
            f"(from a clone: pip install \".[zoo]\"), or pip install {package}."
        ) from error


def split_train_val(images, labels, val_size, seed):
    """Deterministic seeded split of the training split into train and val.

    Args:
        images, labels: the whole training split.
        val_size: examples held out (the paper's 5k of 50k).
        seed: seeds the permutation.
    """
    train, val = train_val_indices(len(labels), val_size, seed)
    return (images[train], labels[train]), (images[val], labels[val])


def train_val_indices(n, val_size, seed):
    """(train, val) index arrays of a seeded split of n training examples."""
    if not 0 <= val_size < n:
        raise ValueError(
            f"`val_size` must be in [0, {n}) for a training split of {n} images. "
            f"Received val_size={val_size}."
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[: n - val_size], order[n - val_size :]


def balanced_sample(labels, count, seed=0):
    """`count` indices into `labels`: a seeded sample with as many of each class as can be.

    The classes take turns, in a seeded order each round, each giving its
    next image in a seeded order, until `count` are drawn: every class then
    has the same number of images, give or take one (a class with fewer
    images gives all it has). The same labels, count and seed give the same
    sample.

    Args:
        labels: (N,) int labels of the images to sample from.
        count: how many to draw; all N if count >= N.
        seed: seeds the sample.

    Returns:
        The chosen indices, sorted (int64).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen = []
    for turn in range(max((len(m) for m in members), default=0)):
        if len(chosen) >= count:
            break
        chosen += [members[k][turn] for k in rng.permutation(len(members)) if turn < len(members[k])]
    return np.sort(np.asarray(chosen[:count], np.int64))


@dataclasses.dataclass
class Pool:
    """A small dataset decoded once, before any seed splits it.

    `images`, `labels`: (N, H, W, 3) uint8 and (N,) int32, every image a
    seed's train and val splits are drawn from; `test`: (images, labels),
    or None where the test split is drawn by the seed too (the digits).
    """

    images: np.ndarray
    labels: np.ndarray
    test: typing.Optional[tuple]
    classes: list


@dataclasses.dataclass
class SplitIndices:
    """A seed's split of a `Pool`: train and val as indices into its images."""

    train: np.ndarray
    val: np.ndarray
    test: tuple


def decode(dataset, size, data_dir=None):
    """Decodes a small `Dataset` (digits, folder:, tfds:) into a `Pool` at size x size."""
    kind, arg = checked(dataset)
    if kind == DIGITS:
        images, labels = _digits(size)
        return Pool(images, labels, None, [str(c) for c in range(10)])
    if kind == FOLDER:
        classes = check_folder(arg)
        x, y = _decode_folder(pathlib.Path(arg) / "train", classes, size)
        test = _decode_folder(pathlib.Path(arg) / "test", classes, size)
    else:
        (x, y), test, classes = _tfds_arrays(arg, data_dir, size)
    return Pool(x, y, test, classes)


def split_indices(pool, recipe):
    """The recipe's seeded split of `pool` (its `val_size` and `seed`)."""
    candidates = np.arange(len(pool.labels))
    test = pool.test
    if test is None:  # The digits: a seeded 80/20 split gives train and test first.
        order = np.random.default_rng(recipe.seed + 1).permutation(len(pool.labels))
        n_test = len(pool.labels) // 5
        test = (pool.images[order[:n_test]], pool.labels[order[:n_test]])
        candidates = order[n_test:]
    train, val = train_val_indices(len(candidates), recipe.val_size, recipe.seed)
    return SplitIndices(train=candidates[train], val=candidates[val], test=test)


def split(pool, recipe):
    """The recipe's `ArraySplits` of `pool`."""
    parts = split_indices(pool, recipe)
    return ArraySplits(
        train=(pool.images[parts.train], pool.labels[parts.train]),
        val=(pool.images[parts.val], pool.labels[parts.val]),
        test=parts.test,
        classes=pool.classes,
    )


def load_arrays(dataset, recipe, data_dir=None):
    """Loads a small dataset into memory, decoded once, split train/val/test.

    Args:
        dataset: a `Dataset` (`parse`).
        recipe: the `Recipe`; gives image_size, val_size and seed.
        data_dir: tfds data directory.

    Returns:
        An `ArraySplits` with images at recipe.image_size.
    """
    return split(decode(dataset, recipe.image_size, data_dir), recipe)


def _digits(size):
    """scikit-learn's 8x8 digits as RGB 0..255 images of size x size, all 1,797.

    Each 8x8 image (values 0..16) is upsampled by the largest integer
    factor that fits (nearest neighbour), zero-padded to `size`, and
    repeated over 3 channels. `split_indices` draws the seed's 80/20
    train/test split.
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
    return images, digits.target.astype(np.int32)


def class_names(dataset, data_dir=None):
    """The class names of a `Dataset`, index = label, without loading its images."""
    kind, arg = checked(dataset)
    if kind == DIGITS:
        return [str(c) for c in range(10)]
    if kind == FOLDER:
        return check_folder(arg)
    return list(tfds_builder(arg, data_dir).info.features["label"].names)


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
        entries = [p for p in folder.iterdir() if not _hidden(p)]
        strays = sorted(p.name for p in entries if not p.is_dir())
        if strays:
            raise ValueError(
                f"{folder} holds {', '.join(strays[:5])}{' ...' if len(strays) > 5 else ''}, "
                f"which {'is' if len(strays) == 1 else 'are'} not a class folder: {folder} "
                "must hold one folder of images per class (hidden files aside). Move or "
                "unpack them."
            )
        classes = sorted(p.name for p in entries)
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
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p)
    )


def _hidden(path):
    """Dot files: .DS_Store, and the `._name.jpg` AppleDouble files macOS writes
    beside each image on a non-Mac disk (metadata, not images)."""
    return path.name.startswith(".")


def _decode_folder(folder, classes, size):
    paths, labels = list_folder(folder, classes)
    workers = min(8, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        images = list(pool.map(lambda p: decode_file(p, size), paths, chunksize=256))
    return np.stack(images), labels


def decode_file(path, size):
    """Decodes one image file to (size, size, 3) uint8 RGB with Pillow
    (`keras_resnet.images.open_rgb`: 16-bit PNGs and CMYK JPEGs made 8-bit
    RGB), resized to size x size if it is not.

    Raises:
        ValueError: naming the file, if it cannot be read or decoded.
    """
    Image = require("PIL.Image", "pillow", "image folders")
    image = image_files.open_rgb(path)
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, np.uint8)


def _tfds_arrays(name, data_dir, size):
    """A small tfds dataset (e.g. cifar10) as arrays; downloads if needed."""
    import tensorflow as tf

    tfds = require("tensorflow_datasets", "tensorflow-datasets", f"--dataset=tfds:{name}")
    # tfds.load downloads and prepares the dataset on first use.
    splits, info = tfds_load(
        name, data_dir, split=["train", "test"], as_supervised=True, with_info=True
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


@dataclasses.dataclass
class _SeedOnly:
    """What `split_indices` reads of a recipe, for a test split alone."""

    seed: int
    val_size: int = 0


def load_test(dataset, size, data_dir=None, seed=0):
    """The test split alone, decoded: (images uint8 (N, size, size, 3), labels, classes).

    Args:
        dataset: a `Dataset` (`parse`).
        size: image side.
        data_dir: tfds data directory.
        seed: the digits' train/test split seed (a recipe's `seed`).
    """
    kind, arg = checked(dataset)
    if kind == DIGITS:
        pool = decode(dataset, size)
        images, labels = split_indices(pool, _SeedOnly(seed)).test
        classes = pool.classes
    elif kind == FOLDER:
        classes = check_folder(arg)
        images, labels = _decode_folder(pathlib.Path(arg) / "test", classes, size)
    else:
        _, (images, labels), classes = _tfds_arrays(arg, data_dir, size)
    return images, labels, classes
