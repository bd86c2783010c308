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


# The module each format's runtime is imported from (the deploy extra's, but TensorFlow).
RUNTIME_MODULES = {"tf_saved_model": "tensorflow", "onnx": "onnxruntime",
                   "litert": "ai_edge_litert.interpreter", "openvino": "openvino"}


def export_each(model, root, files):
    """{format: path}: `model` exported to each format of `files` ({format: file name})
    in `root`; a format whose runtime is missing skips the test (conftest.deploy_runtime)."""
    import keras_resnet
    from conftest import deploy_runtime

    paths = {}
    for fmt, name in files.items():
        deploy_runtime(RUNTIME_MODULES[fmt])
        paths[fmt] = keras_resnet.export(model, root / name, format=fmt)
    return paths
