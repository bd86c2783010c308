"""The layer names of a keras_resnet net: the one owner of how they are spelled.

`blocks` and `models` write these names, `architecture` reads them (only
for nets without an architecture record: `.weights.h5` files, older
`.keras` files, other projects' nets), and `porting`/`convert` map other
projects' names onto them. They are keras.applications' names, so weights
port by name:

    conv1_pad, conv1_conv, conv1_bn, conv1_relu    the stem (its 7x7/2 conv pads)
    pool1_pad, pool1_pool                          the ImageNet stem's 3x3/2 max-pool
    conv3_block2_1_conv / _1_bn / _1_relu          a block's first conv (index 1)
    conv3_block1_2_pad                             a strided 3x3 conv's padding
    conv3_block1_0_conv / _0_bn                    a projection shortcut (index 0)
    conv3_block1_0_pad                             an option-A shortcut
    conv3_block2_add, conv3_block2_out             the sum, the block's output
    avg_pool / max_pool, predictions               the head

A stage's output is its last block's `_out` layer (`stage_output`).
"""

import re

# The stem: `conv1` convs, then (ImageNet) the `pool1` max-pool.
STEM = "conv1"
STEM_CONV = "conv1_conv"
STEM_POOL = "pool1"
STEM_POOL_PAD = "pool1_pad"
STEM_POOL_LAYER = "pool1_pool"
# The classifier `ResNet(include_top=True)` ends with.
CLASSIFIER = "predictions"
# The global pooling of the head, by `pooling` argument.
POOLS = {"avg": "avg_pool", "max": "max_pool"}
# The input layer and the preprocessing layer `ResNet` puts in front of the net.
INPUT = "images"
PREPROCESSING = "preprocessing"

# Suffixes of the layers `blocks.conv_bn` and `blocks.conv_bn_relu` make.
PAD, CONV, BN, RELU = "pad", "conv", "bn", "relu"
# The last layers of a residual block.
ADD, OUT = "add", "out"
# The index of a block's shortcut branch (its residual convs are 1, 2, 3).
SHORTCUT_INDEX = 0

_BLOCK = re.compile(r"(conv(\d+))_block(\d+)_(\w+)")
# Every name `ResNet` can give a layer of the net itself (not its input or preprocessing).
_OURS = re.compile(r"(conv\d+|pool1)_\w+|predictions|avg_pool|max_pool")


def stage(index):
    """The name of stage `index` (2 for the paper's conv2_x), e.g. "conv2"."""
    return f"conv{index}"


def stage_number(stage_name):
    """The number of a stage's name: 3 for "conv3"."""
    return int(stage_name[len("conv"):])


def block(stage_name, index):
    """The prefix of block `index` (counted from 1) of a stage, e.g. "conv3_block1"."""
    return f"{stage_name}_block{index}"


def layer(prefix, suffix):
    """A layer name from a prefix and a suffix, e.g. ("conv3_block1_2", "conv")."""
    return f"{prefix}_{suffix}"


def stage_output(stage_name, blocks):
    """The layer that outputs a stage of `blocks` blocks, e.g. "conv2_block3_out"."""
    return layer(block(stage_name, blocks), OUT)


def parse_block_layer(name):
    """(stage name, block index, rest) of a block's layer name, or None.

    E.g. "conv3_block12_2_conv" -> ("conv3", 12, "2_conv").
    """
    match = _BLOCK.fullmatch(name)
    if match is None:
        return None
    return match.group(1), int(match.group(3)), match.group(4)


def is_ours(name):
    """Whether `ResNet` could have given a layer of its net this name."""
    return isinstance(name, str) and _OURS.fullmatch(name) is not None
