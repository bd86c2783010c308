"""The recipe's network with its preprocessing inside.

The saved model takes raw RGB pixels 0..255 (float or uint8): the first
layer subtracts the training split's per-pixel mean, so
`model.predict(raw_images)` needs no extra step.
"""

import keras
import numpy as np

import keras_resnet

MEAN_LAYER = "per_pixel_mean"


def build(recipe, mean, input_shape=None):
    """Builds the recipe's ResNet/plain net behind a mean-subtraction layer.

    Args:
        recipe: the `Recipe`.
        mean: (H, W, 3) per-pixel mean, or (3,) per-channel mean (needed for
            inputs of any size, e.g. fully-convolutional testing).
        input_shape: (H, W, 3); defaults to the recipe's crop size. H and W
            may be None with a per-channel mean.
    """
    size = recipe.image_size
    input_shape = input_shape or (size, size, 3)
    mean = np.asarray(mean, np.float32)
    inputs = keras.Input(input_shape, name="pixels")
    # Normalization with unit variance is exactly a (saved) mean subtraction.
    x = keras.layers.Normalization(
        axis=-1 if mean.ndim == 1 else (1, 2, 3),
        mean=mean,
        variance=np.ones_like(mean),
        name=MEAN_LAYER,
    )(inputs)
    net = keras_resnet.ResNet(
        recipe.depth,
        shortcut=recipe.shortcut,
        plain=recipe.plain,
        family=recipe.family,
        input_shape=input_shape,
        classes=recipe.classes,
        weight_decay=recipe.weight_decay or None,
    )
    return keras.Model(inputs, net(x), name=f"{recipe.name}_model")


def mean_of(model):
    """The mean `model`'s mean layer subtracts, (H, W, 3) float32, or None.

    The layer is looked for in `model` and in the models nested in it (a
    training model wraps the saved one behind its augmentation).
    """
    for candidate in [model] + [layer for layer in model.layers if isinstance(layer, keras.Model)]:
        try:
            layer = candidate.get_layer(MEAN_LAYER)
        except ValueError:
            continue
        return np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float32)[0]
    return None
