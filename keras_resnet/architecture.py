"""What ResNet a built model is: its architecture record, or its layer names.

    arch = keras_resnet.architecture_of(model)
    arch.family, arch.depth, arch.shortcut, arch.plain, arch.variant
    arch.strides["conv3_block1_1_conv"], arch.classes, arch.include_top
    arch.input_preprocessing   # what its input must already be, e.g. "torch"
    arch.net      # the keras_resnet net: `model`, or the model nested in it

A model `ResNet` builds carries an architecture record (`Architecture.
to_config()`) in its `get_config()`, so `.keras` files keep it and
`keras.saving.load_model` restores it: the record is read, not guessed.
Layer names are decoded only for what has no record: `.weights.h5` files,
`.keras` files written before the record existed, and other projects' nets
named as keras.applications names its ResNets. The decoder accepts a net
only if its layer names are exactly those `ResNet` gives some net
(`keras_resnet.blocks.layer_names`); a truncated net (a feature extractor),
a net with layers ours never has, or a foreign model that shares a name or
two is refused with the reason, never given a made-up depth.

Why a record beside the functional graph, rather than a config of the
constructor's arguments with the graph rebuilt by `from_config` (keras-hub's
way): the graph is what Keras saves, clones and quantizes. A config of
arguments would lose what users change in place (a frozen layer, a
regularizer, a layer's dtype policy, `model.quantize`'s variables), could not
describe what `clone_model`, `fold_batchnorm` or an `input_tensor` make, and
would leave `.keras` files without the layer list that the `weights=` checks
and files written before read. Nesting in another model, `DeepResNet` and old
files work as before. The price: a file loaded without `import keras_resnet`
fails with Keras's TypeError, which quotes the whole config.

Everything in the library that needs to know how a net was built (the
checks of `weights=`, `stage_output_names`, the zoo's analysis and
evaluation) asks this module. keras-hub, torchvision and akamaster nets
have names of their own and are read where they are ported
(`keras_resnet.convert`, `keras_resnet.porting`).
"""

import dataclasses

import keras

from keras_resnet import blocks
from keras_resnet import names as names_lib
from keras_resnet import specs

# Kept importable from here, where they were first defined.
STEM_CONV = names_lib.STEM_CONV
CLASSIFIER = names_lib.CLASSIFIER
POOLINGS = (None, "avg", "max")
# The fields a record holds, in order (`strides`, `input_shape` and `net`
# are read from the net's layers instead).
RECORD_FIELDS = (
    "family", "depth", "plain", "shortcut", "variant", "classes", "include_top", "pooling",
    "data_format", "preprocessing", "weights", "input_preprocessing",
)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """How a keras_resnet net was built, and the input it takes.

    Two architectures are equal when their nets are (family through
    pooling); the input fields do not take part.

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
        pooling: the global pooling after the last stage: "avg" or "max";
            None (no top) for the feature map.
        input_shape: one image's shape, e.g. (32, 32, 3); None if unknown.
        data_format: "channels_last" or "channels_first"; None if unknown.
        preprocessing: the preprocessing the model applies itself
            (`include_preprocessing=True`), a `keras_resnet.preprocessing`
            mode; it then takes raw RGB pixels 0..255. None if it has none.
        weights: the preset the weights were loaded from when it was built,
            e.g. "cifar10"; None for random weights or a file.
        input_preprocessing: the preprocessing its input must already have
            had: the preset's mode, for preset weights without
            `include_preprocessing=True`. None: no such expectation.
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
    pooling: object = None
    input_shape: object = dataclasses.field(default=None, compare=False)
    data_format: object = dataclasses.field(default=None, compare=False)
    preprocessing: object = dataclasses.field(default=None, compare=False, hash=False, repr=False)
    weights: object = dataclasses.field(default=None, compare=False)
    input_preprocessing: object = dataclasses.field(default=None, compare=False, hash=False, repr=False)

    def stage_outputs(self):
        """{stage: name of the layer that outputs it}, e.g. {"conv2": "conv2_block3_out", ...}."""
        spec = specs.get_spec(self.depth, self.family)
        return {stage.name: names_lib.stage_output(stage.name, stage.blocks) for stage in spec.stages}

    def constructor(self):
        """The `keras_resnet.ResNet(...)` call that builds this net, for messages.

        It names every argument that differs from `ResNet`'s default and is
        known: the net, its top, its input shape and data format, and the
        preset weights and preprocessing it was built with.
        """
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
        arguments += self._top_arguments(defaults)
        size = defaults.size
        if self.input_shape is not None and tuple(self.input_shape) not in ((size, size, 3), (3, size, size)):
            arguments.append(f"input_shape={tuple(self.input_shape)!r}")
        if self.data_format == "channels_first":
            arguments.append("data_format='channels_first'")
        if self.weights is not None:
            arguments.append(f"weights={self.weights!r}")
            if self.preprocessing is not None:
                arguments.append("include_preprocessing=True")
        return f"keras_resnet.ResNet({', '.join(arguments)})"

    def _top_arguments(self, defaults):
        if not self.include_top:
            return ["include_top=False"] + ([f"pooling={self.pooling!r}"] if self.pooling else [])
        arguments = [] if self.classes in (None, defaults.classes) else [f"classes={self.classes}"]
        return arguments + (["pooling='max'"] if self.pooling == "max" else [])

    def to_config(self):
        """The architecture record: what `ResNetModel.get_config()` saves (JSON types)."""
        return {field: _jsonable(getattr(self, field)) for field in RECORD_FIELDS}

    @classmethod
    def from_config(cls, record, strides=None, net=None, input_shape=None):
        """The `Architecture` a record describes; `strides`, `net` and
        `input_shape` come from the net's layers (a record does not hold them).

        Keys a newer keras_resnet may add are ignored.

        Raises:
            ValueError: naming the field of a record that is not one.
        """
        if not isinstance(record, dict):
            raise ValueError(f"An architecture record is a dict. Received {record!r:.200}.")
        fields = {field: record.get(field) for field in RECORD_FIELDS}
        _check_record(fields)
        return cls(strides=dict(strides or {}), net=net,
                   input_shape=None if input_shape is None else tuple(input_shape), **fields)


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _check_record(fields):
    """Raises unless `fields` describe a net `ResNet` can build."""
    def refuse(field, valid):
        raise ValueError(
            f"An architecture record's {field!r} must be {valid}. Received {field}={fields[field]!r:.200}.")

    if fields["family"] not in specs.FAMILIES:
        refuse("family", f"one of {specs.FAMILIES}")
    try:
        specs.get_spec(fields["depth"], fields["family"])
    except ValueError as error:
        raise ValueError(f"An architecture record's depth does not fit its family: {error}") from None
    if fields["plain"] not in (True, False):
        refuse("plain", "True or False")
    if fields["shortcut"] not in ((None,) if fields["plain"] else blocks.SHORTCUTS):
        refuse("shortcut", "None for a plain net" if fields["plain"] else f"one of {blocks.SHORTCUTS}")
    if fields["variant"] not in (None,) + blocks.VARIANTS:
        refuse("variant", f"None or one of {blocks.VARIANTS}")
    if fields["include_top"] not in (True, False):
        refuse("include_top", "True or False")
    if fields["include_top"] and (specs.integer(fields["classes"]) is None or fields["classes"] < 1):
        refuse("classes", "a positive int with include_top=True")
    if fields["pooling"] not in POOLINGS:
        refuse("pooling", f"one of {POOLINGS}")
    if fields["data_format"] not in (None,) + specs.DATA_FORMATS:
        refuse("data_format", f"None or one of {specs.DATA_FORMATS}")
    if fields["weights"] is not None and not isinstance(fields["weights"], str):
        refuse("weights", "None or a preset name")
    from keras_resnet import presets  # the modes' owner

    for field in ("preprocessing", "input_preprocessing"):
        if fields[field] is not None:
            try:
                presets.preprocessing_parameters(fields[field])
            except ValueError as error:
                raise ValueError(f"An architecture record's {field!r} is not a preprocessing mode: {error}") from None


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
    """What ResNet `model` is: its architecture record, or its layer names.

    Args:
        model: a model built by `keras_resnet.ResNet` (or loaded from one's
            `.keras` file), or a functional model holding one as a nested
            model (a zoo run's model: its per-pixel mean, then the net).
            Nets without a record (older files, keras.applications' ResNets)
            are read from their layer names.

    Returns:
        An `Architecture` (family, depth, plain, shortcut, variant, strides,
        classes, include_top, pooling, the input it takes, and the net).

    Raises:
        ValueError: if `model` is not a built functional keras.Model; if it
            holds no keras_resnet net, or two; if its net is not a whole one
            (a truncated net, extra or missing layers); or if it is a
            keras-hub model (`keras_resnet.convert.from_keras_hub` ports
            it). The message names the model and the reason.
    """
    check_graph_model(model)
    _refuse_keras_hub(model)
    nets = _nets_in(model)
    if not nets:
        shown = [layer.name for layer in model.layers[:6]]
        raise ValueError(
            f"Model {model.name!r} is not a keras_resnet net and holds none: it has no layer "
            f"named {STEM_CONV!r} (its first layers: {shown}). Build it with keras_resnet.ResNet."
        )
    if len(nets) > 1:
        raise ValueError(
            f"Model {model.name!r} holds {len(nets)} keras_resnet nets, "
            f"{', '.join(repr(net.name) for net in nets)}, so it is none of them: ask "
            "architecture_of about each (model.get_layer(name))."
        )
    net = nets[0]
    strides = {layer.name: tuple(layer.strides) for layer in net.layers
               if getattr(layer, "strides", None) is not None and layer.name.endswith("_conv")}
    input_shape = tuple(net.inputs[0].shape[1:]) if len(net.inputs) == 1 else None
    record = getattr(net, "architecture_record", None)
    if record is not None:
        return Architecture.from_config(record, strides, net, input_shape)
    try:
        arch = decode({layer.name for layer in net.layers}, strides)
    except ValueError as error:
        raise ValueError(f"Model {net.name!r} is not a whole keras_resnet net: {error}") from None
    return dataclasses.replace(arch, net=net, input_shape=input_shape, **_input_fields(net, arch))


def _input_fields(net, arch):
    """What a net without a record says about its classes and its input."""
    from keras_resnet import preprocessing  # imports the presets; not needed above

    fields = {"classes": net.get_layer(CLASSIFIER).units if arch.include_top else None}
    stem = net.get_layer(STEM_CONV)
    fields["data_format"] = getattr(stem, "data_format", None)
    found = [layer.mode for layer in net.layers if isinstance(layer, preprocessing.Preprocessing)]
    fields["preprocessing"] = found[0] if len(found) == 1 else None
    return fields


def _is_net(model):
    return getattr(model, "architecture_record", None) is not None or any(
        layer.name == STEM_CONV for layer in model.layers)


def _nets_in(model):
    """The keras_resnet nets `model` is or holds (nested models searched too)."""
    found = [model] if _is_net(model) else []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer is not model:
            found += _nets_in(layer)
    return found


def keras_hub_class(model):
    """The keras-hub class of `model` or of a model nested in it, or None."""
    for candidate in [model] + [layer for layer in model.layers if isinstance(layer, keras.Model)]:
        if type(candidate).__module__.split(".")[0] == "keras_hub":
            return type(candidate).__name__
    return None


def _refuse_keras_hub(model):
    cls = keras_hub_class(model)
    if cls is not None:
        raise ValueError(
            f"Model {model.name!r} is a keras-hub {cls}, not a keras_resnet net: its layers "
            "have keras-hub's names (stack0_block0_..., pooler). "
            "keras_resnet.convert.from_keras_hub(model) builds the keras_resnet net with its weights."
        )


def from_layers(layers, classes=None):
    """The `Architecture` of a net given as (name, strides) of its layers.

    The decoder `architecture_of` uses for nets without a record, and for
    what has no built model: the layers listed in a saved `.keras` config
    (nested models flattened). `net` is None; `classes` is what the caller
    read (the classifier's units).

    Returns:
        The `Architecture`, or None if the layers are not a keras_resnet net
        (no "conv1_conv").

    Raises:
        ValueError: if they have our stem but are not a whole net (see
            `decode`).
    """
    layers = list(layers)
    names = {name for name, _ in layers}
    if STEM_CONV not in names:
        return None
    strides = {name: tuple(value) for name, value in layers
               if value is not None and str(name).endswith("_conv")}
    return dataclasses.replace(decode(names, strides), classes=classes)


def decode(layer_names, strides=None):
    """The `Architecture` whose layer names are exactly `layer_names`.

    Names `ResNet` never gives (an input, a preprocessing layer, a user's
    head) are ignored; every name it could give (`keras_resnet.names.
    is_ours`) must belong to the net found. A net without any BN layer
    reads as the net whose BNs `fold_batchnorm` folded away. The net is found from the
    blocks per stage (depth, family, block type), then each shortcut option
    and variant is tried: the one whose names (`blocks.layer_names`) are the
    net's, pooling and classifier apart, is the answer.

    Args:
        layer_names: the names of the net's layers.
        strides: conv layer name -> strides, stored in the result.

    Raises:
        ValueError: saying why no keras_resnet net has these names.
    """
    ours = {name for name in layer_names if names_lib.is_ours(name)}
    spec = _spec_of(ours)
    pooling, include_top = _head_of(ours)
    body = ours - {names_lib.CLASSIFIER, *names_lib.POOLS.values()}
    # `fold_batchnorm` folds every BN into its conv: such a net has none left.
    folded = not any(name.endswith(f"_{names_lib.BN}") for name in body)
    variants = blocks.VARIANTS if spec.block == specs.BOTTLENECK else ("v1",)
    candidates = [(shortcut, variant) for shortcut in (None,) + blocks.SHORTCUTS for variant in variants]
    differences = {}
    for shortcut, variant in candidates:
        expected = blocks.layer_names(spec, shortcut, variant)
        if folded:
            expected = {name for name in expected if not name.endswith(f"_{names_lib.BN}")}
        if expected == body:
            return Architecture(
                family=spec.family, depth=spec.depth, plain=shortcut is None, shortcut=shortcut,
                variant=variant if spec.block == specs.BOTTLENECK else None, strides=dict(strides or {}),
                include_top=include_top, pooling=pooling)
        differences[(shortcut, variant)] = (sorted(body - expected), sorted(expected - body))
    (shortcut, variant), (extra, missing) = min(differences.items(), key=lambda item: sum(map(len, item[1])))
    nearest = "a plain net" if shortcut is None else f"option {shortcut}"
    raise ValueError(
        f"its layers are those of no keras_resnet net. The nearest, the {spec.family} "
        f"{spec.depth}-layer net with {nearest}{f' ({variant})' if len(variants) > 1 else ''}, "
        f"has no layers {_listed(extra)} and lacks {_listed(missing)}."
    )


def _listed(items, shown=4):
    return "[]" if not items else f"{items[:shown]}{f' (+{len(items) - shown} more)' if len(items) > shown else ''}"


def _spec_of(ours):
    """The `Spec` of a net from the blocks per stage its layer names show."""
    counts, bottleneck = {}, False
    for name in ours:
        parsed = names_lib.parse_block_layer(name)
        if parsed is not None:
            stage, index, rest = parsed
            counts[stage] = max(counts.get(stage, 0), index)
            bottleneck = bottleneck or rest == f"3_{names_lib.CONV}"
    family = specs.IMAGENET if names_lib.STEM_POOL_LAYER in ours else specs.CIFAR
    stages = sorted(counts, key=names_lib.stage_number)
    layout = tuple(counts[stage] for stage in stages)
    block = specs.BOTTLENECK if bottleneck else specs.BASIC
    expected_stages = [names_lib.stage(i + 2) for i in range(len(stages))]
    depth = None
    if stages == expected_stages:
        if family == specs.IMAGENET:
            depth = next((d for d, row in specs.IMAGENET_BLOCKS.items() if row == (block, layout)), None)
        elif block == specs.BASIC and len(layout) == len(specs.CIFAR_FILTERS) and len(set(layout)) == 1:
            depth = 6 * layout[0] + 2
    if depth is None:
        found = ", ".join(f"{s}: {n}" for s, n in zip(stages, layout)) or "none"
        raise ValueError(
            f"its {block} blocks per stage ({found}) are those of no {family} ResNet "
            f"({_layouts(family)}). A net cut short (e.g. by feature_extractor) is part of "
            "a net, not a whole one."
        )
    return specs.get_spec(depth, family)


def _layouts(family):
    if family == specs.IMAGENET:
        return ", ".join(f"{d}: {block} {layout}" for d, (block, layout) in specs.IMAGENET_BLOCKS.items())
    return f"{len(specs.CIFAR_FILTERS)} stages of n basic blocks each"


def _head_of(ours):
    """(pooling, include_top) from the head's layer names."""
    pools = [kind for kind, name in names_lib.POOLS.items() if name in ours]
    include_top = names_lib.CLASSIFIER in ours
    if len(pools) > 1 or (include_top and not pools):
        raise ValueError(
            f"its head ({sorted(ours & {names_lib.CLASSIFIER, *names_lib.POOLS.values()})}) is not "
            "a keras_resnet head: one global pooling, then optionally the classifier."
        )
    return (pools[0] if pools else None), include_top
