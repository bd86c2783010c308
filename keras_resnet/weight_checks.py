"""Checking a local weights file against a model, then assigning its weights.

`load_file(model, path)` checks every weight before it assigns any, so a
file that does not fit leaves the model untouched and raises a
`ValueError` that names the layer, the shapes and the fix:

- a `.keras` file is matched by layer name, and the architecture its
  config records (the net's architecture record; for a file saved before
  nets carried one, its layer names, `keras_resnet.architecture.
  from_layers`) must be the model's: family, depth, plain or shortcut
  option, bottleneck variant and every conv's strides;
- a `.weights.h5` file is matched by layer class and order; its shapes are
  checked, and whether the net had shortcuts (`check_residual_layers`).
"""

import dataclasses
import re

from keras_resnet import architecture as architecture_lib
from keras_resnet import names
from keras_resnet import weight_files


def load_file(model, path, skip_foreign=False):
    """Checks that the weights in a local file fit `model`, then assigns them.

    Args:
        skip_foreign: ignore layers of a `.keras` file whose names are not
            ResNet layer names (e.g. the preprocessing a zoo model holds).
    """
    if path.endswith(".keras"):
        keras_file = weight_files.read_file(path, weight_files.read_keras_file)
        _check_architecture(path, keras_file, model)
        keyed = {layer.name: layer for layer in _weighted_layers(model)}
        describe = "layer name"
        # The preprocessing in front of the net (a zoo run's mean) is not the
        # net's; include_preprocessing=True builds it in from the file.
        front = {layer["config"]["name"] for layer in keras_file.front}
        source = {k: v for k, v in keras_file.arrays.items() if k not in front}
        if skip_foreign:
            source = {k: v for k, v in source.items() if k in keyed or names.is_ours(k)}
    else:
        source, recorded = weight_files.read_file(path, weight_files.arrays_by_h5_path)
        keyed = weight_files.positional_keys(model)
        describe = "layer class and position (a .weights.h5 file)"

    assignments = []
    for key, layer in keyed.items():
        expected = [tuple(w.shape) for w in layer.weights]
        if key not in source:
            raise ValueError(
                f"Weights file {path!r} has no weights for layer "
                f"{layer.name!r} (matched by {describe} as {key!r}): it was "
                f"saved from a different architecture than {model.name!r}."
            )
        found = [tuple(a.shape) for a in source[key]]
        if found != expected:
            raise ValueError(_mismatch_message(path, model, layer, expected, found))
        assignments.append((layer, source[key]))
    extra = sorted(set(source) - set(keyed) - {names.CLASSIFIER, "dense"})
    if extra:
        raise ValueError(
            f"Weights file {path!r} has weights for layers that model "
            f"{model.name!r} lacks ({extra[:5]}{'...' if len(extra) > 5 else ''}): "
            "it was saved from a different architecture."
        )
    if not path.endswith(".keras"):  # every weight fits: did the net have shortcuts?
        _check_residual_layers(path, source, recorded, model)
    for layer, arrays in assignments:
        layer.set_weights(arrays)


# Weightless layers that a ResNet has and its plain net lacks, by the key
# Keras gives them in a weights file.
_RESIDUAL_LAYERS = {"add": "residual additions", "zero_pad_shortcut": "option-A shortcuts"}


def _check_residual_layers(path, arrays, recorded, model):
    """Tells a plain net's .weights.h5 from its ResNet's, which hold the same weights.

    Keras's `save_weights` records every layer, weightless ones too, so a
    ResNet's file has `add` (and, with option A, `zero_pad_shortcut`) groups
    that its plain net's lacks. A file that records only weighted layers
    (written another way, like the shipped presets) cannot say.
    """
    if not set(recorded) - set(arrays):
        return

    def counts(keys):
        return {base: sum(1 for k in keys if re.fullmatch(rf"{base}(_\d+)?", k)) for base in _RESIDUAL_LAYERS}

    def described(count):
        if not count["add"]:
            return "a plain net (no residual additions)"
        return ", ".join(f"{count[base]} {what}" for base, what in _RESIDUAL_LAYERS.items())

    saved, built = counts(recorded), counts(weight_files.positional_keys(model, weighted_only=False))
    if saved == built:
        return
    arch = dataclasses.replace(
        architecture_lib.architecture_of(model),
        plain=not saved["add"], shortcut="A" if saved["zero_pad_shortcut"] else "B")
    fix = f" Build the model as the file's was, e.g. {arch.constructor()}."
    model_is = "is a plain net" if not built["add"] else f"has {described(built)}"
    raise ValueError(
        f"Weights file {path!r} was saved from {'a ResNet with ' if saved['add'] else ''}"
        f"{described(saved)}, but model {model.name!r} {model_is}. Its weights would load "
        f"by position and compute something else.{fix}"
    )


# The fields compared before the strides, in the order messages list them.
_ARCHITECTURE_FIELDS = ("family", "depth", "plain", "shortcut", "variant")


def saved_architecture(path, keras_file):
    """The `Architecture` of the net a `.keras` file holds: its record, or
    (a file saved before nets carried one) its layer names; None if it holds
    no keras_resnet net.

    Raises:
        ValueError: if it holds two nets, or one that is not a whole net.
    """
    strides = {name: tuple(value) for name, value in keras_file.layers
               if value is not None and str(name).endswith("_conv")}
    if len(keras_file.records) > 1:
        raise ValueError(
            f"Weights file {path!r} holds {len(keras_file.records)} keras_resnet nets; "
            "save the one to load on its own (net.save(...)).")
    if keras_file.records:
        return architecture_lib.Architecture.from_config(keras_file.records[0], strides)
    try:
        return architecture_lib.from_layers(keras_file.layers)
    except ValueError as error:
        raise ValueError(f"Weights file {path!r} holds a net that is not a whole keras_resnet net: {error}") from None


def _check_architecture(path, keras_file, model):
    saved = saved_architecture(path, keras_file)
    if saved is None:
        return  # Not a keras_resnet net: the per-layer checks still apply.
    built = architecture_lib.architecture_of(model)
    differences = []
    for field in _ARCHITECTURE_FIELDS:
        if getattr(saved, field) != getattr(built, field):
            differences.append(f"{field}: file {getattr(saved, field)!r}, model {getattr(built, field)!r}")
    strides = sorted(
        name for name in set(saved.strides) & set(built.strides)
        if saved.strides[name] != built.strides[name]
    )
    if strides and not differences:
        differences.append(
            "strides of " + ", ".join(
                f"{n} (file {saved.strides[n]}, model {built.strides[n]})" for n in strides[:3]
            )
        )
    if differences:
        raise ValueError(
            f"Weights file {path!r} was saved from a different network than model "
            f"{model.name!r} ({'; '.join(differences)}). Its weights would load but compute "
            "something else. Build the model as the file's was, e.g. "
            f"{saved.constructor()}."
        )


def _mismatch_message(path, model, layer, expected, found):
    if layer.name == names.STEM_CONV:
        return (
            f"Weights file {path!r} was saved for {found[0][2]} input "
            f"channels (stem kernel {found[0]}), but model {model.name!r} "
            f"takes {expected[0][2]} channels (stem kernel {expected[0]}). "
            "Build the model with the file's channel count in `input_shape`."
        )
    if layer.name == names.CLASSIFIER:
        return (
            f"Weights file {path!r} has a classifier for {found[0][-1]} "
            f"classes, but model {model.name!r} has classes={expected[0][-1]}. "
            f"Pass classes={found[0][-1]}, or include_top=False to load the "
            "backbone only."
        )
    return (
        f"Weights file {path!r} does not fit layer {layer.name!r} of "
        f"{model.name!r}: expected shapes {expected}, found {found}. It was "
        "saved from a different architecture (depth, shortcut option, "
        "variant or width)."
    )


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]

