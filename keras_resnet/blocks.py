"""The residual blocks and the one place that decides each shortcut.

Blocks are plain functions on Keras tensors. Layer names are stable and
hierarchical, the same as keras.applications uses, so weights port by name:

    conv1_conv, conv1_bn, conv1_relu, pool1_pool             the stem
    conv3_block2_1_conv / _1_bn / _1_relu                    first conv of a block
    conv3_block1_0_conv / _0_bn  (options B, C)              projection shortcut
    conv3_block1_0_pad           (option A)                  parameter-free shortcut
    conv3_block2_add, conv3_block2_out                       sum, block output

A stage's output is its last block's `_out` layer (e.g. `conv5_block3_out`).
A plain net has the same names less the shortcut and `_add` layers.
"""

import dataclasses

from keras import layers

from keras_resnet import fast_build
from keras_resnet import specs
from keras_resnet.layers import FusedBatchNormalization
from keras_resnet.layers import ZeroPadShortcut

SHORTCUTS = ("A", "B", "C")
VARIANTS = ("v1", "v1.5")


@dataclasses.dataclass(frozen=True)
class LayerOptions:
    """What every conv and BN layer of one network shares.

    Attributes:
        data_format: "channels_last" or "channels_first".
        kernel_regularizer: applied to every conv and dense kernel, or None.
        bn_momentum: moving-average momentum (Keras convention: 0.9 is
            PyTorch's 0.1).
        bn_epsilon: 1e-5, as torchvision and Caffe's BN.
    """

    data_format: str
    kernel_regularizer: object = None
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5

    @property
    def channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1


def he_normal():
    """The paper's initialisation (He et al., 2015b): N(0, 2 / fan_in).

    Untruncated, as Caffe's "msra" filler and PyTorch's `kaiming_normal_`.
    Keras's "he_normal" truncates at two standard deviations, a different
    distribution. Drawn by numpy while the net is built, then swapped for
    the equivalent `keras.initializers.VarianceScaling(2.0, "fan_in",
    "untruncated_normal")`, which is what configs and `.keras` files say;
    `keras_resnet.fast_build` says why. A fresh instance per layer.
    """
    return fast_build.HeNormal()


def conv_bn(x, filters, kernel_size, strides, name, options):
    """Conv (no bias, `he_normal()`) followed by BN, named `name_conv`, `name_bn`.

    Strided convolutions with a kernel larger than 1 pad symmetrically by
    `kernel_size // 2` (a `name_pad` layer) instead of using "same", which
    in TensorFlow pads only the bottom/right on even inputs. Symmetric
    padding is what Caffe and PyTorch do, so ported weights give the same
    outputs, and it keeps each output pixel centred on input pixel
    `strides * i`, the pixel the option-A shortcut keeps.
    """
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(
            kernel_size // 2, data_format=options.data_format, name=f"{name}_pad"
        )(x)
        padding = "valid"
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=he_normal(),
        kernel_regularizer=options.kernel_regularizer,
        data_format=options.data_format,
        name=f"{name}_conv",
    )(x)
    return FusedBatchNormalization(
        axis=options.channel_axis,
        momentum=options.bn_momentum,
        epsilon=options.bn_epsilon,
        # Keras's defaults (ones, zeros, zeros, ones), filled by numpy while
        # building; see `keras_resnet.fast_build`.
        gamma_initializer=fast_build.Fill(1),
        beta_initializer=fast_build.Fill(0),
        moving_mean_initializer=fast_build.Fill(0),
        moving_variance_initializer=fast_build.Fill(1),
        name=f"{name}_bn",
    )(x)


def conv_bn_relu(x, filters, kernel_size, strides, name, options):
    x = conv_bn(x, filters, kernel_size, strides, name, options)
    return layers.ReLU(name=f"{name}_relu")(x)


def apply_shortcut(x, out_channels, strides, shortcut, name, options):
    """Returns the shortcut branch of a block, or None for a plain block.

    This is the one place that applies the paper's options (Sec. 3.3):
        A: identity; where dimensions change, subsample and zero-pad
           (no parameters).
        B: identity; where dimensions change, a 1x1 projection + BN.
        C: a 1x1 projection + BN on every block.
        None: no shortcut (the plain net).

    Args:
        x: the block's input.
        out_channels: channels of the block's residual branch.
        strides: the block's stride.
        shortcut: "A", "B", "C" or None.
        name: the block's name prefix.
        options: `LayerOptions`.
    """
    if shortcut is None:
        return None
    changes = strides != 1 or x.shape[options.channel_axis] != out_channels
    if shortcut == "C" or (shortcut == "B" and changes):
        return conv_bn(x, out_channels, 1, strides, f"{name}_0", options)
    if shortcut == "A" and changes:
        return ZeroPadShortcut(
            out_channels, strides, data_format=options.data_format, name=f"{name}_0_pad"
        )(x)
    return x


def apply_basic_block(x, filters, strides, shortcut, name, options, variant="v1"):
    """Two 3x3 conv-BN layers; ReLU after the addition (paper Fig. 2).

    Args:
        x: input tensor.
        filters: filters of both convs (and of the block's output).
        strides: stride of the first conv.
        shortcut: "A", "B", "C", or None for a plain block.
        name: prefix of every layer name, e.g. "conv3_block1".
        options: `LayerOptions`.
        variant: unused; basic blocks are the same in v1 and v1.5.
    """
    del variant
    residual = conv_bn_relu(x, filters, 3, strides, f"{name}_1", options)
    residual = conv_bn(residual, filters, 3, 1, f"{name}_2", options)
    return _merge(x, residual, filters, strides, shortcut, name, options)


def apply_bottleneck_block(x, filters, strides, shortcut, name, options, variant="v1"):
    """1x1 reduce, 3x3, 1x1 expand to `4 * filters` (paper Fig. 5, right).

    Args:
        x: input tensor.
        filters: filters of the 1x1 reduce and 3x3 convs; the block outputs
            `4 * filters` channels.
        strides: the block's stride.
        shortcut: "A", "B", "C", or None for a plain block.
        name: prefix of every layer name, e.g. "conv3_block1".
        options: `LayerOptions`.
        variant: "v1" puts the stride in the first 1x1 conv (the paper's
            original, keras.applications, keras-cv); "v1.5" puts it in the
            3x3 conv (torchvision, NVIDIA, keras-hub).
    """
    stride_1x1, stride_3x3 = (strides, 1) if variant == "v1" else (1, strides)
    residual = conv_bn_relu(x, filters, 1, stride_1x1, f"{name}_1", options)
    residual = conv_bn_relu(residual, filters, 3, stride_3x3, f"{name}_2", options)
    out_channels = specs.EXPANSION[specs.BOTTLENECK] * filters
    residual = conv_bn(residual, out_channels, 1, 1, f"{name}_3", options)
    return _merge(x, residual, out_channels, strides, shortcut, name, options)


def _merge(x, residual, out_channels, strides, shortcut, name, options):
    identity = apply_shortcut(x, out_channels, strides, shortcut, name, options)
    if identity is not None:
        residual = layers.Add(name=f"{name}_add")([identity, residual])
    return layers.ReLU(name=f"{name}_out")(residual)


BLOCKS = {specs.BASIC: apply_basic_block, specs.BOTTLENECK: apply_bottleneck_block}


def apply_stage(x, stage, block, shortcut, options, variant="v1"):
    """Stacks `stage.blocks` blocks; only the first one strides.

    Args:
        x: input tensor.
        stage: a `specs.Stage` row.
        block: "basic" or "bottleneck".
        shortcut: "A", "B", "C", or None for a plain stage.
        options: `LayerOptions`.
        variant: bottleneck stride placement, "v1" or "v1.5".
    """
    apply_block = BLOCKS[block]
    for i in range(stage.blocks):
        strides = stage.stride if i == 0 else 1
        x = apply_block(
            x, stage.filters, strides, shortcut, f"{stage.name}_block{i + 1}",
            options, variant,
        )
    return x
