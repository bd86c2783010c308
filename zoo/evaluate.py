"""Re-evaluates a zoo.train workdir: `python -m zoo.evaluate --workdir=DIR`.

Modes (Sec. 3.4 and 4.2):
    center      one view: CIFAR's original 32x32 image; ImageNet's shorter
                side resized to 256 and the centre 224 crop.
    ten_crop    the four corners and the centre, and their mirrors, averaged.
                ImageNet: crops of 224 from the image resized to 256; CIFAR:
                crops of 32 from the image zero-padded by 4.
    multiscale  the fully-convolutional net on the whole image with its
                shorter side at each of --scales (ImageNet default
                224,256,384,480,640), softmax scores averaged over scales.

The model is DIR/model.keras, or with --checkpoint the last training
checkpoint (DIR/checkpoints/latest.weights.h5). Results go to
DIR/eval_<mode>.json.

--limit=N evaluates N test images, not the first N (a split stored class by
class would give N images of one class) but a class-balanced sample drawn
with a fixed seed (the same images every time): every class gives the same
number of images, give or take one. The command says so, and
eval_<mode>.json records it ("sample": seed and images per class).

Departures: in multiscale mode the per-pixel mean, which only exists at
the training crop size, is replaced by its spatial average (a per-channel
mean). Global average pooling followed by the dense layer equals the
paper's fully-convolutional scores averaged over positions (before the
softmax). Scales are evaluated without flips.
"""


import numpy as np
from absl import flags

from keras_resnet import images as image_files
from keras_resnet import specs
from zoo import cli
from zoo import datasets
from zoo import files
from zoo import recipes
from zoo import run

MODES = ("center", "ten_crop", "multiscale")
COMMAND = "zoo.evaluate"
IMAGENET_SCALES = (224, 256, 384, 480, 640)

FLAGS = flags.FLAGS


def check_classes(trained, evaluated, dataset):
    """Refuses to evaluate on a dataset whose label i is not the run's class i."""
    if list(trained) == list(evaluated):
        return
    missing = sorted(set(trained) - set(evaluated))
    extra = sorted(set(evaluated) - set(trained))
    detail = (
        f"only in the run: {missing[:10]}; only in the dataset: {extra[:10]}"
        if missing or extra
        else "the same names in another order, so the labels would not match"
    )
    raise ValueError(
        f"--dataset={dataset} has other classes than the run was trained on "
        f"({len(evaluated)} vs {len(trained)} classes; {detail}). Its labels would be "
        "compared with the wrong classes; evaluate on a dataset with the run's classes."
    )


# The seed of --limit's class-balanced sample: the same images for every run.
SAMPLE_SEED = 0


def test_images(dataset, recipe, data_dir=None, limit=None):
    """Yields (image uint8 (H, W, 3), label) of a `zoo.datasets.Dataset`'s test split at full size.

    With `limit`, only a class-balanced sample of `limit` images
    (`datasets.balanced_sample`, seed `SAMPLE_SEED`): the first images of a
    split stored class by class would all be of one class.
    """
    if recipe.family == recipes.CIFAR or dataset.kind == datasets.DIGITS:
        images, labels = datasets.load_arrays(dataset, recipe, data_dir).test
        chosen = range(len(labels)) if limit is None else datasets.balanced_sample(labels, limit, SAMPLE_SEED)
        for i in chosen:
            yield images[i], int(labels[i])
        return
    import tensorflow as tf

    from zoo import pipeline

    src = pipeline.sources(dataset, recipe, data_dir)
    test = src.test
    if limit is not None:
        # The labels first (a folder's come from its listing; tfds reads its records once more).
        labels = np.fromiter(test.map(lambda record, label: label).as_numpy_iterator(), np.int64)
        keep = tf.constant(np.isin(np.arange(len(labels)), datasets.balanced_sample(labels, limit, SAMPLE_SEED)))
        test = test.enumerate().filter(lambda i, pair: tf.gather(keep, i)).map(lambda i, pair: pair)
    test = test.map(lambda record, label: (src.decode(record), label))
    for image, label in test.as_numpy_iterator():
        yield image, int(label)


def describe_sample(per_class, classes):
    """What --limit evaluated, for the console: e.g. "a class-balanced sample of 30 test images
    (3 from each of the 10 classes, seed 0)"."""
    counts = sorted(per_class.values())
    each = f"{counts[0]}" if counts[0] == counts[-1] else f"{counts[0]} to {counts[-1]}"
    covered = "the" if len(counts) == classes else f"{len(counts)} of the"
    return (f"a class-balanced sample of {sum(counts)} test images ({each} from each of {covered} "
            f"{classes} classes, seed {SAMPLE_SEED})")


def _resize_shorter(image, size):
    """`zoo.augment.resize_shorter` (the pipeline's) of one image, as float32 numpy.

    An image whose shorter side is `size` already is returned as it is,
    without TensorFlow (CIFAR-sized runs evaluate without it).
    """
    if min(image.shape[:2]) == size:
        return image.astype(np.float32)
    from zoo import augment

    return augment.resize_shorter(image.astype(np.float32), size).numpy()


def _crops(image, size):
    """Four corners and centre of (H, W, 3), then their mirrors: (10, s, s, 3)."""
    h, w = image.shape[:2]
    center = image_files.center_offsets(h, w, size)
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), center]
    views = [image[t : t + size, l : l + size] for t, l in corners]
    return np.stack(views + [v[:, ::-1] for v in views])


def views(image, recipe, mode):
    """The views of one image that a mode averages over, float32 0..255."""
    size = recipe.image_size
    if recipe.family == recipes.CIFAR:
        base = image.astype(np.float32)
        if base.shape[:2] != (size, size):
            base = _resize_shorter(base, size)[:size, :size]
        if mode == "center":
            return base[None]
        p = recipe.pad
        return _crops(np.pad(base, ((p, p), (p, p), (0, 0))), size)
    resized = _resize_shorter(image, recipe.eval_resize)
    if mode == "center":
        return _crops(resized, size)[4:5]
    return _crops(resized, size)


def evaluate(workdir, modes=("center",), dataset=None, data_dir=None, scales=None, checkpoint=False, limit=None):
    """Evaluates a workdir's model in each mode; returns {mode: accuracy}.

    Args:
        workdir: a zoo.train workdir (config.json and model.keras).
        modes: subset of `MODES`.
        dataset, data_dir: default to the run's.
        scales: shorter sides for multiscale.
        checkpoint: use the last checkpoint rather than model.keras.
        limit: evaluate only a class-balanced sample of `limit` test images
            (`test_images`); each eval_<mode>.json then says which (its
            "sample": seed and images per class).
    """
    from zoo import checkpoint as checkpoint_lib  # Imports Keras: not at start-up (see cli.run).

    workdir = run.directory(workdir)
    scales = _check_arguments(modes, limit, scales)
    recipe, config = run.load_recipe(workdir)
    # Before the evaluation, which may take hours, rather than after it.
    cli.check_writable(workdir, ", ".join(run.eval_path(workdir, mode).name for mode in modes))
    dataset = datasets.parse(dataset or config["dataset"], recipe)
    data_dir = cli.expand(data_dir) or config.get("data_dir")
    classes = run.class_names(workdir, config)
    check_classes(classes, datasets.class_names(dataset, data_dir), dataset)
    model = checkpoint_lib.load_trained(workdir, recipe, checkpoint)
    if scales is None:
        scales = IMAGENET_SCALES if recipe.family == recipes.IMAGENET else (recipe.image_size,)
    full_conv = _fully_convolutional(model, recipe) if "multiscale" in modes else None
    images = test_images(dataset, recipe, data_dir, limit)
    correct, per_class = _count_correct(model, full_conv, images, recipe, modes, scales)
    if not per_class:
        raise ValueError(f"--dataset={dataset} has no test images; nothing was evaluated or written.")
    sample = None
    if limit is not None:
        sample = {"kind": "class-balanced", "seed": SAMPLE_SEED,
                  "per_class": {str(k): per_class[k] for k in sorted(per_class)},
                  "description": describe_sample(per_class, len(classes))}
        print(f"zoo.evaluate: --limit={limit}: {sample['description']}")
    return _record(workdir, correct, sum(per_class.values()), scales, sample)


def _check_arguments(modes, limit, scales):
    """Refuses unknown modes, a bad limit or bad scales, naming them; returns the scales as ints."""
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}. Valid modes: {', '.join(MODES)}.")
    if limit is not None:
        count = specs.integer(limit)
        if count is None or count < 1:
            raise ValueError(
                f"`limit` must be None (the whole test split) or an int >= 1. Received limit={limit!r}."
            )
    if scales is not None:
        scales = [_scale(s) for s in scales]
        if not scales:
            raise ValueError("`scales` must list at least one shorter side, e.g. 224,256.")
    return scales


def _fully_convolutional(model, recipe):
    """The run's net on inputs of any size, behind the per-channel mean (multiscale mode)."""
    import keras_resnet

    from zoo import model as model_lib

    mean = np.asarray(model.get_layer(model_lib.MEAN_LAYER).mean).reshape(-1, 3).mean(0)
    full_conv = model_lib.build(recipe, mean, input_shape=(None, None, 3))
    net = keras_resnet.architecture_of(model).net
    keras_resnet.architecture_of(full_conv).net.set_weights(net.get_weights())
    return full_conv


def _count_correct(model, full_conv, images, recipe, modes, scales):
    """({mode: images right}, {label: images seen}) over `images`, (image, label) pairs."""
    correct = {mode: 0 for mode in modes}
    per_class = {}
    for image, label in images:
        per_class[label] = per_class.get(label, 0) + 1
        for mode in modes:
            if mode == "multiscale":
                scores = np.mean([_scores(full_conv, _resize_shorter(image, s)[None])[0] for s in scales], axis=0)
            else:
                scores = _scores(model, views(image, recipe, mode)).mean(axis=0)
            correct[mode] += int(np.argmax(scores) == label)
    return correct, per_class


def _record(workdir, correct, total, scales, sample):
    """Writes each mode's eval_<mode>.json; returns {mode: accuracy}."""
    results = {mode: right / total for mode, right in correct.items()}
    for mode, accuracy in results.items():
        record = {"mode": mode, "accuracy": accuracy, "images": total}
        if mode == "multiscale":
            record["scales"] = scales
        if sample is not None:
            record["sample"] = sample
        files.write_json(run.eval_path(workdir, mode), record)
    return results


def _scale(value):
    try:
        scale = int(value)
    except (TypeError, ValueError):
        scale = 0
    if scale < 1 or str(value).strip() != str(scale):
        raise ValueError(f"Each scale must be a positive int (pixels). Received {value!r}.")
    return scale


def _scores(model, images):
    # A direct call: predict() costs ~0.1 s of set-up per call, per image here.
    from keras import ops

    return ops.convert_to_numpy(model(images, training=False))


def main(argv):
    if len(argv) > 1:
        cli.fail(f"Unexpected arguments: {' '.join(argv[1:])}", COMMAND)
    if not FLAGS.workdir:
        cli.fail("--workdir is required.", COMMAND)
    try:
        results = evaluate(
            FLAGS.workdir,
            FLAGS.mode,
            FLAGS.dataset,
            FLAGS.data_dir,
            FLAGS.scales,
            FLAGS.checkpoint,
            FLAGS.limit,
        )
    except (ValueError, ImportError) as error:
        cli.fail(str(error), COMMAND)
    except OSError as error:
        cli.fail(cli.os_error(error))
    for mode, accuracy in results.items():
        print(f"{mode}: accuracy={accuracy:.4f}")


def define_flags():
    """Defines the command-line flags (only when run as a program)."""
    flags.DEFINE_string("workdir", None, "A zoo.train workdir.")
    flags.DEFINE_multi_enum("mode", ["center"], list(MODES), "Evaluation mode(s).")
    flags.DEFINE_string("dataset", None, "Dataset spec; defaults to the run's.")
    flags.DEFINE_string("data_dir", None, "tfds data directory; defaults to the run's.")
    flags.DEFINE_list("scales", None, "Shorter sides for multiscale mode.")
    flags.DEFINE_bool("checkpoint", False, f"Evaluate the last checkpoint instead of {run.MODEL}.")
    flags.DEFINE_integer("limit", None, "Evaluate only N test images: a class-balanced sample (seed 0).")


if __name__ == "__main__":
    define_flags()
    cli.run(main, COMMAND)
