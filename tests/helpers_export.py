"""Small models and inputs that the export test modules share."""

import keras
import numpy as np


def randomize_batchnorm(model, seed=0):
    """Gives every BN non-trivial statistics, so folding has work to do."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, n), rng.normal(0.0, 0.2, n),
                rng.normal(0.0, 0.2, n), rng.uniform(0.5, 2.0, n),
            ])
    return model


def pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype("uint8")


def tiny_model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
