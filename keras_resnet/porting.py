"""How other projects' ResNet weights map onto ours: arrays in, arrays out.

Each `*_arrays(source, model)` function returns a dict from every weighted
layer name of our `model` to the arrays that make it compute what the
source computes; `assign(model, arrays)` checks and sets them. Nothing here
builds a model: `keras_resnet.convert` builds one and ports into it, and
`keras_resnet.weights` ports into the model `ResNet(weights=...)` built.

What differs between the layouts, and how each map accounts for it:

- keras.applications convs have a bias, and its BN uses epsilon 1.001e-5;
  ours have no bias and epsilon 1e-5. A bias `b` before BN only shifts the
  BN input, so it folds exactly into the moving mean (`mean - b`); the
  epsilon difference folds exactly into the moving variance
  (`var + eps_peer - eps_ours`), since BN only uses `var + eps`.
- PyTorch stores conv kernels as (out, in, kh, kw) and the classifier as
  (classes, features); Keras wants (kh, kw, in, out) and (features,
  classes). torchvision's ResNet-50/101/152 stride in the 3x3 conv
  ("v1.5"); keras.applications and keras-cv stride in the first 1x1 ("v1").
- Option-A CIFAR nets differ in where the shortcut's zero channels go. Ours
  append them; akamaster/pytorch_resnet_cifar10 puts half before and half
  after the identity channels, so there the identity lands in the middle.
  The functions are the same once every channel of the residual stream is
  renumbered consistently, stage by stage (`option_a_channel_orders`).
"""

import re

import numpy as np

from keras_resnet import names

TORCH_BN_EPSILON = 1e-5
_TORCH_BN = ("weight", "bias", "running_mean", "running_var")
# Where an option-A CIFAR checkpoint puts the shortcut's new zero channels.
ZERO_CHANNELS = ("split", "end")


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


def load_safetensors(path):
    """Reads a .safetensors file into a dict of numpy arrays (no torch)."""
    try:
        from safetensors.numpy import load_file
    except ImportError as error:
        raise ImportError(
            "Reading .safetensors files needs the `safetensors` package: "
            "pip install safetensors (or keras-resnet-zoo[peers])."
        ) from error
    return load_file(path)


class _StateDict:
    """A PyTorch state dict being ported: hands out keys, then checks that
    none was left over."""

    def __init__(self, state_dict, model):
        self.arrays = {
            k: np.asarray(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")
        }
        self.model, self.used = model, set()

    def take(self, key):
        if key not in self.arrays:
            raise ValueError(
                f"The state dict has no {key!r}, which {self.model.name!r} "
                "needs: it is not a checkpoint of this layout and depth."
            )
        self.used.add(key)
        return self.arrays[key]

    def batch_norm(self, key, layer, epsilon, order=slice(None)):
        gamma, beta, mean, var = (self.take(f"{key}.{name}")[order] for name in _TORCH_BN)
        return fold_batch_norm(gamma, beta, mean, var, epsilon=epsilon, target_epsilon=layer.epsilon)

    def check_all_used(self, unless=()):
        unused = sorted(set(self.arrays) - self.used - set(unless))
        if unused:
            raise ValueError(
                f"The state dict has keys {self.model.name!r} lacks: "
                f"{unused[:5]}{'...' if len(unused) > 5 else ''}."
            )


def keras_arrays(model, source_layer, rename=None):
    """The weights of a Keras peer, as `model` needs them, layer by layer.

    Args:
        model: the target model.
        source_layer: `source_layer(name)` returns the peer's layer of that
            name.
        rename: maps a layer name of `model` to the peer's name for it;
            the same name by default.

    Returns:
        A dict from each weighted layer name of `model` to its arrays: a
        conv's kernel (a conv bias the peer has is folded into the next BN's
        mean), a BN's statistics (the epsilon difference folded into the
        variance), the classifier's kernel and bias.
    """
    rename = rename or (lambda name: name)
    arrays = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        source = source_layer(rename(layer.name))
        if layer.name.endswith(f"_{names.BN}"):
            conv = source_layer(rename(layer.name[: -len(names.BN)] + names.CONV))
            bias = conv.bias.numpy() if getattr(conv, "use_bias", False) else None
            gamma, beta, mean, var = (w.numpy() for w in source.weights)
            arrays[layer.name] = fold_batch_norm(
                gamma, beta, mean, var, conv_bias=bias,
                epsilon=source.epsilon, target_epsilon=layer.epsilon,
            )
        elif layer.name.endswith(f"_{names.CONV}"):
            arrays[layer.name] = [source.kernel.numpy()]
        else:  # the classifier
            arrays[layer.name] = [w.numpy() for w in source.weights]
    return arrays


def keras_applications_arrays(peer, model):
    """The weights of keras.applications ResNet `peer`, as `model` needs them.

    keras.applications names its layers as we do (`keras_resnet.names`).

    Returns:
        A dict from each weighted layer name of `model` to its arrays
        (conv biases and BN epsilon folded into the BN statistics).
    """
    return keras_arrays(model, peer.get_layer)


def keras_hub_name(name):
    """Our layer name -> keras-hub ResNetBackbone's: stages count from 0 as
    `stack`, blocks from 0 (conv3_block1_2_conv -> stack1_block0_2_conv);
    the stem and the classifier keep their names."""
    parsed = names.parse_block_layer(name)
    if parsed is None:
        return name
    stage, block, rest = parsed
    return f"stack{names.stage_number(stage) - 2}_block{block - 1}_{rest}"


def name_from_keras_hub(name):
    """keras-hub ResNetBackbone's layer name -> ours (`keras_hub_name` reversed)."""
    match = re.fullmatch(r"stack(\d+)_block(\d+)_(\w+)", name)
    if match is None:
        return name
    stage, block, rest = match.groups()
    return names.layer(names.block(names.stage(int(stage) + 2), int(block) + 1), rest)


def torchvision_arrays(state_dict, model, bn_epsilon=TORCH_BN_EPSILON):
    """The weights of a torchvision-layout state dict, as `model` needs them.

    Every key is used, except `num_batches_tracked` and, for a model
    without a top, `fc.*`.

    Returns:
        A dict from each weighted layer name of `model` to its arrays.

    Raises:
        ValueError: naming a key the state dict lacks, or keys it has that
            the model has no place for.
    """
    source, converted = _StateDict(state_dict, model), {}
    for layer in model.layers:
        if not layer.weights:
            continue
        key = _torchvision_key(layer.name)
        if layer.name == names.CLASSIFIER:
            converted[layer.name] = [source.take("fc.weight").T, source.take("fc.bias")]
        elif layer.name.endswith("_conv"):
            converted[layer.name] = [source.take(key + ".weight").transpose(2, 3, 1, 0)]
        else:
            converted[layer.name] = source.batch_norm(key, layer, bn_epsilon)
    source.check_all_used(unless=() if names.CLASSIFIER in converted else ("fc.weight", "fc.bias"))
    return converted


def _torchvision_key(name):
    """Our layer name -> torchvision module path (e.g. 'layer1.0.bn2')."""
    if name.startswith(f"{names.STEM}_"):
        return "conv1" if name.endswith(f"_{names.CONV}") else "bn1"
    parsed = names.parse_block_layer(name)
    match = parsed and re.fullmatch(rf"(\d)_({names.CONV}|{names.BN})", parsed[2])
    if not match:
        return name
    (stage, block, _), (index, kind) = parsed, match.groups()
    prefix = f"layer{names.stage_number(stage) - 1}.{block - 1}"
    if index == str(names.SHORTCUT_INDEX):
        return f"{prefix}.downsample.{0 if kind == names.CONV else 1}"
    return f"{prefix}.{kind}{index}"


def cifar_state_dict(checkpoint):
    """The state dict of an option-A CIFAR checkpoint, with PyTorch's keys.

    Accepts what `keras_resnet.torch_checkpoint.load` returns for a
    training checkpoint ({"state_dict": ..., ...}) or a bare state dict, and
    drops the "module." prefix that `torch.nn.DataParallel` adds.
    """
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(
            "Expected a state dict or a checkpoint dict with a 'state_dict' "
            f"entry. Received a {type(checkpoint).__name__}."
        )
    bad = [k for k in state if not isinstance(k, str)]
    if bad:
        raise ValueError(f"A state dict's keys must be strings (PyTorch's names). Received a key {bad[0]!r:.100}.")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def cifar_depth(state_dict):
    """The depth 6n+2 of an option-A CIFAR state dict (n blocks per stage)."""
    blocks = {}
    for key in state_dict:
        match = re.match(r"layer(\d)\.(\d+)\.conv1\.weight$", key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
    counts = [blocks.get(stage, 0) for stage in (1, 2, 3)]
    if len(blocks) != 3 or len(set(counts)) != 1 or counts[0] < 1:
        raise ValueError(
            "Not an option-A CIFAR state dict: expected the keys "
            "layer{1,2,3}.{i}.conv1.weight with the same number of blocks per "
            f"stage; found blocks per stage {blocks}."
        )
    return 6 * counts[0] + 2


def option_a_channel_orders(widths, zeros="split"):
    """Where each of our residual-stream channels lives in the source net.

    In an option-A net the channels of the residual stream are set by the
    stem and carried by the identity shortcuts; a stage that widens it adds
    zero channels. Ours are appended; a source with `zeros="split"` puts
    `(new - old) // 2` before the old channels and the rest after, as
    akamaster's `F.pad(x, (0, 0, 0, 0, planes // 4, planes // 4))` does.
    Renumbering every stage's stream channels this way maps one net onto
    the other exactly.

    Args:
        widths: channels of the residual stream per stage, e.g. (16, 32, 64).
        zeros: "split" (zeros on both sides) or "end" (appended, as ours:
            every order is the identity).

    Returns:
        One integer array per stage: our channel `j` of that stage is the
        source's channel `order[j]`.
    """
    if zeros not in ZERO_CHANNELS:
        raise ValueError(f"`zeros` must be one of {ZERO_CHANNELS}. Received zeros={zeros!r}.")
    orders = [np.arange(widths[0])]
    for width in widths[1:]:
        previous = orders[-1]
        before = (width - len(previous)) // 2 if zeros == "split" else 0
        identity = before + previous
        added = np.setdiff1d(np.arange(width), identity)  # the source's zero channels, ascending
        orders.append(np.concatenate([identity, added]))
    return orders


def cifar_option_a_arrays(checkpoint, model, zeros="split", bn_epsilon=TORCH_BN_EPSILON):
    """The weights of an option-A CIFAR PyTorch checkpoint, as `model` needs them.

    The key names are akamaster/pytorch_resnet_cifar10's (`resnet.py`):
    `conv1`, `bn1` (the stem); `layer{1,2,3}.{i}.conv1/bn1/conv2/bn2` (block
    i of each stage, counted from 0); `linear` (the classifier). A port with
    other names maps onto ours after renaming its keys to these.

    Every stage's residual-stream channels are renumbered with
    `option_a_channel_orders`: the output channels of the stem and of each
    block's second conv and BN, the input channels of the next block's
    first conv, and the rows of the classifier. A block's inner channels
    (first conv's output) are not part of the stream and keep their order.

    Args:
        checkpoint: a state dict or a checkpoint dict with "state_dict"
            (see `cifar_state_dict`), arrays as values.
        model: the `keras_resnet.ResNet` of the same depth, shortcut "A".
        zeros: where the source puts the shortcut's zero channels: "split"
            (akamaster) or "end" (appended, as ours).
        bn_epsilon: the source's BN epsilon (PyTorch's default, 1e-5).

    Returns:
        A dict from each weighted layer name of `model` to its arrays.
    """
    state = cifar_state_dict(checkpoint)
    widths = [np.shape(state[f"layer{s}.0.conv2.weight"])[0] for s in (1, 2, 3) if f"layer{s}.0.conv2.weight" in state]
    if len(widths) != 3:
        raise ValueError("Not an option-A CIFAR state dict: it lacks layer{1,2,3}.0.conv2.weight.")
    orders = option_a_channel_orders(widths, zeros)
    source, converted = _StateDict(state, model), {}

    def conv(key, out=slice(None), inp=slice(None)):
        return [source.take(key + ".weight")[out][:, inp].transpose(2, 3, 1, 0)]

    for layer in model.layers:
        if not layer.weights:
            continue
        name = layer.name
        if name == names.CLASSIFIER:
            converted[name] = [source.take("linear.weight")[:, orders[-1]].T, source.take("linear.bias")]
            continue
        if name.startswith(f"{names.STEM}_"):
            key, out, inp = ("conv1" if name.endswith(f"_{names.CONV}") else "bn1"), orders[0], slice(None)
        else:
            stage, block, index, kind = _cifar_block_layer(name, model)
            key = f"layer{stage + 1}.{block}.{kind}{index}"
            stream_in = orders[stage - 1] if block == 0 and stage > 0 else orders[stage]
            out, inp = (slice(None), stream_in) if index == "1" else (orders[stage], slice(None))
        if name.endswith("_conv"):
            converted[name] = conv(key, out, inp)
        else:
            converted[name] = source.batch_norm(key, layer, bn_epsilon, order=out)
    source.check_all_used(unless=() if names.CLASSIFIER in converted else ("linear.weight", "linear.bias"))
    return converted


def _cifar_block_layer(name, model):
    """(stage from 0, block from 0, conv index "1"/"2", "conv"/"bn") of a
    CIFAR block's residual layer."""
    parsed = names.parse_block_layer(name)
    match = parsed and re.fullmatch(rf"([12])_({names.CONV}|{names.BN})", parsed[2])
    if not match:
        raise ValueError(f"Layer {name!r} of {model.name!r} has no counterpart in an option-A CIFAR net.")
    return names.stage_number(parsed[0]) - 2, parsed[1] - 1, match.group(1), match.group(2)
