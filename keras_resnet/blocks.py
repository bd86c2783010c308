"""The stem, the residual blocks and the one place that decides each shortcut.

Blocks are plain functions on Keras tensors. Layer names are stable and
hierarchical, the same as keras.applications uses, so weights port by name;
`keras_resnet.names` spells them (its docstring lists them). A plain net has
the same names less the shortcut and `_add` layers.

What a block is made of is data that the builders and `layer_names` both
read: `residual_convs` (the convs of each block type), `STEMS` (each
family's stem) and `SHORTCUT_OPTIONS` (the paper's options A, B, C). A new
shortcut option is one entry there: `ResNet` accepts it, and
`keras_resnet.architecture` recognises its layers by `layer_names`.
"""

import dataclasses

from keras import layers

from keras_resnet import fast_build
from keras_resnet import names
from keras_resnet import specs
from keras_resnet.layers import FusedBatchNormalization
from keras_resnet.layers import NaNPropagatingMaxPooling2D
from keras_resnet.layers import ZeroPadShortcut

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


@dataclasses.dataclass(frozen=True)
class Conv:
    """One conv-BN(-ReLU) of a net: what `conv_bn` / `conv_bn_relu` build.

    Attributes:
        filters, kernel_size, strides: the convolution's.
        relu: whether a ReLU follows the BN.
    """

    filters: int
    kernel_size: int
    strides: int
    relu: bool = True

    @property
    def pads(self):
        """Whether the conv pads symmetrically first (`conv_bn` says why)."""
        return self.strides > 1 and self.kernel_size > 1


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
    if Conv(filters, kernel_size, strides).pads:
        x = layers.ZeroPadding2D(
            kernel_size // 2, data_format=options.data_format, name=names.layer(name, names.PAD)
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
        name=names.layer(name, names.CONV),
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
        name=names.layer(name, names.BN),
    )(x)


def conv_bn_relu(x, filters, kernel_size, strides, name, options):
    x = conv_bn(x, filters, kernel_size, strides, name, options)
    return layers.ReLU(name=names.layer(name, names.RELU))(x)


def apply_conv(x, conv, name, options):
    """Applies a `Conv` row: `conv_bn_relu`, or `conv_bn` without its ReLU."""
    apply = conv_bn_relu if conv.relu else conv_bn
    return apply(x, conv.filters, conv.kernel_size, conv.strides, name, options)


def conv_layer_names(conv, name):
    """The names `apply_conv(x, conv, name, ...)` gives its layers."""
    suffixes = ([names.PAD] if conv.pads else []) + [names.CONV, names.BN] + ([names.RELU] if conv.relu else [])
    return [names.layer(name, suffix) for suffix in suffixes]


# Each family's stem conv (Table 1's 7x7/2 with 64 filters; Sec. 4.2's 3x3
# with 16) and whether a 3x3/2 max-pool follows it.
STEMS = {
    specs.IMAGENET: (Conv(64, 7, 2), True),
    specs.CIFAR: (Conv(16, 3, 1), False),
}


def apply_stem(x, family, options):
    """The stem of a `family` net: conv-BN-ReLU, then (ImageNet) the max-pool."""
    conv, pool = STEMS[family]
    x = apply_conv(x, conv, names.STEM, options)
    if pool:
        # Zero padding equals Caffe/PyTorch's -inf padding here: inputs are
        # post-ReLU, so >= 0.
        x = layers.ZeroPadding2D(1, data_format=options.data_format, name=names.STEM_POOL_PAD)(x)
        x = NaNPropagatingMaxPooling2D(
            3, strides=2, data_format=options.data_format, name=names.STEM_POOL_LAYER
        )(x)
    return x


def _zero_pad(x, out_channels, strides, name, options):
    return ZeroPadShortcut(
        out_channels, strides, data_format=options.data_format,
        name=names.layer(name, f"{names.SHORTCUT_INDEX}_{names.PAD}"),
    )(x)


def _projection(x, out_channels, strides, name, options):
    return conv_bn(x, out_channels, 1, strides, f"{name}_{names.SHORTCUT_INDEX}", options)


@dataclasses.dataclass(frozen=True)
class ShortcutOption:
    """One of the paper's shortcut options (Sec. 3.3).

    Attributes:
        everywhere: whether it acts on every block (C), or only on blocks
            whose dimensions change (A, B); elsewhere the shortcut is the
            identity.
        apply: `apply(x, out_channels, strides, name, options)`, the
            shortcut branch of a block where it acts.
        layers: the suffixes of the layers `apply` adds to block `name`.
    """

    everywhere: bool
    apply: object
    layers: tuple


_PROJECTION_LAYERS = (f"{names.SHORTCUT_INDEX}_{names.CONV}", f"{names.SHORTCUT_INDEX}_{names.BN}")
SHORTCUT_OPTIONS = {
    # Identity; where dimensions change, subsample and zero-pad (no parameters).
    "A": ShortcutOption(False, _zero_pad, (f"{names.SHORTCUT_INDEX}_{names.PAD}",)),
    # Identity; where dimensions change, a 1x1 projection + BN.
    "B": ShortcutOption(False, _projection, _PROJECTION_LAYERS),
    # A 1x1 projection + BN on every block.
    "C": ShortcutOption(True, _projection, _PROJECTION_LAYERS),
}
SHORTCUTS = tuple(SHORTCUT_OPTIONS)


def shortcut_acts(shortcut, strides, in_channels, out_channels):
    """Whether option `shortcut` puts layers on a block's shortcut, or keeps
    the identity (None, a plain block: neither)."""
    if shortcut is None:
        return False
    changes = strides != 1 or in_channels != out_channels
    return SHORTCUT_OPTIONS[shortcut].everywhere or changes


def apply_shortcut(x, out_channels, strides, shortcut, name, options):
    """Returns the shortcut branch of a block, or None for a plain block.

    This is the one place that applies the paper's options (Sec. 3.3),
    as `SHORTCUT_OPTIONS` defines them; None is no shortcut (the plain net).

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
    if shortcut_acts(shortcut, strides, x.shape[options.channel_axis], out_channels):
        return SHORTCUT_OPTIONS[shortcut].apply(x, out_channels, strides, name, options)
    return x


def residual_convs(block, filters, strides, variant="v1"):
    """The `Conv` rows of a block's residual branch, convs 1, 2 (and 3).

    Basic (paper Fig. 2): two 3x3 convs, the first strided. Bottleneck
    (Fig. 5, right): 1x1 reduce, 3x3, 1x1 expand to `4 * filters`; "v1"
    strides in the first 1x1 conv (the paper's original, keras.applications,
    keras-cv), "v1.5" in the 3x3 conv (torchvision, NVIDIA, keras-hub).
    """
    if block == specs.BASIC:
        return [Conv(filters, 3, strides), Conv(filters, 3, 1, relu=False)]
    stride_1x1, stride_3x3 = (strides, 1) if variant == "v1" else (1, strides)
    expanded = specs.EXPANSION[specs.BOTTLENECK] * filters
    return [Conv(filters, 1, stride_1x1), Conv(filters, 3, stride_3x3), Conv(expanded, 1, 1, relu=False)]


def _apply_block(x, block, filters, strides, shortcut, name, options, variant):
    convs = residual_convs(block, filters, strides, variant)
    residual = x
    for index, conv in enumerate(convs, start=1):
        residual = apply_conv(residual, conv, f"{name}_{index}", options)
    identity = apply_shortcut(x, convs[-1].filters, strides, shortcut, name, options)
    if identity is not None:
        residual = layers.Add(name=names.layer(name, names.ADD))([identity, residual])
    return layers.ReLU(name=names.layer(name, names.OUT))(residual)


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
    return _apply_block(x, specs.BASIC, filters, strides, shortcut, name, options, variant)


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
    return _apply_block(x, specs.BOTTLENECK, filters, strides, shortcut, name, options, variant)


BLOCKS = {specs.BASIC: apply_basic_block, specs.BOTTLENECK: apply_bottleneck_block}


def _block_strides(stage):
    """The stride of each block of a stage: only the first one strides."""
    return [stage.stride] + [1] * (stage.blocks - 1)


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
    for index, strides in enumerate(_block_strides(stage), start=1):
        x = _apply_block(
            x, block, stage.filters, strides, shortcut, names.block(stage.name, index), options, variant)
    return x


def layer_names(spec, shortcut, variant="v1"):
    """The names `ResNet` gives the layers of a net's stem and stages.

    Read from the same tables the builders read, without building anything:
    `keras_resnet.architecture` compares a net's names with these. The
    input, preprocessing and head (pooling, classifier) are not included.

    Args:
        spec: the net's `specs.Spec`.
        shortcut: "A", "B", "C", or None for the plain net.
        variant: "v1" or "v1.5" (bottleneck nets).

    Returns:
        A set of layer names.
    """
    stem, pool = STEMS[spec.family]
    found = set(conv_layer_names(stem, names.STEM))
    if pool:
        found |= {names.STEM_POOL_PAD, names.STEM_POOL_LAYER}
    channels = stem.filters
    for stage in spec.stages:
        for index, strides in enumerate(_block_strides(stage), start=1):
            prefix = names.block(stage.name, index)
            convs = residual_convs(spec.block, stage.filters, strides, variant)
            for number, conv in enumerate(convs, start=1):
                found.update(conv_layer_names(conv, f"{prefix}_{number}"))
            if shortcut_acts(shortcut, strides, channels, convs[-1].filters):
                found.update(names.layer(prefix, suffix) for suffix in SHORTCUT_OPTIONS[shortcut].layers)
            if shortcut is not None:
                found.add(names.layer(prefix, names.ADD))
            found.add(names.layer(prefix, names.OUT))
            channels = convs[-1].filters
    return found
