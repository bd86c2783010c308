"""tf.data input pipelines: decode, (cache), shuffle, augment, batch, prefetch.

CIFAR-family recipes hold their decoded uint8 images in memory (decoded
once by `zoo.datasets.load_arrays`) and augment whole batches with
vectorised ops. ImageNet-family recipes stream: files (or tfds records) are
shuffled, decoded and augmented per image in parallel, so memory stays
bounded and ImageNet is never cached whole.

The training stream is a function of the global step (`Data.train_from`).
In memory it is `zoo.stream`'s, what the JAX loops draw: the batch of
each step and its crop offsets and flips, cut by
`zoo.augment_ops.pad_crop_flip`, so one seed trains on the same images on
every backend. Streamed files come in the same passes of permutations
(`example_order`), each image's augmentation seeded by its position in the
stream. A run resumed at step s therefore sees exactly the batches an
uninterrupted run sees from step s on. The one exception is tfds data
streamed record by record (ImageNet from tfds), which cannot be indexed:
there a resumed run draws a fresh shuffle, seeded by the step it resumes at.
"""

import dataclasses
import typing

import numpy as np
import tensorflow as tf

from zoo import augment
from zoo import augment_ops
from zoo import datasets
from zoo import recipes
from zoo import stream

AUTOTUNE = tf.data.AUTOTUNE
# Shuffle buffer of the tfds streaming pipeline, in records (~150 KB each:
# encoded JPEG bytes, so bounded memory).
STREAM_SHUFFLE = 10_000


@dataclasses.dataclass
class Data:
    """What training needs: batched datasets, the mean image and the classes.

    `train_from(step)` is the augmented training stream from global step
    `step` on, repeating forever; `train` is the stream from step 0. `val`
    and `test` are single, unaugmented passes. `mean` is the per-pixel mean
    of the training split, (H, W, 3) float32.
    """

    train_from: typing.Callable[[int], tf.data.Dataset]
    val: tf.data.Dataset
    test: tf.data.Dataset
    mean: np.ndarray
    classes: list
    num_train: int

    @property
    def train(self):
        return self.train_from(0)


def example_order(n, seed, first):
    """Example indices 0..n-1 from position `first` of an endless stream.

    The stream is a sequence of passes; pass p is `zoo.stream`'s permutation
    of range(n) seeded by (seed, p), the one the JAX loops draw from. It
    depends only on the position, so the stream from `first` on is the tail
    of the stream from 0. Only the pass that holds `first` is skipped into
    (index arithmetic, nothing decoded).
    """
    first = int(first)

    def one_pass(index):
        order = tf.numpy_function(
            lambda p: stream.permutation(n, seed, int(p)).astype(np.int64), [index], tf.int64
        )
        order.set_shape([n])
        return tf.data.Dataset.from_tensor_slices(order)

    passes = tf.data.Dataset.counter(first // n, dtype=tf.int64)
    return passes.flat_map(one_pass).skip(first % n)


def _seeds(seed, first):
    """Stateless seeds (seed, k) for k = first, first + 1, ... (int64 pairs)."""
    seed = tf.constant(seed, tf.int64)
    return tf.data.Dataset.counter(int(first), dtype=tf.int64).map(lambda k: tf.stack([seed, k]))


def build(dataset, recipe, data_dir=None, global_batch=None):
    """Builds the pipelines of `recipe` on `dataset`.

    Args:
        dataset: a `zoo.datasets.Dataset` (`datasets.parse`): digits,
            tfds:NAME or folder:PATH.
        recipe: the `Recipe`.
        data_dir: tfds data directory (for imagenet2012: where the manual
            download lives).
        global_batch: batch size; defaults to recipe.batch_size.
    """
    batch = global_batch or recipe.batch_size
    if recipe.family == recipes.IMAGENET and datasets.checked(dataset).kind != datasets.DIGITS:
        return _streamed(dataset, recipe, data_dir, batch)
    splits = datasets.load_arrays(dataset, recipe, data_dir)
    return from_arrays(splits, recipe, batch)


def from_arrays(splits, recipe, batch):
    """In-memory pipelines from `datasets.ArraySplits`."""
    x, y = splits.train
    if len(y) < batch:
        raise ValueError(
            f"The training split has {len(y)} images, fewer than one batch "
            f"(batch_size={batch})."
        )
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    images, labels = tf.constant(x), tf.constant(y)
    # An ImageNet recipe on small in-memory data (the digits demo) crops nothing.
    pad = recipe.pad if recipe.family == recipes.CIFAR else 0

    def draws(step):
        """`zoo.stream`'s batch and augmentation of global step `step`, as the JAX loops draw them."""
        index = stream.batch_indices(len(y), batch, recipe.seed, int(step), 1)[0]
        offsets, flips = stream.crop_offsets_and_flips(batch, recipe.seed, int(step), 1, pad, recipe.flip)
        return index, offsets[0], flips[0]

    def batch_at(step):
        index, offsets, flips = tf.numpy_function(draws, [step], (tf.int32, tf.int32, tf.bool))
        index.set_shape([batch])
        offsets.set_shape([batch, 2])
        flips.set_shape([batch])
        pixels = tf.cast(tf.gather(images, index), tf.float32)
        return augment_ops.pad_crop_flip(pixels, offsets, flips, pad), tf.gather(labels, index)

    def train_from(step):
        steps = tf.data.Dataset.counter(int(step), dtype=tf.int64)
        return steps.map(batch_at, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    return Data(
        train_from=train_from,
        val=_eval_arrays(splits.val, batch),
        test=_eval_arrays(splits.test, batch),
        mean=mean,
        classes=list(splits.classes),
        num_train=len(y),
    )


def _eval_arrays(split, batch):
    images, labels = split
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)
    return ds.map(lambda x, y: (tf.cast(x, tf.float32), y)).prefetch(AUTOTUNE)


def _streamed(dataset, recipe, data_dir, batch):
    """Streaming ImageNet-style pipelines with bounded memory.

    Records (file paths, or encoded JPEG bytes from tfds) are put in order
    before decoding: file paths by `example_order`, tfds records through a
    shuffle buffer, which then holds small records, not images.
    """
    src = sources(dataset, recipe, data_dir)
    decode = src.decode
    size = recipe.image_size

    def eval_map(record, label):
        return augment.imagenet_eval(decode(record), size, recipe.eval_resize), label

    def evaluated(source):
        return source.map(eval_map, num_parallel_calls=AUTOTUNE).batch(batch).prefetch(AUTOTUNE)

    # The per-pixel mean of centre crops of the first `mean_examples` images.
    total = np.zeros((size, size, 3), np.float64)
    count = 0
    for images, _ in evaluated(src.train.take(recipe.mean_examples)):
        total += images.numpy().sum(axis=0)
        count += images.shape[0]
    mean = (total / max(count, 1)).astype(np.float32)

    def train_map(seed, pair):
        record, label = pair
        image = augment.imagenet_train(
            decode(record),
            seed,
            size,
            (recipe.scale_min, recipe.scale_max),
            recipe.flip,
            recipe.lighting_std,
        )
        return image, label

    def train_from(step):
        first = step * batch  # the stream's position, in images
        train = tf.data.Dataset.zip((_seeds(recipe.seed, first), src.records_from(first)))
        train = train.map(train_map, num_parallel_calls=AUTOTUNE)
        return train.batch(batch, drop_remainder=True).prefetch(AUTOTUNE)

    return Data(
        train_from=train_from,
        val=evaluated(src.val),
        test=evaluated(src.test),
        mean=mean,
        classes=src.classes,
        num_train=src.num_train,
    )


@dataclasses.dataclass
class Sources:
    """A streamed dataset's undecoded (record, label) splits, and how to decode them.

    What `build` streams ImageNet-style data from, and what evaluation
    (`zoo.evaluate.test_images`) and int8 calibration (`zoo.calibration`)
    read at full size. A record is a file path (image folders) or the
    encoded image bytes (tfds).

    Attributes:
        train: the training split less val, in its stored order (the
            per-pixel mean is taken over its first images).
        val: the held-out val split.
        test: the test split (ImageNet's tfds "validation").
        decode: record -> (H, W, 3) uint8 image tensor.
        classes: class names, index = label.
        num_train: images in `train` (None where tfds does not say).
        records_from: position -> the endless training stream of records
            from that position (in images) on.
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    decode: typing.Callable
    classes: list
    num_train: typing.Optional[int]
    records_from: typing.Callable[[int], tf.data.Dataset]


def sources(dataset, recipe, data_dir=None):
    """The `Sources` of a streamed `zoo.datasets.Dataset` (folder: or tfds:) for `recipe`'s split and seed."""
    kind, arg = datasets.checked(dataset)
    if kind == datasets.FOLDER:
        classes = datasets.check_folder(arg)
        paths, labels = datasets.list_folder(f"{arg}/train", classes)
        # The seeded split every in-memory path makes too.
        train_index, val_index = datasets.train_val_indices(len(labels), recipe.val_size, recipe.seed)
        cut = len(train_index)
        paths = np.asarray(paths)
        train_paths, train_labels = paths[train_index], labels[train_index]
        train = _records(train_paths, train_labels)
        val = _records(paths[val_index], labels[val_index])
        test = _records(*datasets.list_folder(f"{arg}/test", classes))
        path_tensor = tf.constant(list(train_paths))
        label_tensor = tf.constant(np.asarray(train_labels, np.int32))

        def records_from(position):
            return example_order(cut, recipe.seed, position).map(
                lambda i: (tf.gather(path_tensor, i), tf.gather(label_tensor, i))
            )

        return Sources(train, val, test, read_image_file, classes, cut, records_from)
    import tensorflow_datasets as tfds

    # The paper reports ImageNet's validation set (tfds "validation"): it is
    # our test split. Our held-out val is the first val_size training records.
    splits = [f"train[{recipe.val_size}:]", f"train[:{recipe.val_size}]", "validation"]
    download_config = tfds.download.DownloadConfig(manual_dir=data_dir)
    (train, val, test), info = datasets.tfds_load(
        arg,
        data_dir,
        manual_dir=data_dir,
        split=splits,
        as_supervised=True,
        with_info=True,
        shuffle_files=True,
        read_config=tfds.ReadConfig(shuffle_seed=recipe.seed),
        decoders={"image": tfds.decode.SkipDecoding()},
        download_and_prepare_kwargs={"download_config": download_config},
    )
    classes = list(info.features["label"].names)
    try:
        num_train = info.splits["train"].num_examples - recipe.val_size
    except KeyError:  # tfds.testing.mock_data has no split sizes.
        num_train = None

    def records_from(position):
        # tfds records cannot be indexed: not the uninterrupted run's order on
        # resume, but a fresh shuffle rather than the first images again.
        return train.shuffle(STREAM_SHUFFLE, seed=recipe.seed + int(position)).repeat()

    return Sources(train, val, test, decode_image_bytes, classes, num_train, records_from)


def _records(paths, labels):
    return tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, np.int32)))


def decode_image_bytes(data, name="<record>"):
    """Decodes JPEG/PNG/BMP/GIF bytes to (H, W, 3) uint8.

    TF's decode error does not say which file failed: the magic bytes are
    checked first so that a non-image (or empty) file fails with its name.
    """
    head = tf.strings.substr(data, 0, 4)
    known = tf.reduce_any(
        [
            tf.strings.substr(head, 0, 2) == b"\xff\xd8",  # JPEG
            head == b"\x89PNG",
            tf.strings.substr(head, 0, 2) == b"BM",
            tf.strings.substr(head, 0, 3) == b"GIF",
        ]
    )
    check = tf.debugging.Assert(known, ["Cannot decode image file", name])
    with tf.control_dependencies([check]):
        return tf.io.decode_image(data, channels=3, expand_animations=False)


def read_image_file(path):
    """Reads and decodes one image file; a bad file fails with its path."""
    return decode_image_bytes(tf.io.read_file(path), path)
