"""The one custom layer: the parameter-free option-A shortcut."""

import keras
from keras import ops


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
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                "`data_format` must be 'channels_last' or 'channels_first'. "
                f"Received data_format={data_format!r}."
            )
        self.data_format = data_format
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
