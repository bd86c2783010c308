"""Our layers: the option-A shortcut, BatchNorm as one fused kernel, a folded conv, a NaN-safe max-pool."""

import keras
from keras import ops

from keras_resnet import specs


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(keras.layers.Layer):
    """Option-A shortcut: subsample by `strides`, zero-pad the channels.

    Implements the paper's parameter-free identity shortcut for blocks that
    change dimensions (Sec. 3.3, option A): the input is subsampled by taking
    every `strides`-th pixel, starting at the first, and `filters - C` zero
    channels are appended. The output spatial size is `ceil(H / strides)`,
    which matches a stride-`strides` convolution with symmetric padding, and
    pixel `i` of the output is input pixel `strides * i`, the centre of that
    convolution's window.

    Args:
        filters: channels of the output; must be at least the input's.
        strides: spatial subsampling factor (1 or 2 in the networks here).
        data_format: "channels_last" or "channels_first"; defaults to
            `keras.config.image_data_format()`.
    """

    def __init__(self, filters, strides=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        filters = specs.integer_or_same(filters)
        strides = specs.integer_or_same(strides)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(
                f"`filters` must be a positive int. Received filters={filters!r}."
            )
        if not isinstance(strides, int) or strides < 1:
            raise ValueError(
                f"`strides` must be a positive int. Received strides={strides!r}."
            )
        self.filters = filters
        self.strides = strides
        self.data_format = specs.check_data_format(data_format)
        self._channel_axis = -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        channels = input_shape[self._channel_axis]
        if channels is None or channels > self.filters:
            raise ValueError(
                f"ZeroPadShortcut '{self.name}' pads channels up to "
                f"filters={self.filters}, so the input needs a known channel "
                f"count <= {self.filters}. Received input_shape={input_shape}."
            )

    def call(self, inputs):
        s = self.strides
        if s > 1:
            if self.data_format == "channels_last":
                inputs = inputs[:, ::s, ::s, :]
            else:
                inputs = inputs[:, :, ::s, ::s]
        pad = self.filters - inputs.shape[self._channel_axis]
        if pad == 0:
            return inputs
        widths = [[0, 0]] * 4
        widths[self._channel_axis] = [0, pad]
        return ops.pad(inputs, widths)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis in spatial:
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // self.strides)
        shape[self._channel_axis] = self.filters
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            data_format=self.data_format,
        )
        return config


_FUSED_DTYPES = ("float32", "float16", "bfloat16")


@keras.saving.register_keras_serializable(package="keras_resnet")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, run as one fused kernel on TensorFlow.

    Keras 3 computes BatchNorm on TensorFlow as separate ops (moments, then
    `tf.nn.batch_normalization`), forward and backward. TensorFlow has a
    fused kernel for it, `FusedBatchNormV3`, which Keras 2 used and which
    Grappler fuses further into the convolution for inference. On a 2-core
    CPU it makes a ResNet-50 train step about 11% faster and inference about
    7% faster (BENCHMARKS.md, "What we profiled, what we tried, what we kept").

    Same arguments, variables, config and results as Keras's layer (to
    float32 rounding): the moving averages use the biased batch variance as
    Keras does (the fused kernel reports the unbiased one, which is
    rescaled by (n - 1) / n). The fused path runs where it applies: the
    TensorFlow backend, a rank-4 input normalised over its last axis
    (channels_last), float32/float16/bfloat16, no mask, no renorm, not
    synchronized. Anywhere else, and on JAX and PyTorch, this is exactly
    `keras.layers.BatchNormalization.call`.

    Args:
        axis, momentum, epsilon, center, scale: as in Keras's layer; so are
            the initializers, regularizers and constraints, `renorm*`,
            `synchronized` and `**kwargs`, with the same defaults.
    """

    def _fuses(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (3, -1)
            and not self.renorm
            and not self.synchronized
            and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fuses(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = ops.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        offset = ops.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        if training and self.trainable:
            empty = tf.constant([], dtype="float32")
            outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=scale, offset=offset, mean=empty, variance=empty,
                epsilon=self.epsilon, exponential_avg_factor=1.0,
                data_format="NHWC", is_training=True,
            )
            # The kernel's batch variance is unbiased; Keras averages the
            # biased one. n = values per channel.
            n = tf.cast(tf.size(inputs, out_type=tf.int64) // channels, tf.float32)
            variance = variance * ((n - 1.0) / n)
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + variance * (1.0 - momentum)
            )
        else:
            outputs = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=scale, offset=offset,
                mean=ops.cast(self.moving_mean, "float32"),
                variance=ops.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon, exponential_avg_factor=1.0,
                data_format="NHWC", is_training=False,
            )[0]
        # Without the barrier Grappler's remapper fuses a following ReLU into
        # oneDNN's conv/BN kernels (_MklNativeFusedConv2D with
        # fused_ops=[FusedBatchNorm, Relu] at inference, _FusedBatchNormEx in
        # training). Conv + BN still fuse (that fusion keeps NaN).
        outputs = _relu_fusion_barrier(outputs)
        return ops.cast(outputs, self.compute_dtype)


def _relu_fusion_barrier(outputs):
    """A no-op that Grappler keeps, between a TF kernel and whatever comes next.

    Grappler's remapper fuses a ReLU into the conv, conv+bias or conv+BN
    kernel before it, and on oneDNN CPUs that fused ReLU computes max(x, 0)
    in a way that maps NaN to 0: a NaN image then gets a confident class and
    a NaN batch a finite loss. `EnsureShape` sits between the two, so the
    ReLU runs as TF's own op, which propagates NaN. TensorFlow backend only.
    """
    import tensorflow as tf

    return tf.ensure_shape(outputs, outputs.shape)


@keras.saving.register_keras_serializable(package="keras_resnet")
class FoldedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` that holds a folded BatchNormalization.

    `keras_resnet.fold_batchnorm` puts one in place of each conv+BN pair: the
    kernel scaled per output channel and a bias. Same arguments, config and
    results as `Conv2D`. On TensorFlow its output goes through the same
    barrier as `FusedBatchNormalization`'s, which keeps Grappler from fusing
    a following ReLU (conv + bias + ReLU) into a oneDNN kernel that maps NaN
    to 0; with a plain `Conv2D` there, a folded model's `predict` gave an
    image with a NaN pixel finite probabilities.
    """

    def call(self, inputs):
        outputs = super().call(inputs)
        if keras.backend.backend() != "tensorflow":
            return outputs
        return _relu_fusion_barrier(outputs)


@keras.saving.register_keras_serializable(package="keras_resnet")
class NaNPropagatingMaxPooling2D(keras.layers.MaxPooling2D):
    """`keras.layers.MaxPooling2D` whose windows that hold a NaN output NaN.

    TensorFlow's MaxPool kernel skips NaN (the max of a window [NaN, 1] is 1,
    in graphs and eagerly, with or without oneDNN), so a NaN pixel could
    vanish in the ImageNet stem's max-pool and the net would return a
    confident class. JAX and PyTorch propagate NaN; so does this layer, on
    every backend. On TensorFlow it adds the window average of `x - x` (0
    where x is finite, NaN where it is NaN or infinite) to the max, without
    a gradient: for finite inputs the values and gradients are exactly
    those of `MaxPooling2D`. Same arguments and config.

    Args:
        pool_size, strides, padding, data_format, name: as in
            `keras.layers.MaxPooling2D`, with the same defaults (so is
            `**kwargs`).
    """

    def call(self, inputs):
        outputs = super().call(inputs)
        if keras.backend.backend() != "tensorflow":
            return outputs
        poison = ops.average_pool(
            inputs - inputs, self.pool_size, self.strides, self.padding, self.data_format
        )
        return outputs + ops.stop_gradient(poison)
