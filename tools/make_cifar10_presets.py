"""Converts akamaster's CIFAR-10 checkpoints into the shipped presets, and
measures them.

    python tools/make_cifar10_presets.py            # writes the files, prints their sha256
    python tools/make_cifar10_presets.py --measure  # + the test errors, float16 vs float32

Reads ../shared/data/akamaster_cifar10/resnet{20,32,44,56}-*.th (no torch
needed), converts each with `keras_resnet.convert.from_cifar_option_a` and
writes keras_resnet/weights_data/akamaster_cifar10_resnet{depth}.weights.h5:
Keras's `.weights.h5` layout (so `model.load_weights` reads it too) with
the weights in float16 and only the layers that have weights, written
deterministically (no timestamps), so the same checkpoint gives the same
file and the same sha256. Paste the printed sha256 and errors into
keras_resnet/presets.py.

`--measure` prints, per depth, the top-1 error (%) of the shipped float16
preset and of the float32 conversion on the 846 original test images and on
the JPEG copy's 10,000 test images (decoded with Pillow, as the zoo does).
"""

import argparse
import concurrent.futures
import glob
import os
import pathlib
import sys
import tarfile
import tempfile

import h5py
import keras
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keras_resnet  # noqa: E402
from keras_resnet import convert, presets, weights  # noqa: E402

DATA = REPO.parent / "shared" / "data"
DEPTHS = (20, 32, 44, 56)


def checkpoint_path(depth):
    (path,) = glob.glob(str(DATA / "akamaster_cifar10" / f"resnet{depth}-*.th"))
    return path


def save_float16(model, path):
    """Writes `model`'s weights as a float16 `.weights.h5`, deterministically."""
    with tempfile.TemporaryDirectory() as tmp:
        full = os.path.join(tmp, "model.weights.h5")
        model.save_weights(full)
        with h5py.File(full, "r") as src, h5py.File(path, "w") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value

            def copy(name, obj):
                if isinstance(obj, h5py.Dataset):
                    data = obj[()]
                    if data.dtype == np.float32:
                        data = data.astype(np.float16)
                    dst.create_dataset(name, data=data, track_times=False)

            src.visititems(copy)


def decode_test_images(archive):
    from zoo import datasets

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        (test,) = [p for p in pathlib.Path(tmp).rglob("test") if p.is_dir()]
        classes = sorted(p.name for p in test.iterdir())
        paths, labels = datasets.list_folder(test, classes)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            images = list(pool.map(lambda p: datasets.decode_file(p, 32), paths, chunksize=256))
    return np.stack(images), labels


def error(model, x, y):
    predictions = model.predict(x.astype(np.float32), batch_size=1000, verbose=0)
    return 100.0 * float(np.mean(np.argmax(predictions, -1) != y)), predictions


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measure", action="store_true")
    args = parser.parse_args()
    out = pathlib.Path(presets.WEIGHTS_DATA)
    out.mkdir(exist_ok=True)
    converted = {}
    for depth in DEPTHS:
        converted[depth] = convert.from_cifar_option_a(checkpoint_path(depth))
        path = out / f"akamaster_cifar10_resnet{depth}.weights.h5"
        save_float16(converted[depth], path)
        print(f"{depth}: {path.name} {os.path.getsize(path)} bytes sha256 {weights.file_sha256(path)}")
    if not args.measure:
        return
    head = np.load(DATA / "cifar10_original_test_head.npz")
    jpeg = decode_test_images(DATA / "cifar10_jpeg.tar.gz")
    print("depth | float16 preset: original 846, JPEG 10k | float32: original 846, JPEG 10k | top-1 changes (JPEG)")
    for depth in DEPTHS:
        # The preset as users load it (the shipped file, its sha256 checked),
        # and the float32 conversion with the same preprocessing in front.
        shipped = keras_resnet.ResNet(depth, weights="akamaster_cifar10", include_preprocessing=True)
        raw = keras.Input((32, 32, 3))
        preprocess = keras_resnet.Preprocessing("torch")
        full = keras.Model(raw, converted[depth](preprocess(raw)))
        row = []
        for model in (shipped, full):
            e_head, _ = error(model, head["x"], head["y"])
            e_jpeg, p = error(model, *jpeg)
            row.append((e_head, e_jpeg, np.argmax(p, -1)))
        flips = int(np.sum(row[0][2] != row[1][2]))
        print(f"{depth} | {row[0][0]:.2f} {row[0][1]:.2f} | {row[1][0]:.2f} {row[1][1]:.2f} | {flips}")


if __name__ == "__main__":
    main()
