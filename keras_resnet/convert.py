"""Port weights from keras.applications, torchvision/timm and keras-cv.

Each converter reads the peer's weights, builds the matching
`keras_resnet.ResNet` and returns it with the weights loaded, so that it
computes the same function as the peer (tests/test_convert.py proves it on
random weights, max abs difference <= 1e-4).

    model = keras_resnet.convert.from_keras_applications(
        keras.applications.ResNet50(weights="imagenet"))
    model = keras_resnet.convert.from_torchvision(
        keras_resnet.convert.load_safetensors("resnet18.safetensors"))
    model = keras_resnet.convert.from_keras_cv(backbone)

What differs between the layouts, and how each converter accounts for it:

- keras.applications convs have a bias, and its BN uses epsilon 1.001e-5;
  ours have no bias and epsilon 1e-5. A bias `b` before BN only shifts the
  BN input, so it folds exactly into the moving mean (`mean - b`); the
  epsilon difference folds exactly into the moving variance
  (`var + eps_peer - eps_ours`), since BN only uses `var + eps`.
- torchvision stores conv kernels as (out, in, kh, kw) and the classifier
  as (classes, features); Keras wants (kh, kw, in, out) and (features,
  classes). torchvision's ResNet-50/101/152 stride in the 3x3 conv
  ("v1.5"); keras.applications and keras-cv stride in the first 1x1 ("v1").
- keras-cv pads its stride-2 layers with TensorFlow's "same", which pads one
  pixel more at the bottom/right than at the top/left when the input side is
  even. Ours pad symmetrically (as Caffe, torchvision and keras.applications
  do). The two agree exactly when every stride-2 layer sees an odd side,
  i.e. for inputs of side 32k + 1 (e.g. 225); at even sides (224) the
  ported net samples a grid shifted by one pixel, which changes the outputs
  slightly. Fine-tuning absorbs this; exact reproduction of keras-cv
  outputs needs odd sides.
"""

import re

import numpy as np

from keras_resnet import specs

TORCHVISION_BN_EPSILON = 1e-5
_TORCH_BN = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}


def fold_batch_norm(gamma, beta, mean, variance, *, conv_bias=None, epsilon, target_epsilon):
    """Returns BN weights that compute the same as `conv(+bias) -> BN(epsilon)`
    for a bias-free conv followed by a BN with `target_epsilon`.

    Args:
        gamma, beta, mean, variance: the source BN's weights.
        conv_bias: the source conv's bias, or None.
        epsilon: the source BN's epsilon.
        target_epsilon: the epsilon of the BN that will hold the result.

    Returns:
        [gamma, beta, moving_mean, moving_variance] as float32 arrays.
    """
    mean = np.asarray(mean, np.float64)
    if conv_bias is not None:
        mean = mean - np.asarray(conv_bias, np.float64)
    variance = np.asarray(variance, np.float64) + (epsilon - target_epsilon)
    if np.any(variance < 0):
        raise ValueError(
            f"Cannot fold BN epsilon {epsilon} into epsilon {target_epsilon}: "
            "some moving variances would turn negative."
        )
    return [np.asarray(a, np.float32) for a in (gamma, beta, mean, variance)]


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
    names = {layer.name for layer in model.layers}
    if any(name.endswith("_preact_bn") for name in names) or "post_bn" in names:
        raise ValueError(
            f"Model {model.name!r} is a ResNetV2 (pre-activation) net; only "
            "the v1 nets ResNet50/101/152 port to keras_resnet."
        )
    depth, block = _depth_from_names(names, r"conv(\d)_block(\d+)_1_conv", source=model.name)
    conv1 = model.get_layer("conv1_conv")
    if conv1.data_format != "channels_last":
        raise ValueError("Only channels_last keras.applications models are supported.")
    ours = _build_like(model, depth, "v1", kwargs)
    return assign(ours, keras_applications_arrays(model, ours))


def keras_applications_arrays(peer, model):
    """The weights of keras.applications ResNet `peer`, as `model` needs them.

    Returns:
        A dict from each weighted layer name of `model` to its arrays
        (conv biases and BN epsilon folded into the BN statistics).
    """
    arrays = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        source = peer.get_layer(layer.name)
        if layer.name.endswith("_bn"):
            conv = peer.get_layer(layer.name[:-3] + "_conv")
            bias = conv.bias.numpy() if conv.use_bias else None
            gamma, beta, mean, var = (w.numpy() for w in source.weights)
            arrays[layer.name] = fold_batch_norm(
                gamma, beta, mean, var, conv_bias=bias,
                epsilon=source.epsilon, target_epsilon=layer.epsilon,
            )
        elif layer.name.endswith("_conv"):
            arrays[layer.name] = [source.kernel.numpy()]
        else:  # the classifier
            arrays[layer.name] = [w.numpy() for w in source.weights]
    return arrays


def from_torchvision(state_dict, *, variant=None, bn_epsilon=TORCHVISION_BN_EPSILON, **kwargs):
    """Ports a torchvision/timm ResNet state dict to `keras_resnet.ResNet`.

    Args:
        state_dict: a mapping from torchvision's key names ("conv1.weight",
            "layer1.0.bn1.running_mean", "layer2.0.downsample.0.weight",
            "fc.weight", ...) to arrays: numpy arrays (e.g. from
            `load_safetensors`), or anything `np.asarray` takes. timm's
            ResNets use the same names. `num_batches_tracked` is ignored.
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
    from keras_resnet.models import ResNet  # models imports weights, which imports us

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
    return assign(ours, torchvision_arrays(arrays, ours, bn_epsilon))


def torchvision_arrays(state_dict, model, bn_epsilon=TORCHVISION_BN_EPSILON):
    """The weights of a torchvision-layout state dict, as `model` needs them.

    Every key is used, except `num_batches_tracked` and, for a model
    without a top, `fc.*`.

    Returns:
        A dict from each weighted layer name of `model` to its arrays.

    Raises:
        ValueError: naming a key the state dict lacks, or keys it has that
            the model has no place for.
    """
    arrays = {k: np.asarray(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    used, converted = set(), {}

    def take(key):
        if key not in arrays:
            raise ValueError(
                f"The state dict has no {key!r}, which {model.name!r} needs: "
                "it is not a torchvision-layout ResNet of this depth."
            )
        used.add(key)
        return arrays[key]

    has_top = False
    for layer in model.layers:
        if not layer.weights:
            continue
        key = _torchvision_key(layer.name)
        if layer.name == "predictions":
            has_top = True
            converted[layer.name] = [take("fc.weight").T, take("fc.bias")]
        elif layer.name.endswith("_conv"):
            converted[layer.name] = [take(key + ".weight").transpose(2, 3, 1, 0)]
        else:
            gamma, beta, mean, var = (take(f"{key}.{name}") for name in _TORCH_BN)
            converted[layer.name] = fold_batch_norm(
                gamma, beta, mean, var, epsilon=bn_epsilon, target_epsilon=layer.epsilon
            )
    unused = sorted(set(arrays) - used - (set() if has_top else {"fc.weight", "fc.bias"}))
    if unused:
        raise ValueError(
            f"The state dict has keys {model.name!r} lacks: "
            f"{unused[:5]}{'...' if len(unused) > 5 else ''}."
        )
    return converted


def from_keras_cv(model, **kwargs):
    """Ports a keras-cv ResNet (v1) backbone or image classifier.

    Args:
        model: a `keras_cv.models.ResNetBackbone` (e.g. `ResNet50Backbone`),
            or a `keras_cv.models.ImageClassifier` on one (ported with its
            classifier). keras-cv is an optional extra:
            `pip install keras-resnet[peers]`.
        **kwargs: passed to `ResNet`; by default the result copies the
            source's input shape and top.

    Returns:
        The `keras_resnet.ResNet` (v1) with the ported weights. If the
        backbone was built with `include_rescaling=True`, the result starts
        with the same `Rescaling(1/255)` and takes raw pixels 0..255.
        Outputs equal keras-cv's for input sides 32k + 1; see the module
        docstring for why even sides differ slightly.
    """
    import keras

    backbone = getattr(model, "backbone", model)
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
            arrays[layer.name] = fold_batch_norm(
                *(w.numpy() for w in source.weights),
                epsilon=source.epsilon, target_epsilon=layer.epsilon,
            )
        else:
            arrays[layer.name] = [w.numpy() for w in source.weights]
    return assign(ours, arrays)


def load_safetensors(path):
    """Reads a .safetensors file into a dict of numpy arrays (no torch)."""
    try:
        from safetensors.numpy import load_file
    except ImportError as error:
        raise ImportError(
            "Reading .safetensors files needs the `safetensors` package: "
            "pip install safetensors (or keras-resnet[peers])."
        ) from error
    return load_file(path)


def assign(model, arrays):
    """Checks every array against `model`'s layers, then assigns them all.

    Args:
        model: the target model.
        arrays: dict from layer name to that layer's list of weights.

    Returns:
        `model`, with the weights assigned.
    """
    weighted = [layer for layer in model.layers if layer.weights]
    for layer in weighted:
        if layer.name not in arrays:
            raise ValueError(f"No weights for layer {layer.name!r} of {model.name!r}.")
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(np.shape(a)) for a in arrays[layer.name]]
        if expected != found:
            raise ValueError(
                f"Layer {layer.name!r} of {model.name!r} has weight shapes "
                f"{expected}; the source has {found}."
            )
    for layer in weighted:
        layer.set_weights(arrays[layer.name])
    return model


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


def _torchvision_key(name):
    """Our layer name -> torchvision module path (e.g. 'layer1.0.bn2')."""
    if name.startswith("conv1_"):
        return "conv1" if name.endswith("_conv") else "bn1"
    match = re.fullmatch(r"conv(\d)_block(\d+)_(\d)_(conv|bn)", name)
    if not match:
        return name
    stage, block, index, kind = match.groups()
    prefix = f"layer{int(stage) - 1}.{int(block) - 1}"
    if index == "0":
        return f"{prefix}.downsample.{0 if kind == 'conv' else 1}"
    return f"{prefix}.{kind}{index}"


def _build_like(source, depth, variant, kwargs, has_top=None):
    """Builds our ResNet with the source model's input shape, top and pooling."""
    from keras_resnet.models import ResNet

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
