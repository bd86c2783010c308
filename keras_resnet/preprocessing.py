"""Input preprocessing that travels with the weights.

Pretrained weights only work on inputs preprocessed the way they were
trained: keras.applications' ImageNet weights (Caffe) want BGR pixels minus
the ImageNet mean, torchvision's want RGB in 0..1 minus mean, divided by std.
Both run without error on the wrong input and give quietly worse answers.
So here the preprocessing is never named by the user, only derived from the
weights:

    x = keras_resnet.preprocess_input(images, weights="imagenet")
    layer = keras_resnet.preprocessing_layer("torchvision_imagenet")

Both take raw RGB pixels 0..255 (channels last unless `data_format` says
otherwise). `preprocess_input` refuses concrete arrays with negative values,
which raw pixels never have but normalised images do, so feeding it images
that were already normalised (for other weights or the same) raises instead
of silently double-preprocessing.
"""

import keras
import numpy as np
from keras import ops

# Modes, as (mean, std, bgr) in 0..255 pixel units on RGB input; the result
# is (x - mean) / std, then the channels reversed if bgr.
MODES = {
    # keras.applications ResNet50/101/152 ("caffe" in imagenet_utils).
    "caffe": ((123.68, 116.779, 103.939), (1.0, 1.0, 1.0), True),
    # torchvision and timm ImageNet weights ("torch" in imagenet_utils).
    "torch": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255), False),
    # 0..1, as keras-cv's include_rescaling.
    "rescale": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0), False),
    # Raw pixels: weights whose model does its own preprocessing.
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), False),
}


def mode_of(weights):
    """The preprocessing mode that `weights` (a preset name) was trained with.

    Args:
        weights: a registered preset name (see `keras_resnet.weights`).

    Returns:
        A key of `MODES`, or a dict {"mean": ..., "std": ...} (RGB, in pixel
        units) for presets registered with their own statistics.
    """
    from keras_resnet import weights as weights_lib

    return weights_lib.get_preset(weights).preprocessing


def _parameters(mode):
    if isinstance(mode, dict):
        if set(mode) - {"mean", "std", "bgr"} or "mean" not in mode:
            raise ValueError(
                "A preprocessing dict has keys 'mean', 'std' (RGB, pixel "
                f"units 0..255) and optionally 'bgr'. Received {mode!r}."
            )
        return tuple(mode["mean"]), tuple(mode.get("std", (1.0, 1.0, 1.0))), bool(mode.get("bgr", False))
    if mode not in MODES:
        raise ValueError(
            f"Preprocessing mode must be one of {sorted(MODES)} or a dict "
            f"with 'mean' and 'std'. Received {mode!r}."
        )
    return MODES[mode]


def preprocess_input(x, weights, data_format=None):
    """Preprocesses raw RGB images as the weights `weights` expect.

    Args:
        x: images, raw RGB pixels 0..255, a batch or one image (numpy array
            or tensor, float or uint8).
        weights: the preset name the model was built with, e.g. "imagenet"
            or "torchvision_imagenet". Required: the mode follows the
            weights, so it cannot be mismatched.
        data_format: "channels_last" (default, from Keras config) or
            "channels_first".

    Returns:
        A float32 array/tensor of the same shape.

    Raises:
        ValueError: if `weights` is not a preset, or if a concrete `x` has
            negative values (it was already normalised; pass raw pixels).
    """
    mode = mode_of(weights)
    if not isinstance(x, keras.KerasTensor) and not _is_symbolic(x):
        values = ops.convert_to_numpy(x)
        # Not np.min: one NaN makes it NaN, and NaN < 0 is False, so the
        # check would pass and already-normalised images be normalised twice.
        negative = values[values < 0]
        if negative.size:
            lowest = float(negative.min())
            raise ValueError(
                "preprocess_input expects raw RGB pixels in 0..255, but the "
                f"input has values down to {lowest:.3g}: it looks already "
                f"normalised. Pass the raw images; weights {weights!r} apply "
                f"{mode!r} preprocessing themselves."
            )
    return Preprocessing(mode, data_format=data_format)(ops.cast(x, "float32"))


def preprocessing_layer(weights, data_format=None, name="preprocessing"):
    """A `Preprocessing` layer for the weights `weights`, to put in a model."""
    return Preprocessing(mode_of(weights), data_format=data_format, name=name)


def _is_symbolic(x):
    try:
        import tensorflow as tf

        return isinstance(x, tf.Tensor) and not tf.executing_eagerly()
    except ImportError:  # pragma: no cover - other backends without TF
        return False


@keras.saving.register_keras_serializable(package="keras_resnet")
class Preprocessing(keras.layers.Layer):
    """Maps raw RGB pixels 0..255 to what a set of weights was trained on.

    Computes `(x - mean) / std` per channel, then reverses the channel order
    if the mode is BGR (Caffe). Serialisable, so a saved model keeps it.

    Args:
        mode: a key of `MODES` ("caffe", "torch", "rescale", "none") or a
            dict {"mean": (r, g, b), "std": (r, g, b)} in pixel units.
        data_format: "channels_last" or "channels_first"; defaults to the
            Keras config.
    """

    def __init__(self, mode, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.bgr = _parameters(mode)
        self.mode = mode
        self.data_format = data_format or keras.config.image_data_format()
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                "`data_format` must be 'channels_last' or 'channels_first'. "
                f"Received data_format={data_format!r}."
            )

    def call(self, x):
        axis = -1 if self.data_format == "channels_last" else -3
        shape = [1] * len(x.shape)
        shape[axis] = 3
        if x.shape[axis] != 3:
            raise ValueError(
                f"Preprocessing {self.mode!r} needs 3 (RGB) channels on axis "
                f"{axis}; received input of shape {x.shape}."
            )
        x = ops.cast(x, self.compute_dtype)
        mean = ops.reshape(ops.convert_to_tensor(self.mean, self.compute_dtype), shape)
        std = ops.reshape(ops.convert_to_tensor(self.std, self.compute_dtype), shape)
        x = (x - mean) / std
        if self.bgr:
            x = ops.flip(x, axis=axis)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "data_format": self.data_format})
        return config
