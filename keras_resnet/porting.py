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
"""

import re

import numpy as np

TORCH_BN_EPSILON = 1e-5
_TORCH_BN = ("weight", "bias", "running_mean", "running_var")


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
            "pip install safetensors (or keras-resnet[peers])."
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
        if layer.name == "predictions":
            converted[layer.name] = [source.take("fc.weight").T, source.take("fc.bias")]
        elif layer.name.endswith("_conv"):
            converted[layer.name] = [source.take(key + ".weight").transpose(2, 3, 1, 0)]
        else:
            converted[layer.name] = source.batch_norm(key, layer, bn_epsilon)
    source.check_all_used(unless=() if "predictions" in converted else ("fc.weight", "fc.bias"))
    return converted


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
