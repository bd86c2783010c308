"""Input-pipeline and training throughput, images/s (a measurement, not a test).

    python benchmarks/input_pipeline.py [--cifar_root=DIR] [--repeats=5]

1. CIFAR training pipeline: the in-memory tf.data pipeline of
   cifar10_resnet20 (shuffle, pad-4 random crop, flip, batch 128,
   prefetch), on the real CIFAR JPEG copy if --cifar_root is given,
   otherwise on 50,000 random 32x32 images (same cost once decoded).
2. ImageNet-style JPEG pipeline: streamed from JPEG files (decode, scale
   augmentation to a shorter side in [256, 480], random 224 crop, flip,
   PCA lighting), on generated 500x375 JPEGs (typical ImageNet size).
3. ResNet-20 CIFAR training (fit on the CIFAR pipeline), batch 128.

Each figure is the median of --repeats timed runs after a warm-up.
"""

import argparse
import dataclasses
import os
import pathlib
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from zoo import datasets  # noqa: E402
from zoo import pipeline  # noqa: E402
from zoo import recipes  # noqa: E402


def images_per_s(iterator, batches, batch_size, repeats):
    next(iterator)  # warm-up: tracing, first prefetch
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        rates.append(batches * batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def cifar_splits(root, recipe):
    if root:
        return datasets.load_arrays(datasets.parse(f"folder:{root}"), recipe)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 50000).astype(np.int32)
    train, val = datasets.split_train_val(x, y, recipe.val_size, 0)
    return datasets.ArraySplits(train, val, val, [str(i) for i in range(10)])


def make_jpegs(folder, count, size=(500, 375)):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (folder / "train" / c).mkdir(parents=True)
        (folder / "test" / c).mkdir(parents=True)
    # Smooth random images compress like photos (noise would be huge files).
    for i in range(count):
        small = rng.integers(0, 256, (size[1] // 25, size[0] // 25, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize(size, Image.BICUBIC)
        image.save(folder / "train" / ("a", "b")[i % 2] / f"{i:05d}.jpg", quality=90)
    for c in ("a", "b"):
        Image.new("RGB", size).save(folder / "test" / c / "0.jpg")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cifar_root", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jpegs", type=int, default=512)
    args = parser.parse_args()
    print(f"TF {tf.__version__}, {os.cpu_count()} CPU cores visible")

    recipe = recipes.get("cifar10_resnet20")
    splits = cifar_splits(args.cifar_root, recipe)
    data = pipeline.from_arrays(splits, recipe, recipe.batch_size)
    rate = images_per_s(iter(data.train), 50, recipe.batch_size, args.repeats)
    source = "real CIFAR JPEG copy" if args.cifar_root else "random 32x32"
    print(f"cifar_pipeline_img_per_s ({source}): {rate:,.0f}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        make_jpegs(folder, args.jpegs)
        imagenet = dataclasses.replace(
            recipes.get("imagenet_resnet50"), val_size=2, batch_size=32, mean_examples=32
        )
        stream = pipeline.build(datasets.parse(f"folder:{folder}"), imagenet)
        rate = images_per_s(iter(stream.train), 8, 32, args.repeats)
        print(
            f"imagenet_jpeg_pipeline_img_per_s (500x375 JPEGs): {rate:,.0f} "
            f"({rate / os.cpu_count():,.0f} per core)"
        )

    import keras

    from zoo import model as model_lib

    net = model_lib.build(recipe, data.mean)
    model_lib.compile_model(net, recipe)
    steps = 10
    net.fit(data.train, steps_per_epoch=2, epochs=1, verbose=0)  # trace
    rates = []
    for _ in range(max(1, args.repeats // 2)):
        start = time.perf_counter()
        net.fit(data.train, steps_per_epoch=steps, epochs=1, verbose=0)
        rates.append(steps * recipe.batch_size / (time.perf_counter() - start))
    print(f"resnet20_train_img_per_s (batch 128, {keras.backend.backend()}): {statistics.median(rates):,.0f}")


if __name__ == "__main__":
    main()
