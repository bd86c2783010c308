"""fold_batchnorm: NaN stays NaN in the folded model; unfoldable BN statistics are refused.

On TensorFlow with oneDNN (this project's CPUs), Grappler fuses a folded
conv's Conv2D + BiasAdd + Relu into one oneDNN kernel whose ReLU maps NaN to
0, so the folded model's `predict` (a compiled graph) gave an image with a
NaN pixel finite probabilities while a direct call gave NaN. A BN whose
variance + epsilon is not positive, or whose statistics are not finite, was
folded into NaN weights without a word.
"""

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import layers
from keras_resnet.fold import fold_batchnorm

from helpers_export import randomize_batchnorm
from reference import images_with_nan


def rows_finite(outputs):
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    return np.isfinite(outputs).all(axis=1).tolist()


@pytest.mark.parametrize(
    "args",
    [dict(depth=8, input_shape=(8, 8, 3)), dict(depth=18, input_shape=(32, 32, 3), classes=10)],
    ids=["cifar_A", "imagenet_B"],
)
def test_folded_predict_propagates_nan(args):
    # images_with_nan: row 0 all NaN, row 1 one NaN pixel, row 2 one inf pixel, row 3 clean.
    model = randomize_batchnorm(keras_resnet.ResNet(**args))
    folded = fold_batchnorm(model)
    x = images_with_nan(args["input_shape"]) / 255.0
    assert rows_finite(model.predict(x, verbose=0)) == [False, False, False, True]
    assert rows_finite(folded.predict(x, verbose=0)) == [False, False, False, True]
    np.testing.assert_allclose(
        folded.predict(x[3:], verbose=0), model.predict(x[3:], verbose=0), atol=1e-5, rtol=0)


def test_folded_convs_are_folded_conv2d_and_round_trip(tmp_path):
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="c")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="bn")(x))
    model = randomize_batchnorm(keras.Model(inputs, x))
    folded = fold_batchnorm(model)
    assert type(folded.get_layer("c")) is layers.FoldedConv2D
    path = tmp_path / "folded.keras"
    folded.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer("c")) is layers.FoldedConv2D
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype("float32")
    x[0, 1, 1, 0] = np.nan
    for m in (folded, loaded):
        out = m.predict(x, verbose=0)
        assert rows_finite(out) == [False, True]
        np.testing.assert_allclose(out[1], model.predict(x, verbose=0)[1], atol=1e-5, rtol=0)


def one_bn_model():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="the_bn")(x)
    return keras.Model(inputs, keras.layers.ReLU()(x))


@pytest.mark.parametrize(
    "index, value, expected",
    [
        (3, -1.0, r"'the_bn'.*moving_variance \+ epsilon must be > 0.*channel 1: moving_variance=-1\.0"),
        (3, -0.001, r"'the_bn'.*moving_variance \+ epsilon must be > 0.*channel 1"),
        (3, np.nan, r"'the_bn'.*moving_variance is not finite.*channel 1: nan"),
        (3, np.inf, r"'the_bn'.*moving_variance is not finite.*channel 1: inf"),
        (2, np.nan, r"'the_bn'.*moving_mean is not finite.*channel 1: nan"),
        (0, -np.inf, r"'the_bn'.*gamma is not finite.*channel 1: -inf"),
        (1, np.nan, r"'the_bn'.*beta is not finite.*channel 1: nan"),
    ],
    ids=["negative_variance", "variance_minus_epsilon", "nan_variance", "inf_variance",
         "nan_mean", "inf_gamma", "nan_beta"],
)
def test_unfoldable_statistics_are_refused(index, value, expected):
    model = one_bn_model()
    bn = model.get_layer("the_bn")
    weights = bn.get_weights()  # gamma, beta, moving_mean, moving_variance
    weights[index][1] = value
    bn.set_weights(weights)
    with pytest.raises(ValueError, match=expected):
        fold_batchnorm(model)


def test_folding_that_overflows_float32_is_refused():
    model = one_bn_model()
    bn = model.get_layer("the_bn")
    gamma, beta, mean, variance = bn.get_weights()
    gamma[0] = 3e38  # finite in float32; / sqrt(0 + 1e-3) is not
    bn.set_weights([gamma, beta, mean, np.zeros_like(variance)])
    model.get_layer("conv").set_weights([np.ones((1, 1, 2, 3), "float32")])
    with pytest.raises(ValueError, match=r"'the_bn' into 'conv'.*overflow float32"):
        fold_batchnorm(model)


def test_tiny_positive_variance_still_folds():
    # variance + epsilon > 0 is foldable even where the variance is 0.
    model = one_bn_model()
    bn = model.get_layer("the_bn")
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([gamma, beta, mean + 0.5, np.array([0.0, 1e-9, 2.0], "float32")])
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype("float32")
    np.testing.assert_allclose(
        fold_batchnorm(model).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4, rtol=0)
