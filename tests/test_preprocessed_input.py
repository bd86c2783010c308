"""A model built with preset weights refuses input its weights never saw (issue 29 item 6).

`ResNet(20, weights="cifar10")` takes images preprocessed as akamaster's
("torch": x / 255 minus ImageNet's mean, over its std, about -2.1..2.6);
raw pixels 0..255 used to score chance, silently.
"""

import os
import pathlib

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import presets

from conftest import CIFAR_ORIGINAL_HEAD

# Set CIFAR10_ORIGINAL_HEAD where ../shared/data is elsewhere (a worktree).
HEAD = pathlib.Path(os.environ.get("CIFAR10_ORIGINAL_HEAD", CIFAR_ORIGINAL_HEAD))
BOTH_FIXES = r"include_preprocessing=True.*keras_resnet\.preprocess_input\(x, weights='cifar10'\)"


@pytest.fixture(scope="module")
def model():
    return keras_resnet.ResNet(20, weights="cifar10")  # shipped with the package: no download


@pytest.fixture(scope="module")
def raw():
    return np.load(HEAD)["x"][:4]  # real CIFAR-10 test images, uint8 RGB


@pytest.mark.realdata  # the first real test images, from ../shared/data
def test_raw_pixels_are_refused_naming_both_fixes(model, raw):
    for x in (raw, raw.astype("float32")):
        with pytest.raises(ValueError, match=rf"'resnet20' was built with weights='cifar10'.*"
                                             rf"raw 0\.\.255 pixels\?.*{BOTH_FIXES}"):
            model.predict(x, verbose=0)
    with pytest.raises(ValueError, match=BOTH_FIXES):
        model(raw.astype("float32"))  # an eager call
    # Either fix answers, and both answer the same.
    inside = keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True)
    preprocessed = keras_resnet.preprocess_input(raw, weights="cifar10")
    np.testing.assert_allclose(model.predict(preprocessed, verbose=0), inside.predict(raw, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_the_bound_is_what_0_and_255_become_plus_a_pixel_of_rounding(model):
    mean, std, _ = presets.preprocessing_parameters("torch")
    std = np.asarray(std, np.float32)
    white = keras_resnet.preprocess_input(np.full((1, 32, 32, 3), 255, "float32"), weights="cifar10")
    black = keras_resnet.preprocess_input(np.zeros((1, 32, 32, 3), "float32"), weights="cifar10")
    for edge, sign in ((white, 1), (black, -1)):
        model.predict(edge + sign * 0.5 / std, verbose=0)  # half a pixel of rounding: answered
        with pytest.raises(ValueError, match="which no preprocessed image has"):
            model.predict(edge + sign * 2 / std, verbose=0)  # two pixels beyond 0..255


@pytest.mark.realdata  # the first real test images, from ../shared/data
def test_nan_in_nan_out(model, raw):
    x = keras_resnet.preprocess_input(raw, weights="cifar10")
    x[1, 5, 5, 0] = np.nan
    probabilities = model.predict(x, verbose=0)
    assert np.isnan(probabilities[1]).all() and np.isfinite(probabilities[[0, 2, 3]]).all()


@pytest.mark.realdata  # the first real test images, from ../shared/data
def test_the_expectation_is_saved_with_the_model(model, raw, tmp_path):
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    with pytest.raises(ValueError, match=BOTH_FIXES):
        loaded.predict(raw, verbose=0)


@pytest.mark.realdata  # the first real test images, from ../shared/data
def test_a_per_pixel_mean_is_checked_pixel_by_pixel(raw):
    model = keras_resnet.ResNet(20, weights="zoo_cifar10")  # subtracts the training split's mean image
    with pytest.raises(ValueError, match=r"weights='zoo_cifar10'.*subtracts a per-pixel mean"):
        model.predict(raw, verbose=0)
    model.predict(keras_resnet.preprocess_input(raw, weights="zoo_cifar10"), verbose=0)
