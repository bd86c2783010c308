"""Config, .keras and .weights.h5 round trips, and loading weights files."""

import keras
import numpy as np
import pytest

import keras_resnet


def images(n=2, size=32, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, channels)).astype("float32")


def randomize_bn(model, seed=0):
    """Non-trivial BN statistics, so that a lost moving mean shows up."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("kwargs", [{"shortcut": "A"}, {"shortcut": "C"}, {"plain": True}])
def test_config_round_trip(kwargs):
    model = randomize_bn(keras_resnet.ResNet(8, **kwargs))
    clone = keras_resnet.ResNetModel.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    # keras.Model.from_config builds a plain functional model: the same
    # graph, without the architecture record only ResNetModel keeps.
    plain = keras.Model.from_config(model.get_config())
    assert plain.get_config() == {k: v for k, v in model.get_config().items() if k != "architecture"}
    clone.set_weights(model.get_weights())
    x = images()
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    model = randomize_bn(keras_resnet.ResNet(14))  # option A: a custom layer
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert not isinstance(loaded, keras_resnet.DeepResNet)  # a stock functional model
    x = images()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_weights_h5_round_trip_and_loading_by_argument(tmp_path):
    model = randomize_bn(keras_resnet.ResNet(8, shortcut="B"))
    path = tmp_path / "r8.weights.h5"
    model.save_weights(path)
    x = images()
    expected = model.predict(x, verbose=0)

    loaded = keras_resnet.ResNet(8, shortcut="B", weights=str(path))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)

    backbone = keras_resnet.ResNet(8, shortcut="B", weights=path, include_top=False, pooling="avg")
    features = model.get_layer("avg_pool").output
    np.testing.assert_allclose(
        backbone.predict(x, verbose=0),
        keras.Model(model.input, features).predict(x, verbose=0),
        atol=1e-6,
    )


def test_keras_file_loads_by_name_into_a_backbone(tmp_path):
    model = randomize_bn(keras_resnet.ResNet(8))
    path = tmp_path / "r8.keras"
    model.save(path)
    x = images()
    backbone = keras_resnet.ResNet(8, weights=str(path), include_top=False)
    reference = keras.Model(model.input, model.get_layer("conv4_block1_out").output)
    np.testing.assert_allclose(backbone.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-6)
    # Weights do not depend on the input size, so they load into any size.
    larger = keras_resnet.ResNet(8, weights=str(path), include_top=False, input_shape=(48, 48, 3))
    for a, b in zip(larger.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_channel_mismatch_with_loaded_weights(tmp_path):
    path = tmp_path / "rgb.weights.h5"
    keras_resnet.ResNet(8).save_weights(path)
    with pytest.raises(ValueError, match=r"saved for 3 input channels.*takes 1 channels"):
        keras_resnet.ResNet(8, input_shape=(32, 32, 1), weights=str(path))
    keras_path = tmp_path / "rgb.keras"
    keras_resnet.ResNet(8).save(keras_path)
    with pytest.raises(ValueError, match=r"saved for 3 input channels.*takes 4 channels"):
        keras_resnet.ResNet(8, input_shape=(32, 32, 4), weights=str(keras_path))


def test_class_and_architecture_mismatch_with_loaded_weights(tmp_path):
    path = tmp_path / "r8.weights.h5"
    keras_resnet.ResNet(8).save_weights(path)
    with pytest.raises(ValueError, match=r"classifier for 10 classes.*classes=5.*include_top=False"):
        keras_resnet.ResNet(8, classes=5, weights=str(path))
    with pytest.raises(ValueError, match=r"different architecture"):
        keras_resnet.ResNet(14, weights=str(path))
    with pytest.raises(ValueError, match=r"different architecture"):
        keras_resnet.ResNet(8, shortcut="C", weights=str(path))


def test_failed_load_leaves_the_file_alone(tmp_path):
    path = tmp_path / "r8.weights.h5"
    keras_resnet.ResNet(8).save_weights(path)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        keras_resnet.ResNet(14, weights=str(path))
    assert path.read_bytes() == before
