"""A NaN or infinite input gives NaN outputs: predict, fit and every export.

On TensorFlow with oneDNN (the default on x86 CPUs), Grappler fuses a ReLU
that follows FusedBatchNormV3 into oneDNN's conv or BN kernel, whose ReLU
maps NaN to 0; TF's MaxPool kernel skips NaN. Either hides a NaN image
behind a confident class. These tests hold every path to Keras's semantics:
a non-finite pixel makes that image's outputs NaN, and only that image's.
"""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import runtimes
from keras_resnet import serving
from reference import images_with_nan

from conftest import deploy_runtime, python_env

TF = keras.backend.backend() == "tensorflow"


def check_rows(outputs):
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    finite = np.isfinite(outputs).all(axis=1).tolist()
    assert finite == [False, False, False, True], finite


@pytest.mark.parametrize("depth, size", [(20, 32), (18, 64)])
def test_predict_propagates_nan(depth, size):
    model = keras_resnet.ResNet(depth, input_shape=(size, size, 3), classes=10)
    check_rows(model.predict(images_with_nan((size, size, 3)), verbose=0))


def test_single_nan_pixels_always_reach_the_output():
    # The ImageNet stem's max-pool: TF's MaxPool skips NaN, so a NaN pixel
    # survived or vanished depending on where it was.
    model = keras_resnet.ResNet(18, input_shape=(64, 64, 3), classes=10)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (16, 64, 64, 3)).astype("float32")
    for i, (row, col, channel) in enumerate(zip(*(rng.integers(0, n, 16) for n in (64, 64, 3)))):
        x[i, row, col, channel] = np.nan
    assert not np.isfinite(model.predict(x, verbose=0)).all(axis=1).any()


def test_fit_on_a_nan_batch_reports_a_nan_loss():
    keras.utils.set_random_seed(0)
    model = keras_resnet.ResNet(8)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x = np.full((4, 32, 32, 3), np.nan, "float32")
    history = model.fit(x, np.zeros(4, "int32"), epochs=1, verbose=0)
    assert np.isnan(history.history["loss"][0])


@pytest.mark.parametrize("training", [False, True])
def test_conv_bn_relu_propagates_nan_like_keras(training):
    # The pattern Grappler fused: conv -> BN -> ReLU, in a compiled graph.
    def net(bn):
        inputs = keras.Input((6, 6, 4))
        x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
        return keras.Model(inputs, keras.layers.ReLU()(bn(x)))

    ours, theirs = net(keras_resnet.FusedBatchNormalization()), net(keras.layers.BatchNormalization())
    theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 4)).astype("float32")
    x[0, 2, 2, 1] = np.nan
    if training:
        for model in (ours, theirs):
            model.compile(keras.optimizers.SGD(0.0), "mse")
        outputs = [m.train_on_batch(x, np.zeros((2, 6, 6, 8), "float32")) for m in (ours, theirs)]
        assert np.isnan(outputs[0]) and np.isnan(outputs[1])
    else:
        a, b = ours.predict(x, verbose=0), theirs.predict(x, verbose=0)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        assert np.isnan(a).any()


def test_nan_propagating_max_pool_matches_max_pool_on_finite_input():
    import tensorflow as tf

    pool = keras_resnet.NaNPropagatingMaxPooling2D(3, strides=2, name="p")
    reference = keras.layers.MaxPooling2D(3, strides=2)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, theirs = pool(x), reference(x)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(tape.gradient(ours, x).numpy(), tape.gradient(theirs, x).numpy())
    with_nan = x.numpy()
    with_nan[0, 4, 4, 1] = np.nan
    out = pool(with_nan).numpy()
    # Pixel (4, 4) lies in the windows of outputs 1 and 2 on each axis.
    assert np.isnan(out[0, 1:3, 1:3, 1]).all() and np.isfinite(np.delete(out[0], 1, axis=-1)).all()
    config = keras.saving.serialize_keras_object(pool)
    assert config["registered_name"] == "keras_resnet>NaNPropagatingMaxPooling2D"


@pytest.mark.skipif(not TF, reason="SavedModel and TFLite export need TensorFlow")
def test_every_export_propagates_nan(tmp_path):
    import tensorflow as tf

    model = keras_resnet.ResNet(8)
    x = images_with_nan((32, 32, 3))
    for name, fold in (("plain", False), ("folded", True)):
        path = serving.export(model, tmp_path / name, fold_batchnorm=fold, endpoints=("serve",))
        loaded = tf.saved_model.load(path)  # Kept alive while its function runs.
        outputs = loaded.serve(tf.constant(x))
        check_rows(outputs["probabilities"])
        assert np.isnan(outputs["top_k_scores"].numpy()[0]).all()
    # The other formats, in their own runtimes: tests/test_export_formats.py.
    deploy_runtime("ai_edge_litert.interpreter")
    path = keras_resnet.export_tflite(model, tmp_path / "m.tflite")
    check_rows(runtimes.load(path)(x))


@pytest.mark.skipif(not TF, reason="export needs TensorFlow")
def test_export_refuses_non_finite_weights(tmp_path):
    model = keras_resnet.ResNet(8)
    bn = model.get_layer("conv1_bn")
    bn.moving_variance.assign(np.full(bn.moving_variance.shape, np.nan, "float32"))
    with pytest.raises(ValueError, match=r"NaN or infinite values \(conv1_bn/moving_variance\).*nothing was exported"):
        serving.export(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_nan_propagates_under_jax_and_pytorch(backend):
    """predict, evaluate and fit keep NaN, and a diverging zoo run names its step.

    Under JAX on CPUs, XLA's YNNPACK reduction fusions dropped NaN (the
    global average pool after a ReLU, the loss's clip before the batch
    mean): keras_resnet/xla_cpu.py turns them off. tests/nonfinite_check.py
    lists the checks; it runs in its own process per backend.
    """
    here = pathlib.Path(__file__).parent
    env = python_env(KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", XLA_FLAGS="")
    result = subprocess.run(
        [sys.executable, str(here / "nonfinite_check.py")],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"OK nonfinite {backend}" in result.stdout
