"""Folding BatchNormalization into the convolution before it, for inference.

At inference a BN layer is a per-channel affine map,
`y = gamma * (x - mean) / sqrt(var + eps) + beta`, so a conv followed by a
BN equals one conv with the kernel scaled per output channel and a bias:

    scale = gamma / sqrt(var + eps)
    kernel' = kernel * scale            (over the output-channel axis)
    bias'   = (bias - mean) * scale + beta

`fold_batchnorm(model)` returns a new model with every such conv+BN pair
replaced by one `keras_resnet.layers.FoldedConv2D(use_bias=True)` (a `Conv2D`
that keeps NaN through TensorFlow's conv+bias+ReLU fusion) under the conv's
name, and every other layer and weight copied. The result is for inference
only: it has no BN to train.

Statistics that cannot be folded are refused, naming the layer: a NaN or
infinite `gamma`, `beta`, `moving_mean` or `moving_variance` (a diverged run
or a damaged file; the result would be NaN or infinite weights), or
`moving_variance + epsilon <= 0`, whose square root is not a number: the
BN answers NaN there, and the folded model, whose NaN weights a fused ReLU
could zero, answered a uniform 0.1 without a word.
"""

import keras
import numpy as np

from keras_resnet.architecture import check_graph_model
from keras_resnet.layers import FoldedConv2D
from keras_resnet.model_classes import recursion_headroom


def fold_batchnorm(model):
    """Returns an inference copy of `model` with each BN folded into its conv.

    A BN is folded when its only input is a `Conv2D` output that nothing else
    reads, and it normalises that conv's channel axis; any other BN is kept.
    Nested functional models (e.g. a ResNet inside a model with preprocessing
    layers in front) are folded too. The original model is not changed.

    Args:
        model: a functional (or Sequential) `keras.Model`, e.g. from
            `keras_resnet.ResNet`.

    Returns:
        A new `keras.Model` with the same inputs, outputs and layer names,
        less the folded `BatchNormalization` layers; each folded conv is a
        `keras_resnet.layers.FoldedConv2D`.

    Raises:
        ValueError: if a BN to be folded has statistics that cannot be
            folded (NaN or infinite values, or `moving_variance + epsilon
            <= 0`), naming the layer, the variable, the channel and the value;
            or if the folded weights would overflow float32.
    """
    check_graph_model(model)
    with recursion_headroom():
        pairs = _foldable_pairs(model)  # conv name -> BN layer
        for bn in pairs.values():
            _check_foldable_statistics(bn)
        folded_bns = {id(bn) for bn in pairs.values()}
        skipped_names = {bn.name for bn in pairs.values()}

        def clone(layer):
            config = layer.get_config()
            if layer.name in pairs:
                config["use_bias"] = True
                return FoldedConv2D.from_config(config)
            return layer.__class__.from_config(config)

        def call(layer, *args, **kwargs):
            # The cloned BN of a folded pair is never called: its input (the
            # folded conv's output) goes straight on.
            if layer.name in skipped_names and isinstance(
                layer, keras.layers.BatchNormalization
            ):
                return args[0]
            return layer(*args, **kwargs)

        folded = keras.models.clone_model(
            model, clone_function=clone, call_function=call, recursive=True
        )
        _copy_weights(model, folded, pairs, folded_bns)
    return folded


def _leaf_layers(model):
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if not isinstance(layer, keras.Model)
    ]


def _foldable_pairs(model):
    """Maps each foldable conv's name to the BN layer that follows it."""
    pairs = {}
    for layer in _leaf_layers(model):
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        if len(layer._inbound_nodes) != 1:
            continue
        inputs = layer._inbound_nodes[0].input_tensors
        if len(inputs) != 1:
            continue
        conv = inputs[0]._keras_history.operation
        if type(conv) is not keras.layers.Conv2D or len(conv._inbound_nodes) != 1:
            continue
        if len(conv._outbound_nodes) != 1 or conv.activation is not keras.activations.linear:
            continue
        channel_axis = -1 if conv.data_format == "channels_last" else 1
        if layer.axis not in (channel_axis, channel_axis % 4):
            continue
        pairs[conv.name] = layer
    return pairs


def _check_foldable_statistics(bn):
    """Refuses a BN whose statistics do not make a finite affine map."""
    arrays = [("moving_mean", bn.moving_mean), ("moving_variance", bn.moving_variance)]
    if bn.scale:
        arrays.append(("gamma", bn.gamma))
    if bn.center:
        arrays.append(("beta", bn.beta))
    for name, variable in arrays:
        values = keras.ops.convert_to_numpy(variable)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(
                f"Cannot fold BatchNormalization {bn.name!r}: its {name} is not finite "
                f"at {bad.size} of {values.size} channels (channel {bad[0]}: "
                f"{values[bad[0]]}). Such statistics come from a diverged run or a "
                "damaged file: restore finite weights (e.g. a checkpoint from before the "
                "loss diverged)."
            )
    variance = keras.ops.convert_to_numpy(bn.moving_variance).astype(np.float64)
    bad = np.flatnonzero(variance + bn.epsilon <= 0)
    if bad.size:
        raise ValueError(
            f"Cannot fold BatchNormalization {bn.name!r}: moving_variance + epsilon must "
            f"be > 0, but it is <= 0 at {bad.size} of {variance.size} channels (channel "
            f"{bad[0]}: moving_variance={variance[bad[0]]}, epsilon={bn.epsilon}). A "
            "variance is never negative: the weights are damaged."
        )


def _folded_weights(conv, bn):
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype(np.float64)
    bias = (
        keras.ops.convert_to_numpy(conv.bias).astype(np.float64)
        if conv.use_bias
        else np.zeros(kernel.shape[-1])
    )
    mean = keras.ops.convert_to_numpy(bn.moving_mean).astype(np.float64)
    var = keras.ops.convert_to_numpy(bn.moving_variance).astype(np.float64)
    gamma = keras.ops.convert_to_numpy(bn.gamma).astype(np.float64) if bn.scale else 1.0
    beta = keras.ops.convert_to_numpy(bn.beta).astype(np.float64) if bn.center else 0.0
    scale = gamma / np.sqrt(var + bn.epsilon)
    # Conv2D kernels are (kh, kw, in, out) in both data formats.
    with np.errstate(over="ignore"):  # checked below
        new_kernel = (kernel * scale).astype(np.float32)
        new_bias = ((bias - mean) * scale + beta).astype(np.float32)
    given = np.isfinite(kernel).all() and np.isfinite(bias).all()
    if given and not (np.isfinite(new_kernel).all() and np.isfinite(new_bias).all()):
        raise ValueError(
            f"Cannot fold BatchNormalization {bn.name!r} into {conv.name!r}: the folded "
            f"weights overflow float32 (largest scale gamma / sqrt(moving_variance + "
            f"epsilon) = {np.max(np.abs(scale)):.3g}). Use the model unfolded (export "
            "without fold_batchnorm=True)."
        )
    return [new_kernel, new_bias]


def _copy_weights(source, target, pairs, folded_bns):
    by_name = {}
    for layer in _leaf_layers(source):
        if id(layer) in folded_bns:
            continue
        if layer.name in by_name:
            raise ValueError(
                f"Cannot fold model {source.name!r}: two layers are named "
                f"{layer.name!r}; weights are matched by name."
            )
        by_name[layer.name] = layer
    for layer in _leaf_layers(target):
        if not layer.weights:
            continue
        original = by_name[layer.name]
        if layer.name in pairs:
            layer.set_weights(_folded_weights(original, pairs[layer.name]))
        else:
            layer.set_weights(original.get_weights())
