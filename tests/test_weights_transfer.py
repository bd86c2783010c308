"""examples/transfer_learning.py: pretrained beats scratch, and the CLI
with --weights=cifar10 (the shipped presets) works on an image folder.

The pretrained source is our own CIFAR ResNet-8, trained here for 3
epochs on 4000 images of 5 CIFAR-10 classes (airplane..deer) and registered as a preset.
The new task is the 5 other classes (dog..truck): 60 training images per
class, 100 validation images per class from the test split, so the tasks
share no class and no image.

The CLI test turns scikit-learn's handwritten digits into an image folder
and fine-tunes from the CIFAR-10 preset, as docs/pretrained-weights.md shows.
"""

import importlib.util
import json
import os
import pathlib

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import registry

REPO = pathlib.Path(__file__).resolve().parents[1]
PRETEXT = ("airplane", "automobile", "bird", "cat", "deer")
TASK = ("dog", "frog", "horse", "ship", "truck")


def _link_subset(src_root, dst_root, split_src, split_dst, classes, count):
    for name in classes:
        dst = dst_root / split_dst / name
        dst.mkdir(parents=True)
        for path in sorted((src_root / split_src / name).iterdir())[:count]:
            os.symlink(path, dst / path.name)


def _example():
    spec = importlib.util.spec_from_file_location("transfer_learning", REPO / "examples" / "transfer_learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.realdata
def test_finetuned_beats_scratch(cifar_root, tmp_path):
    pretext, task = tmp_path / "pretext", tmp_path / "task"
    _link_subset(cifar_root, pretext, "train", "train", PRETEXT, 800)
    _link_subset(cifar_root, task, "train", "train", TASK, 60)
    _link_subset(cifar_root, task, "test", "val", TASK, 100)

    # Pretrain our own CIFAR weights on the pretext classes.
    keras.utils.set_random_seed(0)
    train = keras.utils.image_dataset_from_directory(
        pretext / "train", image_size=(32, 32), batch_size=64, seed=0
    ).cache()  # decode the JPEGs once
    inputs = keras.Input((32, 32, 3))
    net = keras_resnet.ResNet(8, classes=5, input_tensor=keras.layers.Rescaling(1 / 255)(inputs))
    net.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = net.fit(train, epochs=3, verbose=2, shuffle=False)
    assert history.history["accuracy"][-1] > 0.4  # it learned something
    net.save(tmp_path / "pretext.keras")
    registry.register_preset(
        "cifar_pretext_test", tmp_path / "pretext.keras", depth=8, classes=5,
        preprocessing="rescale", recipe="test: 3 epochs on 5 classes")

    example = _example()
    common = dict(depth=8, image_size=32, batch_size=32, head_epochs=15,
                  finetune_epochs=5, lr=3e-3)
    try:
        pretrained = example.run(task, tmp_path / "out_pretrained",
                                 weights="cifar_pretext_test", **common)
    finally:
        del registry.PRESETS["cifar_pretext_test"]
    scratch = example.run(task, tmp_path / "out_scratch", weights=None,
                          preprocessing="rescale", **common)
    print("pretrained", pretrained, "scratch", scratch)
    assert pretrained["val_accuracy"] > scratch["val_accuracy"] + 0.05

    # The saved model takes raw pixels and reproduces the evaluation.
    model = keras.saving.load_model(tmp_path / "out_pretrained" / "model.keras")
    classes = json.loads((tmp_path / "out_pretrained" / "classes.json").read_text())
    assert classes == sorted(TASK)
    val = keras.utils.image_dataset_from_directory(
        task / "val", image_size=(32, 32), batch_size=100, shuffle=False, class_names=classes)
    correct = total = 0
    for images, labels in val:
        correct += int(np.sum(np.argmax(model.predict(images, verbose=0), -1) == labels.numpy()))
        total += len(labels)
    assert abs(correct / total - pretrained["val_accuracy"]) < 1e-6
    assert not [p for p in (tmp_path / "out_pretrained").iterdir() if "tmp" in p.name]


def _digits_folder(root, per_class_train=30, per_class_val=20):
    """scikit-learn's handwritten digits as an image folder (32x32 RGB PNGs)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(10):
        images = digits.images[digits.target == label]
        for split, chosen in (("train", images[:per_class_train]),
                              ("val", images[per_class_train:per_class_train + per_class_val])):
            folder = root / split / str(label)
            folder.mkdir(parents=True)
            for i, image in enumerate(chosen):
                pixels = np.uint8(np.round(image * 255 / 16))
                Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).convert("RGB").save(
                    folder / f"{i}.png")


@pytest.mark.slow
def test_cli_transfer_from_cifar10_weights(tmp_path, capsys):
    # As docs/pretrained-weights.md shows it: --weights=cifar10 takes the shipped akamaster
    # weights (no download), here on handwritten digits. The default depth
    # is 56 (0.70 here); 20 (0.61) keeps the test short.
    example = _example()
    assert example.defaults("cifar10") == (56, 32)
    assert example.defaults("imagenet") == (50, 224)
    _digits_folder(tmp_path / "digits")
    result = example.main([
        f"--data={tmp_path / 'digits'}", f"--out={tmp_path / 'out'}", "--weights=cifar10",
        "--depth=20", "--head_epochs=8", "--finetune_epochs=2", "--lr=3e-3"])
    assert (result["depth"], result["image_size"]) == (20, 32)
    assert '"val_accuracy"' in capsys.readouterr().out
    # 10 classes, 30 training images each: chance is 0.1.
    assert result["val_accuracy"] > 0.5, result
    assert keras.saving.load_model(tmp_path / "out" / "model.keras").output_shape == (None, 10)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_outputs_have_normal_permissions(tmp_path):
    # mkstemp makes files 0600; the zoo writes 0644 (under umask 022).
    example = _example()
    example._atomic_write(str(tmp_path), "classes.json", lambda p: open(p, "w").write("[]"))
    assert (tmp_path / "classes.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["classes.json"]


def test_cli_can_say_no_weights(tmp_path):
    # --weights=none trains from scratch (a baseline for the pretrained
    # runs); it was taken as a file name.
    example = _example()
    _digits_folder(tmp_path / "digits", per_class_train=4, per_class_val=2)
    result = example.main([
        f"--data={tmp_path / 'digits'}", f"--out={tmp_path / 'out'}", "--weights=none",
        "--depth=8", "--image_size=32", "--head_epochs=1", "--finetune_epochs=1"])
    assert (result["depth"], result["image_size"], result["weights"]) == (8, 32, None)
    for name in ("model.keras", "classes.json"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o666 & ~_umask()
