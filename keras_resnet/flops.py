"""`count_flops`: multiply-adds of one forward pass, as the paper counts them."""

import math

import keras


def count_flops(model):
    """Returns the multiply-adds of one forward pass of `model` on one image.

    Counts what the paper's Table 1 counts: the multiply-adds of every
    convolution and dense layer (for a conv, output pixels x kernel height x
    kernel width x input channels per group x output channels). BN, ReLU,
    additions and pooling are left out; they add under 1% at these depths.
    Nested models are counted through.

    Args:
        model: a functional `keras.Model` whose input has a fixed spatial
            size (build it with e.g. `input_shape=(224, 224, 3)`).

    Returns:
        An int.

    Raises:
        ValueError: if a layer's output size is not fixed.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a keras.Model. Received model={model!r}."
        )
    return sum(_layer_flops(layer) for layer in _walk(model))


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer


def _layer_flops(layer):
    if isinstance(layer, keras.layers.Conv2D):
        kernel_h, kernel_w, in_per_group, out_channels = layer.kernel.shape
        shape = layer.output.shape
        spatial = shape[1:3] if layer.data_format == "channels_last" else shape[2:4]
        positions = _known_product(spatial, layer)
        return positions * kernel_h * kernel_w * in_per_group * out_channels
    if isinstance(layer, keras.layers.Dense):
        fan_in, units = layer.kernel.shape
        positions = _known_product(layer.output.shape[1:-1], layer)
        return positions * fan_in * units
    return 0


def _known_product(dims, layer):
    if any(d is None for d in dims):
        raise ValueError(
            f"count_flops needs a fixed input size, but layer {layer.name!r} "
            f"has output shape {layer.output.shape}. Build the model with a "
            "fixed `input_shape`, e.g. (224, 224, 3)."
        )
    return math.prod(dims)
