"""FusedBatchNormalization computes what keras.layers.BatchNormalization does.

On TensorFlow it takes the fused kernel; these tests hold it to Keras's
layer in training and inference, for outputs, moving statistics and
gradients, with non-trivial statistics, and check where it falls back.
"""

import keras
import numpy as np
import pytest

from keras_resnet import FusedBatchNormalization

TF = keras.backend.backend() == "tensorflow"


def pair(**kwargs):
    ours = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    theirs = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    return ours, theirs


def trained_like(layers, channels, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.3, channels),
               rng.normal(0, 0.5, channels), rng.uniform(0.5, 2.0, channels)]
    for layer in layers:
        layer.set_weights([w.astype("float32") for w in weights])


def images(shape=(4, 5, 5, 6), seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * 2 + 0.7).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("training", [True, False])
def test_outputs_and_moving_statistics_match_keras(training):
    ours, theirs = pair()
    x = images()
    ours.build(x.shape), theirs.build(x.shape)
    trained_like([ours, theirs], 6)
    for step in range(3):
        batch = x + step
        np.testing.assert_allclose(
            numpy(ours(batch, training=training)), numpy(theirs(batch, training=training)),
            atol=2e-5, rtol=1e-5,
        )
    np.testing.assert_allclose(numpy(ours.moving_mean), numpy(theirs.moving_mean), atol=1e-6)
    np.testing.assert_allclose(
        numpy(ours.moving_variance), numpy(theirs.moving_variance), rtol=1e-5
    )
    if training:  # the statistics moved, and not by the unbiased variance
        assert not np.allclose(numpy(ours.moving_variance), numpy(trained_like_variance()))


def trained_like_variance():
    return np.random.default_rng(0).uniform(0.5, 2.0, 6)  # as set by trained_like


@pytest.mark.skipif(not TF, reason="gradients are compared with tf.GradientTape")
def test_gradients_match_keras():
    import tensorflow as tf

    ours, theirs = pair()
    x = tf.constant(images())
    ours.build(x.shape), theirs.build(x.shape)
    trained_like([ours, theirs], 6)
    # A random linear read-out: sum(y**2) would have zero gradient in x.
    weights = tf.constant(np.random.default_rng(2).normal(size=x.shape).astype("float32"))
    grads = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * weights)
        grads.append(tape.gradient(loss, [x, layer.gamma.value, layer.beta.value]))
    for a, b in zip(*grads):
        scale = np.abs(numpy(b)).max()
        np.testing.assert_allclose(numpy(a), numpy(b), atol=1e-5 * scale)


@pytest.mark.skipif(not TF, reason="the fused kernel is TensorFlow's")
def test_fused_kernel_is_what_runs():
    import tensorflow as tf

    layer = FusedBatchNormalization()
    x = images()
    layer.build(x.shape)
    for training in (True, False):
        graph = tf.function(lambda t: layer(t, training=training)).get_concrete_function(
            tf.TensorSpec(x.shape, "float32")
        ).graph
        types = {op.type for op in graph.get_operations()}
        assert "FusedBatchNormV3" in types, types


def test_frozen_layer_normalises_with_moving_statistics():
    ours, theirs = pair()
    x = images()
    ours.build(x.shape), theirs.build(x.shape)
    trained_like([ours, theirs], 6)
    ours.trainable = theirs.trainable = False
    np.testing.assert_allclose(
        numpy(ours(x, training=True)), numpy(theirs(x, training=True)), atol=2e-5
    )
    np.testing.assert_array_equal(numpy(ours.moving_mean), numpy(theirs.moving_mean))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_matches_keras(policy):
    keras.config.set_dtype_policy(policy)
    try:
        ours, theirs = pair()
    finally:
        keras.config.set_dtype_policy("float32")
    x = keras.ops.cast(images(), ours.compute_dtype)
    ours.build(x.shape), theirs.build(x.shape)
    trained_like([ours, theirs], 6)
    a, b = ours(x, training=True), theirs(x, training=True)
    assert keras.backend.standardize_dtype(a.dtype) == ours.compute_dtype
    # Both compute the statistics in float32; outputs agree to the
    # precision of the 16-bit output.
    np.testing.assert_allclose(
        numpy(keras.ops.cast(a, "float32")), numpy(keras.ops.cast(b, "float32")),
        atol=0.05, rtol=0.02,
    )
    np.testing.assert_allclose(numpy(ours.moving_mean), numpy(theirs.moving_mean), atol=1e-3)


def test_other_axes_fall_back_to_keras():
    ours, theirs = pair(axis=1)
    x = images((3, 6, 4, 5))
    ours.build(x.shape), theirs.build(x.shape)
    np.testing.assert_array_equal(
        numpy(ours(x, training=True)), numpy(theirs(x, training=True))
    )


def test_config_round_trip_and_registration():
    layer = FusedBatchNormalization(momentum=0.8, epsilon=1e-4, center=False, name="bn")
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == "keras_resnet>FusedBatchNormalization"
    clone = keras.saving.deserialize_keras_object(config)
    assert isinstance(clone, FusedBatchNormalization)
    assert (clone.momentum, clone.epsilon, clone.center) == (0.8, 1e-4, False)
    x = images()
    clone.build(x.shape)
    out = numpy(clone(x, training=True))  # center=False: no beta, still fused
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)
