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

from keras_resnet import presets
from keras_resnet import weights as weights_lib

# The modes, {name: (mean, std, bgr)}; each preset declares its own.
MODES = presets.MODES


def mode_of(weights, depth=None):
    """The preprocessing mode that `weights` (a preset name) was trained with.

    Args:
        weights: a registered preset name or alias (see
            `keras_resnet.weights`).
        depth: the depth, needed only when an alias resolves to weights
            with different preprocessing at different depths.

    Returns:
        A key of `MODES`, or a dict {"mean": ..., "std": ...} (RGB, in pixel
        units) for presets registered with their own statistics.
    """
    if depth is not None:
        return weights_lib.get_preset(weights, depth=depth).preprocessing
    modes = {}
    for preset in weights_lib.presets_of(weights).values():
        modes.setdefault(repr(preset.preprocessing), []).append(preset)
    if len(modes) > 1:
        by_depth = {p.depth: p.preprocessing for presets_ in modes.values() for p in presets_}
        raise ValueError(
            f"Preset {weights!r} resolves to weights with different "
            f"preprocessing at different depths ({by_depth}); pass `depth`."
        )
    return next(iter(modes.values()))[0].preprocessing


def preprocess_input(x, weights, data_format=None, depth=None):
    """Preprocesses raw RGB images as the weights `weights` expect.

    Args:
        x: images, raw RGB pixels 0..255, a batch or one image (numpy array
            or tensor, float or uint8).
        weights: the preset name the model was built with, e.g. "imagenet"
            or "torchvision_imagenet". Required: the mode follows the
            weights, so it cannot be mismatched.
        data_format: "channels_last" (default, from Keras config) or
            "channels_first".
        depth: the model's depth; needed only for an alias whose weights
            preprocess differently at different depths.

    Returns:
        A float32 array/tensor of the same shape.

    Raises:
        ValueError: if `weights` is not a preset, or if a concrete `x` has
            negative values (it was already normalised; pass raw pixels).
    """
    mode = mode_of(weights, depth)
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


def preprocessing_layer(weights, data_format=None, name="preprocessing", depth=None):
    """A `Preprocessing` layer for the weights `weights`, to put in a model."""
    return Preprocessing(mode_of(weights, depth), data_format=data_format, name=name)


def _is_symbolic(x):
    try:
        import tensorflow as tf

        return isinstance(x, tf.Tensor) and not tf.executing_eagerly()
    except ImportError:  # pragma: no cover - other backends without TF
        return False


@keras.saving.register_keras_serializable(package="keras_resnet")
class Preprocessing(keras.layers.Layer):
    """Maps raw RGB pixels 0..255 to what a set of weights was trained on.

    Computes `(x - mean) / std`, the mean per channel or per pixel, the std
    per channel, then reverses the channel order if the mode is BGR (Caffe).
    Serialisable, so a saved model keeps it (a per-pixel mean is saved in the
    config, so the model does not need the file it came from).

    Args:
        mode: a key of `MODES` ("caffe", "torch", "rescale", "none") or a
            dict {"mean": (r, g, b) or an (H, W, 3) array, "std": (r, g, b)}
            in pixel units (see `keras_resnet.presets.preprocessing_parameters`).
        data_format: "channels_last" or "channels_first"; defaults to the
            Keras config.
    """

    def __init__(self, mode, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.bgr = presets.preprocessing_parameters(mode)
        if isinstance(mode, dict):  # self-contained: a mean file is read once, here
            mode = {"mean": np.asarray(self.mean).tolist(), "std": list(self.std), "bgr": self.bgr}
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
                f"Preprocessing {self._described()} needs 3 (RGB) channels on axis "
                f"{axis}; received input of shape {x.shape}."
            )
        x = ops.cast(x, self.compute_dtype)
        mean = np.asarray(self.mean, np.float32)
        if mean.ndim == 3:  # per pixel, (H, W, 3)
            spatial = tuple(x.shape[1:3] if axis == -1 else x.shape[2:4])
            if spatial != mean.shape[:2]:
                raise ValueError(
                    f"These weights subtract a per-pixel mean of {mean.shape[0]}x{mean.shape[1]} "
                    f"images; received input of shape {x.shape}."
                )
            mean = mean if axis == -1 else np.transpose(mean, (2, 0, 1))
            mean = ops.convert_to_tensor(mean[None], self.compute_dtype)
        else:
            mean = ops.reshape(ops.convert_to_tensor(mean, self.compute_dtype), shape)
        std = ops.reshape(ops.convert_to_tensor(self.std, self.compute_dtype), shape)
        x = (x - mean) / std
        if self.bgr:
            x = ops.flip(x, axis=axis)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def _described(self):
        if np.ndim(self.mean) == 3:
            return f"with a per-pixel mean of shape {np.shape(self.mean)}"
        return repr(self.mode)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "data_format": self.data_format})
        return config
