"""Calibration images for a run's full-integer (int8) export, from its training split.

Post-training int8 quantization measures every activation's range on a
few hundred images. They come from the run's own training images, never
its test split (a test image seen during calibration is no longer a clean
test image) nor its held-out val split: the first N images of the
training part in the run's seeded order (the permutation that split train
from val, seeded by the recipe's `seed`), so N images spread over every
class, and the same N for the same run every time.

`draw` returns the images and a record of which they were (file paths
for an image folder, indices into the dataset's train split otherwise),
which `zoo.export` writes next to the .tflite file.
"""

import pathlib

import numpy as np

from keras_resnet import specs
from zoo import datasets
from zoo import recipes

DEFAULT_COUNT = 300


def draw(recipe, config, count=None, data_dir=None):
    """The run's calibration images and the record of which they are.

    Args:
        recipe: the run's `Recipe` (`zoo.run.load_recipe`).
        config: the run's config.json as a dict (its `dataset`, `data_dir`).
        count: how many images, at most the training part's size; None:
            `DEFAULT_COUNT`, or every training image if there are fewer
            (the record's "note" says so).
        data_dir: tfds data directory; default the run's.

    Returns:
        (images uint8 (count, S, S, 3) with S the recipe's image size,
        record dict for JSON).

    Raises:
        ValueError: a bad count, or a dataset with fewer training images
            than the `count` asked for.
    """
    asked = count
    if count is not None:
        number = specs.integer(count)
        if number is None or number < 1:
            raise ValueError(
                f"The number of calibration images must be an int >= 1 (a few hundred is "
                f"typical). Received {count!r}."
            )
        count = number
    spec = config["dataset"]
    data_dir = data_dir or config.get("data_dir")
    dataset = datasets.parse(spec)
    kind, arg = dataset
    if kind == "folder":
        images, files = _folder(pathlib.Path(arg), recipe, count)
        found = {"files": files}
    elif recipe.family == recipes.CIFAR or kind == datasets.DIGITS:
        images, indices = _in_memory(dataset, recipe, count, data_dir)
        found = {"train_split_indices": indices}
    else:
        images = _tfds_streamed(dataset, recipe, count, data_dir)
        found = {}
    taken = len(images)
    record = {
        "dataset": spec,
        "split": "train",
        "held_out_val_images": recipe.val_size,
        "selection": (
            f"the first {taken} training images in the run's seeded order (seed "
            f"{recipe.seed}), the val split and the test split excluded"
            if kind == "folder" or "train_split_indices" in found else
            f"the first {taken} records of tfds split train[{recipe.val_size}:], files "
            f"shuffled with seed {recipe.seed}, the val split and the test split excluded"
        ),
        **found,
    }
    if asked is None and taken < DEFAULT_COUNT:
        record["note"] = (
            f"The run's training part has {taken} images, fewer than the default "
            f"{DEFAULT_COUNT} calibration images: calibrating on all {taken}."
        )
    record["images"] = int(taken)
    return images, record


def _training_order(labels, recipe):
    """Indices of the training part (val excluded), in the run's seeded order."""
    (order, _), _ = datasets.split_train_val(
        np.arange(len(labels)), labels, recipe.val_size, recipe.seed
    )
    return order


def _take(count, available):
    """How many images to take: `count`, or for None the default or fewer."""
    if available == 0:
        raise ValueError("The run's training part has no images to calibrate on.")
    if count is None:
        return min(DEFAULT_COUNT, available)
    if count > available:
        raise ValueError(
            f"Asked for {count} calibration images, but the run's training part has "
            f"{available} images. Pass a smaller count (or none: the default takes "
            f"up to {DEFAULT_COUNT})."
        )
    return count


def _folder(root, recipe, count):
    classes = datasets.check_folder(root)
    paths, labels = datasets.list_folder(root / "train", classes)
    order = _training_order(labels, recipe)
    count = _take(count, len(order))
    chosen = [paths[i] for i in order[:count]]
    if recipe.family == recipes.CIFAR:
        images = [datasets.decode_file(p, recipe.image_size) for p in chosen]
    else:
        images = [_imagenet_view(p, recipe) for p in chosen]
    return np.stack(images), [str(pathlib.Path(p).relative_to(root)) for p in chosen]


def _imagenet_view(path, recipe):
    """The evaluation view of one image: shorter side resized, centre crop."""
    from zoo import augment
    from zoo import pipeline

    image = augment.imagenet_eval(pipeline.read_image_file(path), recipe.image_size, recipe.eval_resize)
    return np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8)


def _in_memory(dataset, recipe, count, data_dir):
    splits = datasets.load_arrays(dataset, recipe, data_dir)
    images, labels = splits.train
    count = _take(count, len(labels))
    # load_arrays orders the training part the same way: train[k] is
    # the dataset's train image order[k].
    total = len(labels) + len(splits.val[1])
    order = _training_order(np.zeros(total), recipe)
    return images[:count], [int(i) for i in order[:count]]


def _tfds_streamed(dataset, recipe, count, data_dir):
    from zoo import augment
    from zoo import pipeline

    src = pipeline.sources(dataset, recipe, data_dir)
    images = []
    for record, _ in src.train.take(DEFAULT_COUNT if count is None else count):
        image = augment.imagenet_eval(src.decode(record), recipe.image_size, recipe.eval_resize)
        images.append(np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8))
    _take(count, len(images))
    return np.stack(images)
