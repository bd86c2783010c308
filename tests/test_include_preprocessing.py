"""ResNet(..., include_preprocessing=True) puts the weights' preprocessing inside."""

import keras
import numpy as np
import pytest

import keras_resnet


def test_include_preprocessing_follows_the_preset(monkeypatch):
    monkeypatch.setattr(keras_resnet.weights, "_load_preset", lambda model, preset: None)
    model = keras_resnet.ResNet(18, weights="torchvision_imagenet", include_preprocessing=True,
                                include_top=False, input_shape=(64, 64, 3))
    layer = model.get_layer("preprocessing")
    assert layer.get_config()["mode"] == "torch"
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    inner = keras.Model(model.input, layer.output)
    np.testing.assert_allclose(
        inner.predict(x, verbose=0),
        keras.applications.imagenet_utils.preprocess_input(x.copy(), mode="torch"), atol=1e-4)


def test_include_preprocessing_needs_a_preset():
    with pytest.raises(ValueError, match="must be a preset name.*Received weights=None"):
        keras_resnet.ResNet(20, include_preprocessing=True)
