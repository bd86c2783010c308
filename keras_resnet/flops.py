"""`count_flops`: multiply-adds of one forward pass, as the paper counts them."""

import math

import keras

# Layers whose multiply-adds Table 1 leaves out (under 1% at these depths):
# normalisation, activations, merges, pooling, padding, shape changes, and
# what is identity at inference. Looked up by name: not every Keras 3
# version has all of them.
_FREE_NAMES = (
    "InputLayer", "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "UnitNormalization", "Normalization", "Rescaling", "Activation", "ReLU", "LeakyReLU",
    "PReLU", "ELU", "Softmax", "Identity", "Add", "Subtract", "Multiply", "Average",
    "Maximum", "Minimum", "Concatenate", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianDropout", "GaussianNoise", "AlphaDropout", "ActivityRegularization",
    "Flatten", "Reshape", "Permute", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    "Cropping1D", "Cropping2D", "Cropping3D", "MaxPooling1D", "MaxPooling2D",
    "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "Resizing", "CenterCrop", "RandomFlip", "RandomCrop", "RandomTranslation",
    "RandomRotation", "RandomZoom", "RandomContrast", "RandomBrightness",
)
# Operations that are not layers (keras.ops called in a functional model)
# and do multiply-adds that the counter does not count.
_UNCOUNTED_OPS = (
    "matmul", "einsum", "tensordot", "dot", "inner", "outer", "conv", "depthwiseconv",
    "separableconv", "convtranspose",
)


def _classes(*names):
    return tuple(c for c in (getattr(keras.layers, n, None) for n in names) if c is not None)


def count_flops(model):
    """Returns the multiply-adds of one forward pass of `model` on one image.

    Counts what the paper's Table 1 counts: the multiply-adds of every
    convolution and dense layer (for a conv, output pixels x kernel height x
    kernel width x input channels per group x output channels). Depthwise,
    separable and transposed convolutions are counted the same way. BN,
    activations, additions, pooling, padding and reshapes are left out;
    they add under 1% at these depths. Nested models are counted through.
    Any other layer or operation is refused rather than counted as zero.

    Args:
        model: a functional `keras.Model` whose input has a fixed spatial
            size (build it with e.g. `input_shape=(224, 224, 3)`).

    Returns:
        An int.

    Raises:
        ValueError: if a layer's output size is not fixed, or the model has
            a layer or operation the counter does not know (naming it).
    """
    from keras_resnet.architecture import check_graph_model

    check_graph_model(model)
    return sum(_layer_flops(layer) for layer in _walk(model))


def _walk(model):
    for operation in getattr(model, "operations", model.layers):
        if isinstance(operation, keras.Model):
            yield from _walk(operation)
        else:
            yield operation


def _layer_flops(layer):
    conv = _classes("Conv1D", "Conv2D", "Conv3D")
    depthwise = _classes("DepthwiseConv1D", "DepthwiseConv2D")
    separable = _classes("SeparableConv1D", "SeparableConv2D")
    transposed = _classes("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
    if isinstance(layer, conv + depthwise):
        # Kernels are (*window, inputs per group or channels, outputs per group
        # or multiplier): one multiply-add per kernel entry per output pixel.
        return _positions(layer.output, layer) * math.prod(layer.kernel.shape)
    if isinstance(layer, separable):
        positions = _positions(layer.output, layer)
        return positions * (
            math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
        )
    if isinstance(layer, transposed):
        # Each input pixel is spread over a window of every output channel.
        return _positions(layer.input, layer) * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        fan_in, units = layer.kernel.shape
        positions = _known_product(layer.output.shape[1:-1], layer)
        return positions * fan_in * units
    if isinstance(layer, _classes(*_FREE_NAMES)) or _is_ours_and_free(layer):
        return 0
    if not isinstance(layer, keras.layers.Layer):
        if type(layer).__name__.lower() in _UNCOUNTED_OPS:
            raise ValueError(
                f"count_flops does not count operation {layer.name!r} "
                f"({type(layer).__name__}): it counts Keras conv and dense layers. Use a "
                "layer (e.g. keras.layers.Dense) or count it yourself."
            )
        return 0  # Elementwise and shape operations.
    raise ValueError(
        f"count_flops does not know layer {layer.name!r} of type {type(layer).__name__}. "
        "It counts convolutions (incl. depthwise, separable, transposed) and dense "
        "layers, and leaves out normalisation, activations, merges, pooling, padding and "
        "reshapes; anything else would be counted as zero, so it is refused. Count that "
        "layer yourself."
    )


def _is_ours_and_free(layer):
    from keras_resnet.layers import ZeroPadShortcut
    from keras_resnet.preprocessing import Preprocessing

    return isinstance(layer, (ZeroPadShortcut, Preprocessing))


def _positions(tensor, layer):
    shape = tensor.shape
    data_format = getattr(layer, "data_format", "channels_last")
    spatial = shape[1:-1] if data_format == "channels_last" else shape[2:]
    return _known_product(spatial, layer)


def _known_product(dims, layer):
    if any(d is None for d in dims):
        raise ValueError(
            f"count_flops needs a fixed input size, but layer {layer.name!r} "
            f"has output shape {layer.output.shape}. Build the model with a "
            "fixed `input_shape`, e.g. (224, 224, 3)."
        )
    return math.prod(dims)
