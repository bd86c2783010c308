"""The preset registry (keras_resnet.registry): register_preset, its errors,
and JSON registry files."""

import json
import shutil

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import preprocessing
from keras_resnet import registry as registry_lib

from helpers_presets import isolated, sha256  # noqa: F401 (isolated: autouse fixture)


def test_zoo_style_keras_file_registers_as_a_preset(tmp_path):
    # A zoo model.keras holds its preprocessing (here a Normalization with
    # weights) in front of the net; the preset loads the net's weights.
    inputs = keras.Input((32, 32, 3), name="raw")
    norm = keras.layers.Normalization(mean=[125.3, 123.0, 113.9], variance=[63.0**2, 62.1**2, 66.7**2])
    trained = keras_resnet.ResNet(20, input_tensor=norm(inputs))
    path = tmp_path / "model.keras"
    trained.save(path)
    stats = {"mean": [125.3, 123.0, 113.9], "std": [63.0, 62.1, 66.7]}
    with pytest.raises(ValueError, match="'cifar10' is an alias.*e.g. 'my_cifar10'"):
        registry_lib.register_preset("cifar10", path, depth=20, preprocessing=stats)
    preset = registry_lib.register_preset(
        "my_cifar10", path, depth=20, recipe="cifar10_resnet20", top1=0.5, preprocessing=stats)
    assert preset.file_hash == sha256(path)
    model = keras_resnet.ResNet(20, weights="my_cifar10")
    net_layers = [layer for layer in trained.layers if layer.name != norm.name]
    expected = [w for layer in net_layers for w in layer.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), expected))
    x = np.full((1, 32, 32, 3), 255.0, "float32")
    np.testing.assert_allclose(
        preprocessing.preprocess_input(x, weights="my_cifar10")[0, 0, 0],
        (255 - np.array([125.3, 123.0, 113.9])) / np.array([63.0, 62.1, 66.7]), rtol=1e-5)

    # The file changes after registration: refused.
    shutil.copy(path, tmp_path / "copy.keras")
    with open(path, "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="changed since it was registered"):
        keras_resnet.ResNet(20, weights="my_cifar10")


def test_register_preset_errors(tmp_path):
    with pytest.raises(ValueError, match="needs its `sha256`"):
        registry_lib.register_preset("x", "https://example.com/a.weights.h5", depth=20)
    path = tmp_path / "a.weights.h5"
    keras_resnet.ResNet(8).save_weights(str(path))
    with pytest.raises(ValueError, match="not the given"):
        registry_lib.register_preset("x", path, depth=8, sha256="0" * 64)
    with pytest.raises(ValueError, match="alias"):
        registry_lib.register_preset("imagenet", path, depth=8)
    registry_lib.register_preset("x", path, depth=8)
    with pytest.raises(ValueError, match="overwrite=True"):
        registry_lib.register_preset("x", path, depth=8)
    with pytest.raises(ValueError, match="Preprocessing mode must be"):
        registry_lib.register_preset("y", path, depth=8, preprocessing="bgr")
    with pytest.raises(ValueError, match="64 chars"):
        registry_lib.pin_hash("torchvision_imagenet_v2", 50, "abc")
    with pytest.raises(ValueError, match="already pinned to 694f673d"):
        registry_lib.pin_hash("torchvision_imagenet", 18, "0" * 64)


def test_registry_file(tmp_path):
    keras_resnet.ResNet(8).save_weights(str(tmp_path / "r8.weights.h5"))
    registry = tmp_path / "presets.json"
    registry.write_text(json.dumps([{
        "name": "my_cifar10", "path": "r8.weights.h5", "depth": 8,
        "recipe": "cifar10_resnet8", "top1": 0.87, "preprocessing": "rescale",
    }]))
    (preset,) = registry_lib.load_registry(registry)
    assert (preset.recipe, preset.top1, preset.path) == (
        "cifar10_resnet8", 0.87, str(tmp_path / "r8.weights.h5"))
    assert preset.file_hash == sha256(tmp_path / "r8.weights.h5")
    keras_resnet.ResNet(8, weights="my_cifar10")
    registry.write_text(json.dumps([{"name": "x", "depth": 8}]))
    with pytest.raises(ValueError, match="lacks 'path'"):
        registry_lib.load_registry(registry)
