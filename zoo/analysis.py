"""Layer responses of trained nets, as in the paper's Fig. 7 (Sec. 4.2).

    python -m zoo.analysis --workdir=runs/plain20 --workdir=runs/r20 \\
        --preset=cifar10:56 --dataset=folder:/data/cifar10_jpeg --out=fig7

For each net, the response of every 3x3 conv layer is its BN layer's output
(after BN, before the ReLU or the addition), on the test split, in inference
mode. Its standard deviation is taken over every element (images,
positions, channels) of that output, in float64 from per-image float32
sums. The JSON (`OUT.json`) also holds the mean over channels of each
channel's std. The PNG (`OUT.png`) draws the stds by layer index (top) and
sorted by magnitude (bottom), as Fig. 7 does.

Nets come from zoo.train workdirs (`model.keras`; with `--checkpoint`, the
last checkpoint of an unfinished run) or from weight presets
(`--preset=NAME:DEPTH`, built with `include_preprocessing=True`). A
workdir's test split is its run's dataset unless `--dataset` is given; a
preset needs `--dataset`.
"""

import pathlib

import numpy as np
from absl import flags

from zoo import cli
from zoo import datasets
from zoo import run

FLAGS = flags.FLAGS


def response_layers(net):
    """Names of the BN layers that follow the 3x3 convs of a keras_resnet net.

    Raises:
        ValueError: if `net` has no 3x3 conv followed by a `<name>_bn` layer
            (the keras_resnet naming).
    """
    import keras

    names = []
    for layer in net.layers:
        if isinstance(layer, keras.layers.Conv2D) and tuple(layer.kernel_size) == (3, 3):
            if not layer.name.endswith("_conv"):
                raise ValueError(f"3x3 conv {layer.name!r} is not named <block>_conv as keras_resnet names it.")
            bn = layer.name[: -len("_conv")] + "_bn"
            try:
                net.get_layer(bn)
            except ValueError:
                raise ValueError(f"3x3 conv {layer.name!r} has no BN layer {bn!r} after it.") from None
            names.append(bn)
    if not names:
        raise ValueError(f"Model {net.name!r} has no 3x3 conv layers: is it a keras_resnet net?")
    return names


def find_net(model):
    """The keras_resnet net inside `model` (itself, or a nested model).

    Raises:
        ValueError: naming the model, if it holds no keras_resnet net.
    """
    import keras_resnet

    return keras_resnet.architecture_of(model).net


def probe(model):
    """(raw images -> net input or None, net input -> moments, layer names).

    The moments model returns, per response layer, (batch, 2, channels):
    each image's mean over positions of the response and of its square.
    """
    import keras
    from keras import ops

    from zoo import model as model_lib

    net = find_net(model)
    names = response_layers(net)
    front = None
    if net is not model:
        # A zoo model: raw pixels -> per-pixel mean subtraction -> the net.
        try:
            mean = model.get_layer(model_lib.MEAN_LAYER)
        except ValueError:
            raise ValueError(
                f"Model {model.name!r} nests {net.name!r} behind layers other than zoo's "
                f"{model_lib.MEAN_LAYER!r}; pass the net itself."
            ) from None
        front = keras.Model(model.inputs, mean.output)
    outputs = []
    for name in names:
        layer = net.get_layer(name)
        response = ops.cast(layer.output, "float32")
        axes = (1, 2) if layer.axis in (-1, 3) else (2, 3)
        outputs.append(
            ops.stack([ops.mean(response, axis=axes), ops.mean(ops.square(response), axis=axes)], axis=1)
        )
    return front, keras.Model(net.inputs, outputs), names


def layer_stds(model, images, batch_size=200):
    """Std of each 3x3 layer's response over `images` (raw 0..255 RGB, same size).

    Returns:
        {"layers": names, "std": [...], "channel_std": [...]}, one value per
        layer: the std over all elements, and the mean of the channels' stds.
    """
    from keras import ops

    if len(images) == 0:
        raise ValueError("layer_stds needs at least one image. Received 0.")
    front, moments, names = probe(model)
    sums = [0.0] * len(names)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].astype(np.float32)
        if front is not None:
            x = front(x, training=False)
        for i, out in enumerate(moments(x, training=False)):
            sums[i] = sums[i] + ops.convert_to_numpy(out).astype(np.float64).sum(axis=0)
    stds, channel_stds = [], []
    for mean_c, square_c in (total / len(images) for total in sums):
        channel_stds.append(float(np.sqrt(np.maximum(square_c - mean_c**2, 0.0)).mean()))
        mean, square = mean_c.mean(), square_c.mean()
        stds.append(float(np.sqrt(max(square - mean**2, 0.0))))
    return {"layers": names, "std": stds, "channel_std": channel_stds}


def load_source(source, checkpoint=False):
    """(label, model, `zoo.datasets.Dataset` or None, data_dir) of a workdir or 'PRESET:DEPTH'.

    Raises:
        ValueError: for a preset spec without a depth, or a directory that is
            not a zoo.train workdir.
    """
    from zoo import checkpoint as checkpoint_lib

    path = run.directory(source)
    if path.is_dir():
        recipe, config = run.load_recipe(path)
        label = recipe.name + (" (checkpoint)" if checkpoint else "")
        model = checkpoint_lib.load_trained(path, recipe, checkpoint)
        return label, model, datasets.parse(config["dataset"]), config.get("data_dir")
    name, sep, depth = source.rpartition(":")
    if not sep or not depth.isdigit():
        raise ValueError(
            f"A source is a zoo.train workdir or PRESET:DEPTH (e.g. cifar10:56). Received {source!r}."
        )
    import keras_resnet

    model = keras_resnet.ResNet(int(depth), weights=name, include_preprocessing=True)
    return f"{name} ResNet-{depth}", model, None, None


def analyse(sources, dataset=None, data_dir=None, limit=None, checkpoint=False):
    """Layer stds of each source on its test split; a list of dicts.

    Args:
        sources: workdirs and/or 'PRESET:DEPTH' strings.
        dataset, data_dir: the test data (required for presets).
        limit: use only the first `limit` test images.
        checkpoint: load workdirs' last checkpoints instead of model.keras.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"`limit` must be >= 1. Received limit={limit}.")
    dataset = None if dataset is None else datasets.parse(dataset)
    results = []
    cache = {}
    for source in sources:
        label, model, run_dataset, run_data_dir = load_source(source, checkpoint)
        test = dataset or run_dataset
        if test is None:
            raise ValueError(f"{source}: a preset needs --dataset (e.g. folder:/data/cifar10_jpeg).")
        size = model.input_shape[1]
        key = (test, size)
        if key not in cache:
            images, _, _ = datasets.load_test(test, size, data_dir or run_data_dir)
            cache[key] = images if limit is None else images[:limit]
        stats = layer_stds(model, cache[key])
        results.append({"source": str(source), "label": label, "dataset": str(test), "images": len(cache[key]),
                        **stats})
        print(f"{label}: {len(stats['std'])} layers, mean std {np.mean(stats['std']):.3f}", flush=True)
    return results


def plot(results, out):
    """Fig. 7's two panels: std by layer index (top), sorted (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7))
    for i, result in enumerate(results):
        style = dict(color=f"C{i % 10}", label=result["label"], linewidth=1.4)
        if "plain" in result["label"]:
            style["linestyle"] = "--"
        index = np.arange(1, len(result["std"]) + 1)
        top.plot(index, result["std"], **style)
        bottom.plot(index, sorted(result["std"], reverse=True), **style)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
    top.legend(fontsize=8)
    top.set_title("Std of 3x3 layer responses (after BN, before ReLU/addition)")
    fig.tight_layout()
    out = pathlib.Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv):
    from zoo import files

    if len(argv) > 1:
        cli.fail(f"Unexpected arguments: {' '.join(argv[1:])}", "zoo.analysis")
    sources = list(FLAGS.workdir) + list(FLAGS.preset)
    if not sources:
        cli.fail("Give at least one --workdir or --preset=NAME:DEPTH.", "zoo.analysis")
    try:
        out = cli.output_file(pathlib.Path(cli.expand(FLAGS.out)).with_suffix(".png"), "--out")
        results = analyse(sources, FLAGS.dataset, FLAGS.data_dir, FLAGS.limit, FLAGS.checkpoint)
        files.write_json(out.with_suffix(".json"), results)
        png = plot(results, out.with_suffix(".png"))
    except (ValueError, ImportError) as error:
        cli.fail(str(error), "zoo.analysis")
    except OSError as error:
        cli.fail(cli.os_error(error))
    print(f"wrote {out.with_suffix('.json')} and {png}")


def define_flags():
    """Defines the command-line flags (only when run as a program)."""
    flags.DEFINE_multi_string("workdir", [], "A zoo.train workdir; repeatable.")
    flags.DEFINE_multi_string("preset", [], "A weight preset as NAME:DEPTH (e.g. cifar10:56); repeatable.")
    flags.DEFINE_string("dataset", None, "Test data spec; defaults to a workdir's run dataset.")
    flags.DEFINE_string("data_dir", None, "tfds data directory.")
    flags.DEFINE_integer("limit", None, "Use only the first N test images.")
    flags.DEFINE_bool("checkpoint", False, "Use workdirs' last checkpoints (unfinished runs).")
    flags.DEFINE_string("out", "layer_responses", "Output path without suffix: OUT.json and OUT.png.")


if __name__ == "__main__":
    define_flags()
    cli.run(main, "zoo.analysis")
