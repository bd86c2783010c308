"""Preprocessing follows the weights, and matches keras.applications'."""

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import preprocessing
from keras_resnet import presets


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
    assert set(presets.MODES) == {"caffe", "torch", "rescale", "none"}


# The contract: raw RGB pixels 0..255. Outside that range, where the values
# are at hand (eager), the input is refused; NaN and infinities pass through,
# since a non-finite pixel gives NaN outputs (docs/guarantees.md, "NaN in gives NaN out").

@pytest.mark.parametrize("values, dtype, says", [
    ([65535, 1000], "uint16", r"values up to 65535.*16-bit"),           # 16-bit images
    ([65535.0, 1000.0], "float32", r"values up to 65535.*16-bit"),
    ([-128.0, 3.0], "float32", r"values down to -128.*already normalised"),  # negated, normalised
    ([300.0, np.nan], "float32", r"values up to 300"),                    # a NaN does not hide it
])
def test_pixels_outside_0_255_are_refused(values, dtype, says):
    x = np.full((1, 4, 4, 3), 100, dtype)
    x.flat[: len(values)] = values
    for weights in ("cifar10", "imagenet"):
        with pytest.raises(ValueError, match=says):
            preprocessing.preprocess_input(x, weights=weights)


def test_non_finite_pixels_pass_and_give_non_finite_outputs():
    x = np.full((3, 4, 4, 3), 200.0, "float32")
    x[0, 0, 0, 0], x[1, 1, 1, 1], x[2, 2, 2, 2] = np.nan, np.inf, -np.inf
    out = preprocessing.preprocess_input(x, weights="cifar10")
    assert (~np.isfinite(out)).sum() == 3 and np.isfinite(out).sum() == out.size - 3


def test_preprocess_input_returns_numpy_for_numpy_input():
    # As keras.applications' preprocess_input does; tensors stay tensors.
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    out = preprocessing.preprocess_input(x, weights="imagenet")
    assert type(out) is np.ndarray and out.dtype == np.float32
    assert type(preprocessing.preprocess_input(x.tolist(), weights="imagenet")) is np.ndarray
    tensor = keras.ops.convert_to_tensor(x)
    assert not isinstance(preprocessing.preprocess_input(tensor, weights="imagenet"), np.ndarray)


def test_a_model_with_preprocessing_refuses_out_of_range_pixels_when_called_eagerly():
    model = keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True)
    raw = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert np.isfinite(keras.ops.convert_to_numpy(model(raw))).all()
    for bad, says in ((raw * 257, "values up to"), (raw / 255 - 0.5, "values down to")):
        with pytest.raises(ValueError, match=f"raw RGB pixels in 0..255.*{says}"):
            model(bad)
