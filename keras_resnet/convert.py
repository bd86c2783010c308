"""Port weights from keras.applications, torchvision/timm, keras-cv and
option-A CIFAR PyTorch checkpoints (akamaster/pytorch_resnet_cifar10).

Each converter reads the peer's weights, builds the matching
`keras_resnet.ResNet` and returns it with the weights loaded, so that it
computes the same function as the peer (tests/test_convert.py proves it on
random weights, max abs difference <= 1e-4).

    model = keras_resnet.convert.from_keras_applications(
        keras.applications.ResNet50(weights="imagenet"))
    model = keras_resnet.convert.from_torchvision(
        keras_resnet.porting.load_safetensors("resnet18.safetensors"))
    model = keras_resnet.convert.from_keras_cv(backbone)
    model = keras_resnet.convert.from_cifar_option_a("resnet20-12fca82f.th")

What differs between the layouts, and how the weights are mapped, is
explained in `keras_resnet.porting`, which does the mapping (numpy arrays
in and out) for these converters and for the presets.

keras-cv pads its stride-2 layers with TensorFlow's "same", which pads one
pixel more at the bottom/right than at the top/left when the input side is
even. Ours pad symmetrically (as Caffe, torchvision and keras.applications
do). The two agree exactly when every stride-2 layer sees an odd side, i.e.
for inputs of side 32k + 1 (e.g. 225); at even sides (224) the ported net
samples a grid shifted by one pixel, which changes the outputs slightly.
Fine-tuning absorbs this; exact reproduction of keras-cv outputs needs odd
sides.
"""

import collections.abc
import os
import re

import keras
import numpy as np

from keras_resnet import architecture as architecture_lib
from keras_resnet import names as names_lib
from keras_resnet import porting
from keras_resnet import specs
from keras_resnet import torch_checkpoint
from keras_resnet.architecture import check_graph_model
from keras_resnet.models import ResNet

__all__ = [
    "from_cifar_option_a", "from_keras_applications", "from_keras_cv", "from_keras_hub", "from_torchvision",
    "to_keras_hub",
]


def from_keras_applications(model, **kwargs):
    """Ports a keras.applications ResNet50/101/152 to `keras_resnet.ResNet`.

    Args:
        model: a `keras.applications.ResNet50`, `ResNet101` or `ResNet152`
            (v1, not the V2 nets), with or without its top, any input size.
        **kwargs: passed to `ResNet` (e.g. `classifier_activation`); by
            default the result copies the source's input shape, top,
            pooling and classifier.

    Returns:
        The `keras_resnet.ResNet` (v1, shortcut "B") with the ported weights.
        It expects Caffe-preprocessed input, as the source does
        (`keras_resnet.preprocess_input(x, weights="imagenet")`).
    """
    check_graph_model(model)
    _refuse_keras_hub(model, "from_keras_applications", "keras.applications")
    names = {layer.name for layer in model.layers}
    if any(name.endswith("_preact_bn") for name in names) or "post_bn" in names:
        raise ValueError(
            f"Model {model.name!r} is a ResNetV2 (pre-activation) net; only "
            "the v1 nets ResNet50/101/152 port to keras_resnet."
        )
    depth, block = _depth_from_names(names, r"conv(\d)_block(\d+)_1_conv", source=model.name)
    conv1 = model.get_layer(names_lib.STEM_CONV)  # keras.applications names its layers as we do
    if conv1.data_format != "channels_last":
        raise ValueError("Only channels_last keras.applications models are supported.")
    ours = _build_like(model, depth, "v1", kwargs)
    return porting.assign(ours, porting.keras_applications_arrays(model, ours))


def from_torchvision(state_dict, *, variant=None, bn_epsilon=porting.TORCH_BN_EPSILON, **kwargs):
    """Ports a torchvision/timm ResNet state dict to `keras_resnet.ResNet`.

    Args:
        state_dict: a mapping from torchvision's key names ("conv1.weight",
            "layer1.0.bn1.running_mean", "layer2.0.downsample.0.weight",
            "fc.weight", ...) to arrays: numpy arrays (e.g. from
            `keras_resnet.porting.load_safetensors`), or anything
            `np.asarray` takes. timm's ResNets use the same names.
            `num_batches_tracked` is ignored.
        variant: stride placement of the bottleneck nets; defaults to
            "v1.5" (torchvision's and timm's ResNet-50/101/152). Pass "v1"
            for checkpoints that stride in the first 1x1 conv (Caffe ports).
        bn_epsilon: the source's BN epsilon (torchvision's is 1e-5).
        **kwargs: passed to `ResNet` (e.g. `input_shape`,
            `classifier_activation`). The top is included when the state
            dict has "fc.weight", unless `include_top=False` is passed.

    Returns:
        The `keras_resnet.ResNet` with the ported weights. It expects
        torch-preprocessed input (`keras_resnet.preprocess_input(x,
        weights="torchvision_imagenet")`), as the source does. The
        classifier outputs softmax probabilities unless
        `classifier_activation=None` is passed (torchvision returns logits).
    """
    if not isinstance(state_dict, collections.abc.Mapping):
        hint = (" To read a file, pass keras_resnet.porting.load_safetensors(path) (or "
                "keras_resnet.torch_checkpoint.load(path)).") if isinstance(state_dict, (str, os.PathLike)) else ""
        raise ValueError(
            "`state_dict` must be a mapping from torchvision's key names to arrays. "
            f"Received {state_dict!r:.100} (a {type(state_dict).__name__}).{hint}"
        )
    arrays = {key: np.asarray(value) for key, value in state_dict.items() if not key.endswith("num_batches_tracked")}
    depth, block = _depth_from_names(
        arrays, r"layer(\d)\.(\d+)\.conv1\.weight", source="state_dict", zero_based=True
    )
    if variant is None:
        variant = "v1.5"
    has_top = "fc.weight" in arrays
    kwargs.setdefault("include_top", has_top)
    if kwargs["include_top"]:
        if not has_top:
            raise ValueError(
                "include_top=True needs the classifier, but the state dict has "
                "no 'fc.weight'. Pass include_top=False."
            )
        kwargs.setdefault("classes", arrays["fc.weight"].shape[0])
    ours = ResNet(depth, variant=variant, **kwargs)
    return porting.assign(ours, porting.torchvision_arrays(arrays, ours, bn_epsilon))


def from_keras_cv(model, **kwargs):
    """Ports a keras-cv ResNet (v1) backbone or image classifier.

    Args:
        model: a `keras_cv.models.ResNetBackbone` (e.g. `ResNet50Backbone`),
            or a `keras_cv.models.ImageClassifier` on one (ported with its
            classifier). keras-cv is an optional extra:
            `pip install keras-resnet-zoo[peers]`.
        **kwargs: passed to `ResNet`; by default the result copies the
            source's input shape and top.

    Returns:
        The `keras_resnet.ResNet` (v1) with the ported weights. If the
        backbone was built with `include_rescaling=True`, the result starts
        with the same `Rescaling(1/255)` and takes raw pixels 0..255.
        Outputs equal keras-cv's for input sides 32k + 1; see the module
        docstring for why even sides differ slightly.
    """
    check_graph_model(model)
    _refuse_keras_hub(model, "from_keras_cv", "keras-cv")
    backbone = getattr(model, "backbone", model)
    check_graph_model(backbone, "model.backbone")
    layer_names = {layer.name for layer in backbone.layers}
    depth, block = _depth_from_names(
        layer_names, r"v2_stack_(\d)_block(\d+)_1_conv", source=backbone.name
    )
    has_top = any(layer.name == names_lib.CLASSIFIER for layer in model.layers)
    rescaling = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Rescaling)]
    if rescaling and "input_tensor" not in kwargs:
        inputs = keras.Input(shape=tuple(backbone.input_shape[1:]), name=names_lib.INPUT)
        kwargs["input_tensor"] = keras.layers.Rescaling(
            rescaling[0].scale, rescaling[0].offset, name="rescaling"
        )(inputs)
    ours = _build_like(model, depth, "v1", kwargs, has_top=has_top)

    def source_layer(name):
        return (model if name == names_lib.CLASSIFIER else backbone).get_layer(name)

    def rename(name):  # keras-cv's stages are v2_stack_0.. for our conv2..
        parsed = names_lib.parse_block_layer(name)
        if parsed is None:
            return name
        return f"v2_stack_{names_lib.stage_number(parsed[0]) - 2}_block{parsed[1]}_{parsed[2]}"

    return porting.assign(ours, porting.keras_arrays(ours, source_layer, rename))


# What keras-hub's ResNetBackbone needs to be one of our nets: its v1 (not
# pre-activation) ImageNet layout with a 7x7 stem, and its two plain block
# types (the "_vd" ones have a three-conv stem and avg-pool shortcuts).
KERAS_HUB_BLOCKS = {"basic_block": specs.BASIC, "bottleneck_block": specs.BOTTLENECK}
_KERAS_HUB_STEM = {"input_conv_filters": [64], "input_conv_kernel_sizes": [7]}
_KERAS_HUB_STAGES = {"stackwise_num_filters": list(specs.IMAGENET_FILTERS), "stackwise_num_strides": [1, 2, 2, 2]}


def from_keras_hub(model, **kwargs):
    """Ports a keras-hub ResNet (v1.5) backbone or image classifier.

    keras-hub's `ResNetBackbone` with `block_type="basic_block"` or
    `"bottleneck_block"` and `use_pre_activation=False` is our ImageNet
    ResNet-18/34/50/101/152 with `variant="v1.5"` (its bottlenecks stride in
    the 3x3 conv), option B shortcuts, layer by layer: stage `stack{i}` is
    our `conv{i + 2}`, block `block{j}` our `block{j + 1}`.

    Args:
        model: a `keras_hub.models.ResNetBackbone`, or a
            `keras_hub.models.ResNetImageClassifier` (any `ImageClassifier`
            on such a backbone), ported with its classifier. keras-hub is an
            optional extra (`pip install keras-resnet-zoo[peers]`); this
            function does not import it.
        **kwargs: passed to `ResNet`; by default the result copies the
            source's image shape, data format, and a classifier's classes,
            activation and pooling.

    Returns:
        The `keras_resnet.ResNet` (v1.5) with the ported weights, computing
        what `model` computes. A classifier's dropout (active only in
        training) is not ported, nor its preprocessor, which keras-hub
        applies outside the model: give ours the input the keras-hub
        model's layers take (for keras-hub's ImageNet presets,
        `keras_resnet.preprocess_input(x, weights="torchvision_imagenet")`
        computes the same normalisation).

    Raises:
        ValueError: for anything else (ResNetV2, the `_vd` variants, other
            stems, widths or strides), naming what does not map.
    """
    check_graph_model(model)
    backbone, classifier = _keras_hub_parts(model)
    depth = _keras_hub_depth(backbone)
    kwargs.setdefault("include_top", classifier is not None)
    if kwargs["include_top"]:
        if classifier is None:
            raise ValueError(
                f"include_top=True needs a classifier, but {model.name!r} is a backbone. "
                "Pass include_top=False, or port the ImageClassifier on it.")
        _classifier_like(classifier.get_layer(names_lib.CLASSIFIER), kwargs)
        kwargs.setdefault("pooling", classifier.pooling)
    if "input_tensor" not in kwargs:
        kwargs.setdefault("input_shape", tuple(backbone.image_shape))
    kwargs.setdefault("data_format", backbone.data_format)
    ours = ResNet(depth, variant="v1.5", **kwargs)

    def source_layer(name):
        return (classifier if name == names_lib.CLASSIFIER else backbone).get_layer(name)

    return porting.assign(ours, porting.keras_arrays(ours, source_layer, porting.keras_hub_name))


def to_keras_hub(model):
    """Ports our ImageNet ResNet (v1.5, option B) to keras-hub.

    The inverse of `from_keras_hub`: a `keras_hub.models.ResNetBackbone`
    built from arguments (nothing is downloaded) with `model`'s weights, or,
    for a model with its classifier, a `keras_hub.models.ResNetImageClassifier`
    on it (no preprocessor: it takes what `model` takes).

    Args:
        model: a `keras_resnet.ResNet` of depth 18, 34, 50, 101 or 152,
            shortcut "B", with `variant="v1.5"` for 50 and deeper (keras-hub
            strides in the 3x3 conv); with its top, or without one and
            `pooling=None` (a keras-hub backbone outputs the last stage's
            feature map). keras-hub must be installed
            (`pip install keras-resnet-zoo[peers]`).

    Returns:
        The keras-hub model, computing what `model` computes.

    Raises:
        ValueError: for a net keras-hub has no counterpart for (CIFAR nets,
            plain nets, options A and C, v1 bottlenecks, the preprocessing
            inside, a pooled output without the classifier), naming it.
        ImportError: without keras-hub.
    """
    arch = _keras_hub_compatible(model)
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            "to_keras_hub needs keras-hub: pip install keras-hub (or keras-resnet-zoo[peers])."
        ) from error
    spec = specs.get_spec(arch.depth, arch.family)
    backbone = keras_hub.models.ResNetBackbone(
        **_KERAS_HUB_STEM, **_KERAS_HUB_STAGES,
        stackwise_num_blocks=[stage.blocks for stage in spec.stages],
        block_type={v: k for k, v in KERAS_HUB_BLOCKS.items()}[spec.block],
        use_pre_activation=False, image_shape=arch.input_shape, data_format=arch.data_format,
    )
    porting.assign(backbone, porting.keras_arrays(
        backbone, lambda name: model.get_layer(porting.name_from_keras_hub(name))))
    if not arch.include_top:
        return backbone
    dense = model.get_layer(names_lib.CLASSIFIER)
    activation = dense.get_config()["activation"]
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=backbone, num_classes=arch.classes, pooling=arch.pooling,
        activation=None if activation == "linear" else activation,
    )
    classifier.get_layer(names_lib.CLASSIFIER).set_weights(dense.get_weights())
    return classifier


def _keras_hub_parts(model):
    """(backbone, classifier or None) of a keras-hub ResNet model."""
    backbone = getattr(model, "backbone", None)
    classifier = model if backbone is not None else None
    backbone = backbone if backbone is not None else model
    if type(backbone).__name__ != "ResNetBackbone" or not type(backbone).__module__.startswith("keras_hub"):
        raise ValueError(
            "from_keras_hub takes a keras_hub.models.ResNetBackbone, or an ImageClassifier on one. "
            f"Received model {model.name!r} (a {type(model).__module__}.{type(model).__name__})."
        )
    if classifier is not None:
        check_graph_model(backbone, "model.backbone")
    return backbone, classifier


def _keras_hub_depth(backbone):
    """The depth of our net that keras-hub `backbone` is; refuses what maps to none."""
    if backbone.use_pre_activation:
        raise ValueError(
            f"{backbone.name!r} is a ResNetV2 (use_pre_activation=True): keras_resnet has the "
            "v1 nets (post-activation) only.")
    if backbone.block_type not in KERAS_HUB_BLOCKS:
        raise ValueError(
            f"{backbone.name!r} has block_type={backbone.block_type!r}: keras_resnet has the "
            f"{sorted(KERAS_HUB_BLOCKS)} nets; the '_vd' ones (a three-conv stem, "
            "average-pooling shortcuts) have no keras_resnet counterpart.")
    for argument, expected in {**_KERAS_HUB_STEM, **_KERAS_HUB_STAGES}.items():
        if list(getattr(backbone, argument)) != expected:
            raise ValueError(
                f"{backbone.name!r} has {argument}={list(getattr(backbone, argument))}; the "
                f"ImageNet ResNets of the paper (and keras_resnet's) have {expected}.")
    block, layout = KERAS_HUB_BLOCKS[backbone.block_type], tuple(backbone.stackwise_num_blocks)
    for depth, row in specs.IMAGENET_BLOCKS.items():
        if row == (block, layout):
            return depth
    raise ValueError(
        f"{backbone.name!r} has {block} blocks per stage {list(layout)}, which is none of "
        f"the ImageNet ResNets {dict(specs.IMAGENET_BLOCKS)}.")


def _keras_hub_compatible(model):
    """`model`'s `Architecture`, if keras-hub has a ResNetBackbone for it."""
    arch = architecture_lib.architecture_of(model)
    problems = []
    if arch.net is not model:
        problems.append(f"it holds the net {arch.net.name!r} nested (pass that net)")
    if arch.family != specs.IMAGENET:
        problems.append("it is a CIFAR net (keras-hub has the ImageNet nets)")
    if arch.plain or arch.shortcut != "B":
        problems.append(f"it has {'no shortcuts' if arch.plain else f'shortcut {arch.shortcut!r}'} "
                        "(keras-hub's nets have option B)")
    if arch.variant == "v1":
        problems.append("its bottlenecks stride in the first 1x1 conv (variant='v1'; "
                        "keras-hub's stride in the 3x3, variant='v1.5')")
    if arch.preprocessing is not None:
        problems.append("it has its preprocessing inside (keras-hub keeps it in a preprocessor)")
    if not arch.include_top and arch.pooling is not None:
        problems.append(f"it ends with pooling={arch.pooling!r} (a keras-hub backbone outputs "
                        "the feature map)")
    if problems:
        raise ValueError(f"Model {model.name!r} has no keras-hub counterpart: {'; '.join(problems)}.")
    return arch


def from_cifar_option_a(checkpoint, *, zeros="split", bn_epsilon=porting.TORCH_BN_EPSILON, **kwargs):
    """Ports an option-A CIFAR ResNet from PyTorch to `keras_resnet.ResNet`.

    Written for akamaster/pytorch_resnet_cifar10 (the public CIFAR-10
    ResNet-20..1202 of the paper's architecture; the `akamaster_cifar10`
    presets are these files, converted): its key names, its shortcut that
    puts the new zero channels on both sides of the identity. Another
    option-A port works after renaming its keys to akamaster's (see
    `keras_resnet.porting.cifar_option_a_arrays`) and, if it appends its
    zero channels as we do, with `zeros="end"`.

    Args:
        checkpoint: a path to a PyTorch checkpoint (read with
            `keras_resnet.torch_checkpoint.load`: no torch needed, nothing
            in the file is run), or what that returns: a dict with a
            "state_dict" entry, or a state dict, of arrays. Keys may carry
            DataParallel's "module." prefix.
        zeros: where the source's option-A shortcut puts the zero channels:
            "split" (akamaster: half before, half after) or "end".
        bn_epsilon: the source's BN epsilon (PyTorch's default, 1e-5).
        **kwargs: passed to `ResNet` (e.g. `include_top`,
            `classifier_activation`; None gives the logits, as the source).

    Returns:
        The CIFAR `keras_resnet.ResNet` (shortcut "A") of the checkpoint's
        depth, computing the same function. akamaster's nets expect
        `(x / 255 - mean) / std` with ImageNet's mean and std
        (`keras_resnet.preprocess_input(x, weights="akamaster_cifar10")`).
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = torch_checkpoint.load(checkpoint)
    state = porting.cifar_state_dict(checkpoint)
    depth = porting.cifar_depth(state)
    if "linear.weight" in state:
        kwargs.setdefault("classes", state["linear.weight"].shape[0])
    else:
        kwargs.setdefault("include_top", False)
    kwargs.setdefault("family", specs.CIFAR)
    ours = ResNet(depth, **kwargs)
    return porting.assign(ours, porting.cifar_option_a_arrays(state, ours, zeros, bn_epsilon))


def _depth_from_names(names, pattern, source, zero_based=False):
    """Finds the ImageNet depth from the names of each block's first conv.

    `pattern` matches those names with two groups, (stage, block index);
    the same pattern with the first conv's index 1 replaced by 3 finds the
    bottleneck blocks' third conv.
    """
    counts, bottleneck = {}, False
    third = pattern.replace("1_conv", "3_conv").replace("conv1", "conv3")
    for name in names:
        match = re.fullmatch(pattern, name)
        if match:
            stage, index = int(match.group(1)), int(match.group(2)) + zero_based
            counts[stage] = max(counts.get(stage, 0), index)
        bottleneck = bottleneck or re.fullmatch(third, name) is not None
    layout = tuple(counts[stage] for stage in sorted(counts))
    block = specs.BOTTLENECK if bottleneck else specs.BASIC
    for depth, (spec_block, spec_layout) in specs.IMAGENET_BLOCKS.items():
        if spec_block == block and spec_layout == layout:
            return depth, block
    raise ValueError(
        f"{source!r} has {block} blocks per stage {layout}, which is none of "
        f"the ImageNet ResNets {dict(specs.IMAGENET_BLOCKS)}."
    )


def _build_like(source, depth, variant, kwargs, has_top=None):
    """Builds our ResNet with the source model's input shape, top and pooling."""
    layer_names = {layer.name for layer in source.layers}
    if has_top is None:
        has_top = names_lib.CLASSIFIER in layer_names
    kwargs.setdefault("include_top", has_top)
    if "input_tensor" not in kwargs:
        kwargs.setdefault("input_shape", tuple(source.input_shape[1:]))
    if kwargs["include_top"]:
        if not has_top:
            raise ValueError(
                f"include_top=True needs a classifier, but {source.name!r} "
                f"has no {names_lib.CLASSIFIER!r} layer. Pass include_top=False."
            )
        _classifier_like(source.get_layer(names_lib.CLASSIFIER), kwargs)
    if "pooling" not in kwargs:
        pooled = [kind for kind, name in names_lib.POOLS.items() if name in layer_names]
        if pooled:
            kwargs["pooling"] = pooled[0]
    return ResNet(depth, variant=variant, **kwargs)


def _classifier_like(dense, kwargs):
    """Sets `classes` and `classifier_activation` in `kwargs` from a peer's classifier."""
    kwargs.setdefault("classes", dense.units)
    activation = dense.get_config()["activation"]
    kwargs.setdefault("classifier_activation", None if activation == "linear" else activation)


def _refuse_keras_hub(model, converter, ports):
    if architecture_lib.keras_hub_class(model) is not None:
        raise ValueError(
            f"{converter} ports {ports} models, but model {model.name!r} is a keras-hub "
            f"{architecture_lib.keras_hub_class(model)}: use keras_resnet.convert.from_keras_hub(model)."
        )
