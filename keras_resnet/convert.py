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

from keras_resnet import porting
from keras_resnet import specs
from keras_resnet import torch_checkpoint
from keras_resnet.architecture import STEM_CONV, check_graph_model
from keras_resnet.models import ResNet

__all__ = ["from_cifar_option_a", "from_keras_applications", "from_keras_cv", "from_torchvision"]


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
    names = {layer.name for layer in model.layers}
    if any(name.endswith("_preact_bn") for name in names) or "post_bn" in names:
        raise ValueError(
            f"Model {model.name!r} is a ResNetV2 (pre-activation) net; only "
            "the v1 nets ResNet50/101/152 port to keras_resnet."
        )
    depth, block = _depth_from_names(names, r"conv(\d)_block(\d+)_1_conv", source=model.name)
    conv1 = model.get_layer(STEM_CONV)  # keras.applications names its layers as we do
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
    backbone = getattr(model, "backbone", model)
    check_graph_model(backbone, "model.backbone")
    names = {layer.name for layer in backbone.layers}
    depth, block = _depth_from_names(
        names, r"v2_stack_(\d)_block(\d+)_1_conv", source=backbone.name
    )
    has_top = any(layer.name == "predictions" for layer in model.layers)
    rescaling = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Rescaling)]
    if rescaling and "input_tensor" not in kwargs:
        inputs = keras.Input(shape=tuple(backbone.input_shape[1:]), name="images")
        kwargs["input_tensor"] = keras.layers.Rescaling(
            rescaling[0].scale, rescaling[0].offset, name="rescaling"
        )(inputs)
    ours = _build_like(model, depth, "v1", kwargs, has_top=has_top)

    arrays = {}
    for layer in ours.layers:
        if not layer.weights:
            continue
        source_name = re.sub(
            r"^conv(\d)_", lambda m: f"v2_stack_{int(m.group(1)) - 2}_", layer.name
        ) if layer.name.startswith(("conv2", "conv3", "conv4", "conv5")) else layer.name
        source = (model if layer.name == "predictions" else backbone).get_layer(source_name)
        if layer.name.endswith("_bn"):
            arrays[layer.name] = porting.fold_batch_norm(
                *(w.numpy() for w in source.weights),
                epsilon=source.epsilon, target_epsilon=layer.epsilon,
            )
        else:
            arrays[layer.name] = [w.numpy() for w in source.weights]
    return porting.assign(ours, arrays)


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
    names = {layer.name for layer in source.layers}
    if has_top is None:
        has_top = "predictions" in names
    kwargs.setdefault("include_top", has_top)
    if "input_tensor" not in kwargs:
        kwargs.setdefault("input_shape", tuple(source.input_shape[1:]))
    if kwargs["include_top"]:
        if not has_top:
            raise ValueError(
                f"include_top=True needs a classifier, but {source.name!r} "
                "has no 'predictions' layer. Pass include_top=False."
            )
        dense = source.get_layer("predictions")
        kwargs.setdefault("classes", dense.units)
        activation = dense.get_config()["activation"]
        kwargs.setdefault("classifier_activation", None if activation == "linear" else activation)
    if "pooling" not in kwargs:
        if "max_pool" in names:
            kwargs["pooling"] = "max"
        elif "avg_pool" in names:
            kwargs["pooling"] = "avg"
    return ResNet(depth, variant=variant, **kwargs)
