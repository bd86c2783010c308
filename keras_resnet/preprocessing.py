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
otherwise), float or any integer dtype. That is the contract, and it is
enforced wherever the values are at hand: `preprocess_input` on arrays and
eager tensors, and a `Preprocessing` layer called eagerly (e.g. `model(x)`
on a model built with `include_preprocessing=True`) refuse finite values
below 0 (images already normalised, for other weights or the same, or
negated) or above 255 (16-bit images, up to 65535) instead of computing a
quietly wrong answer. NaN and infinities pass: a non-finite pixel gives
NaN outputs, as everywhere in keras_resnet. Inside a compiled graph (a
`tf.function`, `jax.jit`, and so Keras's `fit`, `evaluate` and `predict`
on datasets, and every export) the values are not known when the graph is
built, and they are not checked: out-of-range pixels give wrong outputs
there. Images scaled to 0..1 cannot be told from dark raw images and are
not refused.
"""

import keras
import numpy as np
from keras import ops

from keras_resnet import presets
from keras_resnet import registry
from keras_resnet import specs
from keras_resnet import weight_files


def mode_of(weights, depth=None):
    """The preprocessing mode that `weights` (a preset name) was trained with.

    Args:
        weights: a registered preset name or alias (see
            `keras_resnet.weights`).
        depth: the depth, needed only when an alias resolves to weights
            with different preprocessing at different depths.

    Returns:
        A key of `keras_resnet.presets.MODES`, or a dict {"mean": ...,
        "std": ...} (RGB, in pixel units) for presets registered with their
        own statistics.
    """
    if depth is not None:
        return registry.get_preset(weights, depth=depth).preprocessing
    modes = {}
    for preset in registry.presets_of(weights).values():
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
        x: images, raw RGB pixels 0..255, a batch or one image (numpy array,
            list or tensor; float or any integer dtype).
        weights: the preset name the model was built with, e.g. "imagenet"
            or "torchvision_imagenet". Required: the mode follows the
            weights, so it cannot be mismatched.
        data_format: "channels_last" (default, from Keras config) or
            "channels_first".
        depth: the model's depth; needed only for an alias whose weights
            preprocess differently at different depths.

    Returns:
        float32 images of the same shape: a numpy array for a numpy array or
        list (as keras.applications' `preprocess_input` returns), a tensor
        for a tensor.

    Raises:
        ValueError: if `weights` is not a preset, or if a concrete `x` has
            finite values outside 0..255 (negative ones: it was already
            normalised; above 255: 16-bit images). NaN and infinities pass.
    """
    mode = mode_of(weights, depth)
    as_numpy = isinstance(x, (np.ndarray, list, tuple))
    if as_numpy:
        x = np.asarray(x)
    # Checked here too, before the layer does, for a message that names the
    # weights rather than one wrapped in the layer's call.
    check_pixels(x, "preprocess_input", f"weights {weights!r} apply {mode!r} preprocessing themselves")
    outputs = Preprocessing(mode, data_format=data_format)(ops.cast(x, "float32"))
    return ops.convert_to_numpy(outputs) if as_numpy else outputs


def portable_mode(mode):
    """`mode` as a config holds it: a `MODES` key as is, a dict as its values
    (a mean file read once, here), so that nothing else is needed to use it."""
    if not isinstance(mode, dict):
        return mode
    mean, std, bgr = presets.preprocessing_parameters(mode)
    return {"mean": np.asarray(mean).tolist(), "std": list(std), "bgr": bgr}


def preprocessing_layer(weights, data_format=None, name="preprocessing", depth=None):
    """A `Preprocessing` layer for the weights `weights`, to put in a model.

    Args:
        weights: a registered preset name or alias.
        data_format: "channels_last" or "channels_first"; defaults to the
            Keras config.
        name: the layer's name.
        depth: the model's depth; needed only for an alias whose weights
            have different preprocessing at different depths.

    Returns:
        A `keras_resnet.Preprocessing` layer: raw RGB pixels 0..255 in, the
        input the weights were trained on out.

    Raises:
        ValueError: if `weights` is not a preset, or is an alias that needs
            `depth`.
    """
    return Preprocessing(mode_of(weights, depth), data_format=data_format, name=name)


def check_pixels(x, described, normalises="the preprocessing normalises them itself"):
    """Refuses images whose values are at hand and lie outside 0..255.

    Args:
        x: the images (any array or tensor). Symbolic ones (a Keras tensor,
            or a tensor inside a compiled TF, JAX or torch graph) have no
            values yet and are let through.
        described: what takes them, for the message.
        normalises: who normalises them instead, for the message.

    Raises:
        ValueError: naming the lowest or highest finite value. NaN and
            infinities are not refused: they give NaN outputs.
    """
    values = _values(x)
    if values is None or values.dtype == np.uint8 or values.size == 0:
        return
    low, high = _finite_extremes(values)
    if low < 0:
        raise ValueError(
            f"{described} expects raw RGB pixels in 0..255, but the input has values "
            f"down to {float(low):.4g}: it looks already normalised (or negated). "
            f"Pass the raw images; {normalises}."
        )
    if high > 255:
        raise ValueError(
            f"{described} expects raw RGB pixels in 0..255, but the input has values "
            f"up to {float(high):.6g}: more than 8 bits per channel (16-bit images go up to "
            "65535: divide them by 257, or decode them to 8 bits)."
        )


def _finite_extremes(values, finite=None):
    """(lowest, highest) finite value of a non-empty array."""
    if values.dtype.kind != "f":
        return values.min(), values.max()
    finite = np.isfinite(values) if finite is None else finite  # a mask, not a copy of the images
    return np.min(values, where=finite, initial=np.inf), np.max(values, where=finite, initial=-np.inf)


# How far a preprocessed value may lie outside the range of 0..255 pixels,
# in pixel units: rounding only (bfloat16 rounds a value near 255 by at
# most half a unit; float32 far less).
PIXEL_SLACK = 1.0


def check_preprocessed(x, mode, data_format=None, described="The model", weights=None, depth=None):
    """Refuses values that no image preprocessed with `mode` can have.

    A pixel p in 0..255 becomes `(p - mean) / std` (then BGR-flipped, for
    Caffe), so each preprocessed value lies between what 0 and 255 become
    for its channel (and pixel, with a per-pixel mean), widened by
    `PIXEL_SLACK` pixel units for rounding. With "torch" (torchvision's,
    akamaster's) that is about -2.1..2.6, so raw pixels up to 255 are
    refused; with "caffe" (x - mean) -124..152, so raw images whose pixels
    all stay below 152 cannot be told from preprocessed ones.

    Args:
        x: the images (any array or tensor; symbolic ones are let through,
            as in `check_pixels`).
        mode: the preprocessing the values must have had (a `MODES` key or
            a dict; see `keras_resnet.presets.preprocessing_parameters`).
        data_format: of `x`; defaults to the Keras config.
        described: what takes them, for the message.
        weights, depth: the preset that expects them, for the fixes the
            message names.

    Raises:
        ValueError: naming the values found, the range expected and both
            fixes. NaN and infinities are not refused: they give NaN outputs.
    """
    values = _values(x)
    if values is None or values.size == 0 or values.ndim < 3:
        return
    low, high = _preprocessed_range(mode, specs.check_data_format(data_format), values.shape)
    finite = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    outside = finite & ((values < low) | (values > high))
    if not outside.any():
        return
    found_low, found_high = _finite_extremes(values, finite)
    fix = f"keras_resnet.preprocess_input(x, weights={weights!r}{_depth_argument(weights, depth)})"
    raise ValueError(
        f"{described} was built with weights={weights!r}, whose input is images preprocessed "
        f"({weight_files.describe_preprocessing(mode)}): values within about "
        f"{float(np.min(low)):.4g}..{float(np.max(high)):.4g}. The input has values "
        f"{float(found_low):.6g}..{float(found_high):.6g}, which no preprocessed image has "
        f"({'raw 0..255 pixels?' if found_high > np.max(high) else 'preprocessed for other weights?'}). "
        "Build the model with include_preprocessing=True to give it raw RGB pixels 0..255, "
        f"or give it {fix}."
    )


def _preprocessed_range(mode, data_format, shape):
    """(low, high): what pixels -slack and 255 + slack become, broadcastable to `shape`."""
    mean, std, bgr = presets.preprocessing_parameters(mode)
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    low, high = (-PIXEL_SLACK - mean) / std, (255 + PIXEL_SLACK - mean) / std
    if bgr:
        low, high = low[..., ::-1], high[..., ::-1]
    spatial = shape[1:3] if data_format == "channels_last" else shape[2:4]
    if low.ndim == 3 and tuple(spatial) != low.shape[:2]:  # a per-pixel mean, another size
        low, high = low.min(axis=(0, 1)), high.max(axis=(0, 1))
    if data_format == "channels_first":
        low, high = (np.moveaxis(b, -1, 0) if b.ndim == 3 else b.reshape(3, 1, 1) for b in (low, high))
    return low, high


def _depth_argument(weights, depth):
    """", depth=N" where `mode_of(weights)` needs the depth to answer."""
    try:
        mode_of(weights)
    except ValueError:
        return f", depth={depth}" if depth is not None else ""
    return ""


def _values(x):
    """`x` as a numpy array if its values exist now, else None (symbolic)."""
    if isinstance(x, keras.KerasTensor):
        return None
    if isinstance(x, np.ndarray):
        return x
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if isinstance(x, tf.Tensor) and not tf.executing_eagerly():
            return None
    elif backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
    elif backend == "torch":
        # Without importing torch (the library never does): shape-only
        # tensors on the "meta" device, and torch.compile's fake ones.
        if getattr(getattr(x, "device", None), "type", None) == "meta" or type(x).__name__ in (
                "FakeTensor", "FunctionalTensor"):
            return None
    return ops.convert_to_numpy(x)


@keras.saving.register_keras_serializable(package="keras_resnet")
class Preprocessing(keras.layers.Layer):
    """Maps raw RGB pixels 0..255 to what a set of weights was trained on.

    Called eagerly, it refuses finite pixels outside 0..255 (see the module
    docstring); inside a compiled graph it cannot see the values.

    Computes `(x - mean) / std`, the mean per channel or per pixel, the std
    per channel, then reverses the channel order if the mode is BGR (Caffe).
    Serialisable, so a saved model keeps it (a per-pixel mean is saved in the
    config, so the model does not need the file it came from).

    Args:
        mode: a key of `keras_resnet.presets.MODES` ("caffe", "torch",
            "rescale", "none") or a dict {"mean": (r, g, b) or an (H, W, 3)
            array, "std": (r, g, b)} in pixel units (see `keras_resnet.presets.preprocessing_parameters`).
        data_format: "channels_last" or "channels_first"; defaults to the
            Keras config.
    """

    def __init__(self, mode, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.bgr = presets.preprocessing_parameters(mode)
        self.mode = portable_mode(mode)
        self.data_format = specs.check_data_format(data_format)

    def call(self, x):
        axis = -1 if self.data_format == "channels_last" else -3
        shape = [1] * len(x.shape)
        shape[axis] = 3
        if x.shape[axis] != 3:
            raise ValueError(
                f"Preprocessing {self._described()} needs 3 (RGB) channels on axis "
                f"{axis}; received input of shape {x.shape}."
            )
        check_pixels(x, f"Preprocessing {self._described()}")
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
