"""Train a ResNet-20 briefly, export it as a SavedModel, reload, and compare.

    python examples/export_savedmodel.py                  # a few minutes on 2 CPU cores
    python examples/export_savedmodel.py --steps=20 --train_per_class=50 \\
        --test_per_class=20                               # a smoke run

It trains on real CIFAR-10 images (the JPEG copy in ../shared/data, relative
to the repository root; --data overrides), with the per-pixel mean
subtraction inside the model as zoo models have it, so the model takes raw
0..255 pixels. It then exports with `keras_resnet.export`, reloads with
`tf.saved_model.load`, and predicts the test images twice: from the raw JPEG
files through the `serve_bytes` signature (decoding in the graph, as a
server would), and from decoded pixels through `serving_default`. It prints
the top-1 agreement of each with Keras's own predictions.
"""

import argparse
import pathlib
import tarfile
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import keras_resnet
from keras_resnet import serving

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10_jpeg.tar.gz"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="cifar10_jpeg.tar.gz, or its extracted folder (train/, test/)")
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--train_per_class", type=int, default=1000)
    parser.add_argument("--test_per_class", type=int, default=100)
    parser.add_argument("--output", default=None, help="SavedModel directory (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def cifar_root(data, scratch):
    data = pathlib.Path(data)
    if data.is_dir():
        root = data
    elif data.is_file():
        with tarfile.open(data) as tar:
            tar.extractall(scratch, filter="data")
        root = pathlib.Path(scratch)
    else:
        raise FileNotFoundError(f"--data={str(data)!r} is neither the archive nor its folder.")
    if not (root / "train").is_dir():
        children = [p for p in root.iterdir() if (p / "train").is_dir()]
        if len(children) != 1:
            raise FileNotFoundError(f"No train/ folder under {root}.")
        root = children[0]
    return root


def read_split(root, split, per_class):
    """Returns (raw JPEG bytes, uint8 pixels, labels, class names)."""
    classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
    files, labels = [], []
    for label, name in enumerate(classes):
        paths = sorted((root / split / name).glob("*.jpg"))[:per_class]
        files += paths
        labels += [label] * len(paths)
    encoded = [path.read_bytes() for path in files]
    pixels = np.stack([tf.io.decode_jpeg(data, channels=3).numpy() for data in encoded])
    return encoded, pixels, np.array(labels), classes


def build_model(mean):
    """ResNet-20 behind a per-pixel mean subtraction, as zoo models are."""
    inputs = keras.Input((32, 32, 3), name="pixels")
    x = keras.layers.Normalization(
        axis=(1, 2, 3), mean=mean, variance=np.ones_like(mean), name="per_pixel_mean"
    )(inputs)
    return keras.Model(inputs, keras_resnet.resnet20()(x), name="cifar10_resnet20")


def main():
    args = parse_args()
    keras.utils.set_random_seed(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        root = cifar_root(args.data, scratch)
        _, train_x, train_y, classes = read_split(root, "train", args.train_per_class)
        test_jpeg, test_x, test_y, _ = read_split(root, "test", args.test_per_class)
        print(f"Data: {len(train_x)} train / {len(test_x)} test images from {args.data}")

        model = build_model(train_x.astype("float32").mean(axis=0))
        model.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        dataset = (
            tf.data.Dataset.from_tensor_slices((train_x.astype("float32"), train_y))
            .shuffle(len(train_x), seed=args.seed).repeat().batch(args.batch_size)
        )
        start = time.time()
        model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=2)
        print(f"Trained {args.steps} steps in {time.time() - start:.0f} s")

        keras_probs = model.predict(test_x.astype("float32"), batch_size=256, verbose=0)
        output = args.output or str(pathlib.Path(scratch) / "savedmodel")
        start = time.time()
        serving.export(model, output, class_names=classes, overwrite=args.output is not None)
        print(f"Exported to {output} in {time.time() - start:.0f} s")

        loaded = tf.saved_model.load(output)
        by_bytes = loaded.signatures["serve_bytes"](image_bytes=tf.constant(test_jpeg))
        by_pixels = loaded.signatures["serving_default"](images=tf.constant(test_x.astype("float32")))

        keras_top1 = keras_probs.argmax(axis=1)
        for name, out in (("serve_bytes (JPEG files)", by_bytes),
                          ("serving_default (pixels)", by_pixels)):
            top1 = out["top_k_ids"].numpy()[:, 0]
            diff = np.abs(out["probabilities"].numpy() - keras_probs).max()
            print(f"{name}: top-1 agreement with Keras {np.mean(top1 == keras_top1):.2%}, "
                  f"max |p - p_keras| {diff:.2e}, accuracy {np.mean(top1 == test_y):.2%}")
        names = by_bytes["top_k_names"].numpy()[:3, 0].astype(str)
        print(f"First test images: predicted {list(names)}, "
              f"true {[classes[i] for i in test_y[:3]]}")
        print(f"Keras test accuracy: {np.mean(keras_top1 == test_y):.2%}")


if __name__ == "__main__":
    main()
