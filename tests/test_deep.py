"""ResNet-1202: builds, trains a step, saves to .keras and loads back."""

import sys

import keras
import numpy as np
import pytest

import keras_resnet

CIFAR_1202_PARAMS = 19_421_274


@pytest.mark.slow
def test_resnet1202_builds_trains_saves_and_loads(tmp_path):
    limit = sys.getrecursionlimit()
    model = keras_resnet.ResNet(1202)
    assert sys.getrecursionlimit() == limit  # the headroom is scoped
    assert isinstance(model, keras_resnet.DeepResNet)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == CIFAR_1202_PARAMS
    assert sum(isinstance(l, keras.layers.Add) for l in model.layers) == 600

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    y = np.arange(4)
    # Eager: TensorFlow's graph optimisation of a 7,000-layer train step
    # alone takes minutes on 2 cores (see BENCHMARKS.md).
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", run_eagerly=True)
    before = model.get_layer("conv4_block200_2_conv").get_weights()[0].copy()
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert not np.array_equal(before, model.get_layer("conv4_block200_2_conv").get_weights()[0])

    path = tmp_path / "resnet1202.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # plain Keras API, default limit
    assert isinstance(loaded, keras_resnet.DeepResNet)
    assert sys.getrecursionlimit() == limit
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
