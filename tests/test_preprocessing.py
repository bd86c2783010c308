"""Preprocessing follows the weights, and matches keras.applications'."""

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import preprocessing


@pytest.mark.parametrize("weights,mode", [
    ("imagenet", "caffe"),
    ("keras_applications_imagenet", "caffe"),
    ("torchvision_imagenet", "torch"),
    ("torchvision_imagenet_v2", "torch"),
])
def test_matches_keras_applications(weights, mode):
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = keras.applications.imagenet_utils.preprocess_input(x.copy(), mode=mode)
    got = keras.ops.convert_to_numpy(preprocessing.preprocess_input(x, weights=weights))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_channels_first_and_uint8():
    x = np.random.default_rng(1).integers(0, 256, (1, 3, 4, 4), dtype="uint8")
    got = keras.ops.convert_to_numpy(
        preprocessing.preprocess_input(x, weights="imagenet", data_format="channels_first"))
    expected = keras.applications.imagenet_utils.preprocess_input(
        x.astype("float32"), data_format="channels_first", mode="caffe")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_refuses_already_normalised_images():
    raw = np.random.default_rng(2).uniform(0, 255, (1, 8, 8, 3)).astype("float32")
    torch_normalised = preprocessing.preprocess_input(raw, weights="torchvision_imagenet")
    with pytest.raises(ValueError, match="looks already normalised.*'caffe'"):
        preprocessing.preprocess_input(torch_normalised, weights="imagenet")


def test_needs_a_known_preset():
    with pytest.raises(ValueError, match="Unknown preset 'caffe'"):
        preprocessing.preprocess_input(np.zeros((1, 4, 4, 3)), weights="caffe")
    with pytest.raises(TypeError):
        preprocessing.preprocess_input(np.zeros((1, 4, 4, 3)))  # weights is required
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        preprocessing.preprocess_input(np.zeros((1, 4, 4, 1)), weights="imagenet")


def test_layer_inside_a_model_survives_saving(tmp_path):
    inputs = keras.Input((32, 32, 3))
    x = preprocessing.preprocessing_layer("torchvision_imagenet")(inputs)
    outputs = keras_resnet.ResNet(8, input_tensor=x).output
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("preprocessing").get_config()["mode"] == "torch"
    x = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert set(preprocessing.MODES) == {"caffe", "torch", "rescale", "none"}
