"""Depth -> architecture tables, as data (paper Table 1 and Sec. 4.2).

A network is described by a `Spec`: which family it belongs to, which block
it stacks, and one `Stage` row per stage. Adding a depth means adding a row,
not writing code.
"""

import dataclasses
import math
import numbers
import operator

import numpy as np

CIFAR = "cifar"
IMAGENET = "imagenet"
FAMILIES = (CIFAR, IMAGENET)

BASIC = "basic"
BOTTLENECK = "bottleneck"
# Output channels of a block divided by its `filters` (Fig. 5: a bottleneck
# expands its 1x1 reduction 4x).
EXPANSION = {BASIC: 1, BOTTLENECK: 4}


@dataclasses.dataclass(frozen=True)
class Defaults:
    """What a family's nets are built with unless told otherwise (the paper's).

    Attributes:
        shortcut: "A" for CIFAR (Sec. 4.2), "B" for ImageNet (Table 3's).
        classes: 10 (CIFAR-10) or 1000 (ImageNet).
        size: height and width of the input images.
    """

    shortcut: str
    classes: int
    size: int


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of blocks that share an output map size.

    Attributes:
        name: layer-name prefix, e.g. "conv3" (the paper's conv3_x).
        filters: filters of the block's 3x3 convolutions; a block outputs
            `EXPANSION[block] * filters` channels (4x for a bottleneck).
        blocks: number of blocks in the stage.
        stride: stride of the first block (1 or 2).
    """

    name: str
    filters: int
    blocks: int
    stride: int


@dataclasses.dataclass(frozen=True)
class Spec:
    """The full description of one network depth.

    Attributes:
        family: "cifar" or "imagenet".
        depth: number of weighted layers, as the paper counts them.
        block: "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1).
        stages: the `Stage` rows, input to output.
    """

    family: str
    depth: int
    block: str
    stages: tuple

    @property
    def expansion(self):
        """Output channels of a block divided by its `filters`."""
        return EXPANSION[self.block]

    @property
    def total_stride(self):
        """How much the network downsamples its input, stem included."""
        stride = 4 if self.family == IMAGENET else 1  # 7x7/2 conv + 3x3/2 pool
        for stage in self.stages:
            stride *= stage.stride
        return stride


# ImageNet (Table 1). Each row: depth -> (block, blocks per stage).
# Stages conv2_x..conv5_x have 64, 128, 256, 512 filters; conv2_x keeps the
# 56x56 map left by the max-pool, the others halve it. Depth 200 is the
# extra row of the follow-up paper (He et al., 2016), same layout.
IMAGENET_BLOCKS = {
    18: (BASIC, (2, 2, 2, 2)),
    34: (BASIC, (3, 4, 6, 3)),
    50: (BOTTLENECK, (3, 4, 6, 3)),
    101: (BOTTLENECK, (3, 4, 23, 3)),
    152: (BOTTLENECK, (3, 8, 36, 3)),
    200: (BOTTLENECK, (3, 24, 36, 3)),
}
IMAGENET_FILTERS = (64, 128, 256, 512)

# CIFAR (Sec. 4.2): depth 6n+2, three stages of n basic blocks on 32, 16 and
# 8 pixel maps with 16, 32 and 64 filters.
CIFAR_FILTERS = (16, 32, 64)

DEFAULTS = {CIFAR: Defaults("A", 10, 32), IMAGENET: Defaults("B", 1000, 224)}
DATA_FORMATS = ("channels_last", "channels_first")


def integer(value):
    """`value` as an int if it is one (a Python or numpy integer, not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def integer_or_same(value):
    """`value` as an int if it is one (numpy ints too), else `value` unchanged
    (for a check after it to refuse by name)."""
    as_int = integer(value)
    return value if as_int is None else as_int


def check_data_format(data_format):
    """`data_format`, or Keras's `image_data_format()` for None.

    Raises:
        ValueError: for anything but None, "channels_last" or "channels_first".
    """
    if data_format is None:
        import keras  # Here only: importing specs imports no Keras (the zoo's commands read it first).

        return keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            "`data_format` must be None, 'channels_last' or 'channels_first'. "
            f"Received data_format={data_format!r}."
        )
    return data_format


def boolean(value):
    """`value` as a bool if it is one (a Python or numpy bool), else None.

    Truthy strings ("no") and ints are not booleans here.
    """
    return bool(value) if isinstance(value, (bool, np.bool_)) else None


def check_bool(name, value):
    """Returns argument `name` as a bool, or raises naming what it received."""
    flag = boolean(value)
    if flag is None:
        raise ValueError(f"`{name}` must be True or False. Received {name}={value!r}.")
    return flag


def real(value):
    """`value` as a float if it is a finite real number (Python or numpy,
    not a bool), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def is_cifar_depth(depth):
    """Whether `depth` has the CIFAR form 6n+2 with n >= 1."""
    return depth >= 8 and (depth - 2) % 6 == 0


def imagenet_spec(depth):
    block, counts = IMAGENET_BLOCKS[depth]
    stages = tuple(
        Stage(f"conv{i + 2}", filters, blocks, 1 if i == 0 else 2)
        for i, (filters, blocks) in enumerate(zip(IMAGENET_FILTERS, counts))
    )
    return Spec(IMAGENET, depth, block, stages)


def cifar_spec(depth):
    n = (depth - 2) // 6
    stages = tuple(
        Stage(f"conv{i + 2}", filters, n, 1 if i == 0 else 2)
        for i, filters in enumerate(CIFAR_FILTERS)
    )
    return Spec(CIFAR, depth, BASIC, stages)


def _valid_depths_message():
    return (
        f"ImageNet depths {tuple(IMAGENET_BLOCKS)}, or a CIFAR depth 6n+2 "
        "with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, ...)"
    )


def resolve_family(depth, family=None):
    """Checks `depth` and `family` and returns the family the depth means.

    18/34/50/101/152/200 mean the ImageNet nets. Of those, 50, 152 and 200
    also have the CIFAR form 6n+2: the CIFAR nets of those depths need
    `family="cifar"`. Any other 6n+2 depth is a CIFAR net.

    Raises:
        ValueError: naming the value received and what is valid.
    """
    if integer(depth) is None:
        raise ValueError(
            f"`depth` must be an int: {_valid_depths_message()}. "
            f"Received depth={depth!r} of type {type(depth).__name__}."
        )
    depth = integer(depth)
    if family is not None and family not in FAMILIES:
        raise ValueError(
            f"`family` must be None, 'cifar' or 'imagenet'. "
            f"Received family={family!r}."
        )
    if family == IMAGENET:
        if depth not in IMAGENET_BLOCKS:
            raise ValueError(
                f"family='imagenet' has depths {tuple(IMAGENET_BLOCKS)}. "
                f"Received depth={depth!r}."
            )
        return IMAGENET
    if family == CIFAR:
        if not is_cifar_depth(depth):
            raise ValueError(
                "family='cifar' needs a depth 6n+2 with n >= 1 "
                f"(8, 14, 20, 32, 44, 56, 110, 1202, ...). "
                f"Received depth={depth!r}."
            )
        return CIFAR
    if depth in IMAGENET_BLOCKS:
        return IMAGENET
    if is_cifar_depth(depth):
        return CIFAR
    raise ValueError(
        f"`depth` must be one of the {_valid_depths_message()}. "
        f"Received depth={depth!r}."
    )


def get_spec(depth, family=None):
    """Returns the `Spec` for `depth` (see `resolve_family`)."""
    family = resolve_family(depth, family)
    depth = integer(depth)
    return imagenet_spec(depth) if family == IMAGENET else cifar_spec(depth)

