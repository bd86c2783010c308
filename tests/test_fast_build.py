"""keras_resnet.fast_build: fast initialisation that leaves no trace.

The build-time stand-ins must give the same distributions as the Keras
initializers they stand for, honour `keras.utils.set_random_seed`, and be
gone from every config once the model exists.
"""

import json

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import fast_build


def test_configs_name_plain_keras_initializers_only():
    model = keras_resnet.ResNet(8, shortcut="B")
    bn = model.get_layer("conv2_block1_1_bn").get_config()
    assert [bn[k]["class_name"] for k in fast_build.INITIALIZER_ATTRIBUTES[1:]] == [
        "Ones", "Zeros", "Zeros", "Ones"
    ]
    conv = model.get_layer("conv3_block1_0_conv").get_config()["kernel_initializer"]
    assert conv["class_name"] == "VarianceScaling"
    text = json.dumps(model.get_config())
    assert "fast_build" not in text and "HeNormal" not in text and "Fill" not in text
    for layer in model.layers:
        for attribute in fast_build.INITIALIZER_ATTRIBUTES:
            assert not isinstance(
                getattr(layer, attribute, None), fast_build._BuildInitializer
            ), (layer.name, attribute)


def test_saved_model_reloads_with_safe_mode(tmp_path):
    model = keras_resnet.ResNet(8, shortcut="B")
    path = str(tmp_path / "b.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype="float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(loaded(x))
    )


def test_batchnorm_starts_at_keras_defaults():
    model = keras_resnet.ResNet(8)
    bn = model.get_layer("conv2_block1_2_bn")
    for variable, value in [(bn.gamma, 1), (bn.beta, 0), (bn.moving_mean, 0), (bn.moving_variance, 1)]:
        array = keras.ops.convert_to_numpy(variable)
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, np.full((16,), value, "float32"))


def kernels(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights if w.path.endswith("_conv/kernel")]


def test_set_random_seed_makes_builds_reproducible():
    keras.utils.set_random_seed(7)
    first = kernels(keras_resnet.ResNet(8))
    keras.utils.set_random_seed(7)
    second = kernels(keras_resnet.ResNet(8))
    third = kernels(keras_resnet.ResNet(8))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not any(np.array_equal(a, c) for a, c in zip(first, third))


def test_he_normal_draws_the_papers_distribution():
    init = fast_build.HeNormal()
    values = init((3, 3, 256, 512), dtype="float32")
    assert values.dtype == np.float32
    std = (2 / (3 * 3 * 256)) ** 0.5
    assert values.mean() == pytest.approx(0, abs=std / 100)
    assert values.std() == pytest.approx(std, rel=0.01)
    # Untruncated: a 1.2M-draw Gaussian has values beyond 2 sigma (~4.6%).
    assert 0.04 < np.mean(np.abs(values) > 2 * std) < 0.052
    assert init.get_config() == init.standard.get_config()


def test_full_bfloat16_policy_builds_bfloat16_variables():
    keras.config.set_dtype_policy("bfloat16")
    try:
        model = keras_resnet.ResNet(8)
    finally:
        keras.config.set_dtype_policy("float32")
    conv = model.get_layer("conv1_conv")
    assert keras.backend.standardize_dtype(conv.kernel.dtype) == "bfloat16"
    assert float(keras.ops.std(keras.ops.cast(conv.kernel, "float32"))) > 0


def test_variable_paths_keep_layer_names():
    model = keras_resnet.ResNet(8)
    paths = [w.path for w in model.weights]
    assert "conv2_block1_1_conv/kernel" in paths
    assert "conv2_block1_1_bn/moving_variance" in paths
    assert len(set(paths)) == len(paths)


def test_fill_refuses_other_constants():
    with pytest.raises(ValueError, match="Received value=0.5"):
        fast_build.Fill(0.5)


def test_gc_state_is_restored_even_on_error():
    import gc

    assert gc.isenabled()
    with pytest.raises(ValueError):
        # Too small for the total stride of 4: raised while building inputs.
        keras_resnet.ResNet(8, input_shape=(2, 2, 3))
    assert gc.isenabled()
    gc.disable()
    try:
        keras_resnet.ResNet(8)
        assert not gc.isenabled()
    finally:
        gc.enable()
