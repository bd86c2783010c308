"""What ResNet a built model is: the one decoder of our layer names.

    arch = keras_resnet.architecture_of(model)
    arch.family, arch.depth, arch.shortcut, arch.plain, arch.variant
    arch.strides["conv3_block1_1_conv"], arch.classes, arch.include_top
    arch.net      # the keras_resnet net: `model`, or the model nested in it

Everything in the library that needs to know how a net was built (the
checks of `weights=`, `stage_output_names`, the zoo's analysis and
evaluation) asks this module; nothing else reads layer names to find out.
The names it reads are the ones `keras_resnet.blocks` gives (its module
docstring lists them). A model that is not a keras_resnet net is refused
by name. Foreign nets (keras.applications, torchvision or akamaster
state dicts) have their own names and are read where they are ported
(`keras_resnet.convert`, `keras_resnet.porting`).
"""

import dataclasses
import re

import keras

from keras_resnet import specs

# The stem conv every keras_resnet net (and keras.applications ResNet) has.
STEM_CONV = "conv1_conv"
# The classifier `ResNet(include_top=True)` ends with.
CLASSIFIER = "predictions"
# Where ImageNet nets differ from CIFAR ones: the 3x3/2 max-pool after the stem.
_IMAGENET_POOL = "pool1_pool"
# The convs the paper counts (stem and each block's 1, 2 and 3), not the projections.
_COUNTED_CONV = re.compile(r"conv\d(_block\d+_[123])?_conv")
_PROJECTION = re.compile(r"(conv\d_block\d+)_0_conv")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """How a keras_resnet net was built.

    Attributes:
        family: "cifar" or "imagenet".
        depth: weighted layers, as the paper counts them.
        plain: True for a plain net (no shortcuts).
        shortcut: "A", "B" or "C"; None for a plain net.
        variant: "v1" or "v1.5" for bottleneck nets; None for basic blocks.
        strides: conv layer name -> its strides, e.g.
            {"conv3_block1_1_conv": (2, 2), ...}.
        classes: units of the classifier; None without one.
        include_top: whether the net ends with the classifier.
        net: the keras_resnet net itself (the model given, or the functional
            model nested in it); None when read from a saved config.
    """

    family: str
    depth: int
    plain: bool
    shortcut: object
    variant: object
    strides: dict = dataclasses.field(hash=False, repr=False)
    classes: object = None
    include_top: bool = False
    net: object = dataclasses.field(default=None, compare=False, hash=False, repr=False)

    def stage_outputs(self):
        """{stage: name of the layer that outputs it}, e.g. {"conv2": "conv2_block3_out", ...}."""
        spec = specs.get_spec(self.depth, self.family)
        return {stage.name: f"{stage.name}_block{stage.blocks}_out" for stage in spec.stages}

    def constructor(self):
        """The `keras_resnet.ResNet(...)` call that builds this net, for messages."""
        defaults = specs.DEFAULTS[self.family]
        arguments = [str(self.depth)]
        if self.plain:
            arguments.append("plain=True")
        elif self.shortcut != defaults.shortcut:
            arguments.append(f"shortcut={self.shortcut!r}")
        if self.variant == "v1.5":
            arguments.append("variant='v1.5'")
        if self.family == specs.CIFAR and self.depth in specs.IMAGENET_BLOCKS:
            arguments.append("family='cifar'")
        return f"keras_resnet.ResNet({', '.join(arguments)})"


def check_graph_model(model, argument="model"):
    """Raises unless `model` is a keras.Model with a graph of layers.

    What reads a model's layers and their shapes (FLOP counts, BN folding,
    export, conversions, feature maps) needs a functional model, or a
    Sequential built with an input shape; a subclassed model's layers have
    no graph to read, and an unbuilt one has no shapes yet.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`{argument}` must be a keras.Model. Received {argument}={model!r:.200} "
            f"(a {type(model).__name__})."
        )
    try:
        inputs = model.inputs
    except AttributeError:  # a Sequential not built yet; subclassed models have none
        inputs = None
    if not inputs:
        kind = "a Sequential" if isinstance(model, keras.Sequential) else "a subclassed model"
        raise ValueError(
            f"`{argument}` must be a built functional keras.Model, but {model.name!r} "
            f"({kind}) has no inputs yet, so its layers have no graph or shapes to read. Build "
            "it from keras.Input, or give a Sequential its input (keras.Input first, or "
            "model.build((None, H, W, C))); a subclassed model has no graph of layers."
        )


def architecture_of(model):
    """What ResNet `model` is, read from its layer names and strides.

    Args:
        model: a model built by `keras_resnet.ResNet` (or loaded from one's
            `.keras` file), or a functional model holding one as a nested
            model (a zoo run's model: its per-pixel mean, then the net).

    Returns:
        An `Architecture` (family, depth, plain, shortcut, variant, strides,
        classes, include_top, and the net itself).

    Raises:
        ValueError: if `model` is not a built functional keras.Model, or
            holds no keras_resnet net (no layer named "conv1_conv"); the
            message names what was received.
    """
    check_graph_model(model)
    net = _find_net(model)
    if net is None:
        shown = [layer.name for layer in model.layers[:6]]
        raise ValueError(
            f"Model {model.name!r} is not a keras_resnet net and holds none: it has no layer "
            f"named {STEM_CONV!r} (its first layers: {shown}). Build it with keras_resnet.ResNet."
        )
    names = {layer.name for layer in net.layers}
    classes = net.get_layer(CLASSIFIER).units if CLASSIFIER in names else None
    arch = from_layers([(layer.name, getattr(layer, "strides", None)) for layer in net.layers], classes)
    return dataclasses.replace(arch, net=net)


def _find_net(model):
    if any(layer.name == STEM_CONV for layer in model.layers):
        return model
    for layer in model.layers:
        if isinstance(layer, keras.Model) and any(inner.name == STEM_CONV for inner in layer.layers):
            return layer
    return None


def from_layers(layers, classes=None):
    """The `Architecture` of a net given as (name, strides) of its layers.

    The decoder `architecture_of` uses, for what has no built model: the
    layers listed in a saved `.keras` config (nested models flattened).
    `net` is None; `classes` is what the caller read (the classifier's
    units), and `include_top` says whether a classifier layer is listed.

    Returns:
        The `Architecture`, or None if the layers are not a keras_resnet net
        (no "conv1_conv").
    """
    layers = list(layers)
    names = {name for name, _ in layers}
    if STEM_CONV not in names:
        return None
    strides = {
        name: tuple(value) for name, value in layers
        if value is not None and name.endswith("_conv")
    }
    plain = not any(name.endswith("_add") for name in names)
    bottleneck = any(name.endswith("_3_conv") for name in names)
    # Option C projects on blocks that keep their dimensions too: any block
    # but a stage's first, and the first block of conv2 in basic-block nets
    # (a bottleneck's conv2_block1 widens 4x, so B projects there as well).
    projected = [m.group(1) for m in map(_PROJECTION.fullmatch, names) if m]
    if plain:
        shortcut = None
    elif any(not block.endswith("_block1") for block in projected) or (
            not bottleneck and "conv2_block1" in projected):
        shortcut = "C"
    elif any(name.endswith("_0_pad") for name in names):
        shortcut = "A"
    else:
        shortcut = "B"
    variant = None
    if bottleneck:
        variant = "v1.5" if strides.get("conv3_block1_2_conv") == (2, 2) else "v1"
    return Architecture(
        family=specs.IMAGENET if _IMAGENET_POOL in names else specs.CIFAR,
        depth=sum(1 for n in names if _COUNTED_CONV.fullmatch(n)) + 1,  # + the classifier
        plain=plain,
        shortcut=shortcut,
        variant=variant,
        strides=strides,
        classes=classes,
        include_top=CLASSIFIER in names,
    )
