"""Converts akamaster's CIFAR-10 checkpoints into the shipped presets, and
measures them.

    python tools/make_cifar10_presets.py            # writes the files, prints their sha256
    python tools/make_cifar10_presets.py --measure  # + the test errors, float16 vs float32
    python tools/make_cifar10_presets.py --zoo-run=runs/cifar10_resnet20 --measure

Reads ../shared/data/akamaster_cifar10/resnet{20,32,44,56}-*.th (no torch
needed), converts each with `keras_resnet.convert.from_cifar_option_a` and
writes keras_resnet/weights_data/akamaster_cifar10_resnet{depth}.weights.h5:
Keras's `.weights.h5` layout (so `model.load_weights` reads it too) with
the weights in float16 and only the layers that have weights, written
deterministically (no timestamps), so the same checkpoint gives the same
file and the same sha256. Paste the printed sha256 and errors into
keras_resnet/presets.py.

`--zoo-run=DIR` instead exports a finished zoo.train run (the zoo_cifar10
presets): the net inside DIR/model.keras as
keras_resnet/weights_data/zoo_cifar10_resnet{depth}.weights.h5 (float32:
their first BN layers' variances overflow float16) and its per-pixel training mean as zoo_cifar10_resnet{depth}_mean.npy
(float32, 32x32x3), the preprocessing the preset declares.

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
from keras_resnet import convert, downloads, presets  # noqa: E402

DATA = REPO.parent / "shared" / "data"
DEPTHS = (20, 32, 44, 56)


def checkpoint_path(depth):
    (path,) = glob.glob(str(DATA / "akamaster_cifar10" / f"resnet{depth}-*.th"))
    return path


def save_weights(model, path, dtype=np.float16):
    """Writes `model`'s weights as a float16 (or `dtype`) `.weights.h5`, deterministically."""
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
                        if dtype == np.float16 and np.abs(data).max(initial=0) > np.finfo(np.float16).max:
                            raise ValueError(f"{name} does not fit in float16 (max {np.abs(data).max():.3g})")
                        data = data.astype(dtype)
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


def export_zoo_run(workdir, out, measure):
    """Writes a finished zoo ResNet run's net (float32) and per-pixel mean as preset files."""
    from zoo import model as model_lib
    from zoo import run

    workdir = run.directory(workdir)
    recipe, _ = run.load_recipe(workdir)
    if recipe.family != "cifar" or recipe.plain or recipe.classes != 10:
        raise SystemExit(
            f"--zoo-run takes a CIFAR-10 ResNet run; {workdir} holds {recipe.name} "
            f"(family={recipe.family}, plain={recipe.plain}, classes={recipe.classes})."
        )
    depth = recipe.depth
    model = run.load_model(workdir)
    net = keras_resnet.architecture_of(model).net
    weights_path = out / f"zoo_cifar10_resnet{depth}.weights.h5"
    # float32: nets trained on raw 0..255 pixels minus the mean have BN
    # moving variances beyond float16's range (65504) in their first layers.
    save_weights(net, weights_path, dtype=np.float32)
    mean = np.asarray(model.get_layer(model_lib.MEAN_LAYER).mean, np.float32).reshape(32, 32, 3)
    mean_path = out / f"zoo_cifar10_resnet{depth}_mean.npy"
    np.save(mean_path, mean)
    for path in (weights_path, mean_path):
        print(f"{depth}: {path.name} {os.path.getsize(path)} bytes sha256 {downloads.file_sha256(path)}")
    if not measure:
        return
    head = np.load(DATA / "cifar10_original_test_head.npz")
    jpeg = decode_test_images(DATA / "cifar10_jpeg.tar.gz")
    print(f"float16 preset vs the run's float32 {run.MODEL}: original 846, JPEG 10k, top-1 changes (JPEG)")
    rows = []
    for candidate in (_shipped_zoo(depth), model):
        e_head, _ = error(candidate, head["x"], head["y"])
        e_jpeg, p = error(candidate, *jpeg)
        rows.append((e_head, e_jpeg, np.argmax(p, -1)))
    flips = int(np.sum(rows[0][2] != rows[1][2]))
    print(f"{depth} | {rows[0][0]:.2f} {rows[0][1]:.2f} | {rows[1][0]:.2f} {rows[1][1]:.2f} | {flips}")


def _shipped_zoo(depth):
    """The zoo_cifar10 preset built from the files just written (sha256 not yet pinned)."""
    net = keras_resnet.ResNet(depth)
    net.load_weights(pathlib.Path(presets.WEIGHTS_DATA) / f"zoo_cifar10_resnet{depth}.weights.h5")
    mean = np.load(pathlib.Path(presets.WEIGHTS_DATA) / f"zoo_cifar10_resnet{depth}_mean.npy")
    raw = keras.Input((32, 32, 3))
    return keras.Model(raw, net(keras_resnet.Preprocessing({"mean": mean})(raw)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--zoo-run", help="export this finished zoo.train run instead")
    args = parser.parse_args()
    out = pathlib.Path(presets.WEIGHTS_DATA)
    out.mkdir(exist_ok=True)
    if args.zoo_run:
        return export_zoo_run(args.zoo_run, out, args.measure)
    converted = {}
    for depth in DEPTHS:
        converted[depth] = convert.from_cifar_option_a(checkpoint_path(depth))
        path = out / f"akamaster_cifar10_resnet{depth}.weights.h5"
        save_weights(converted[depth], path)
        print(f"{depth}: {path.name} {os.path.getsize(path)} bytes sha256 {downloads.file_sha256(path)}")
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
