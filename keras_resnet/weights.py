"""The `weights=` argument: None, a local weights file, or a named preset.

Local files are checked layer by layer before anything is assigned, so a file
that does not fit the model raises a `ValueError` that names the layer, the
shapes and the fix, and the model is left untouched.

- `.keras` files carry their config: weights are matched by layer name, so a
  file saved with `include_top=True` also loads into `include_top=False`.
- `.weights.h5` files (`model.save_weights`) carry no names: Keras keys them
  by layer class and order (`conv2d_7`, `batch_normalization_7`, `dense`).
  They load into a model of the same architecture; the classifier may be
  left out (`include_top=False`).

Presets (`PRESETS`) are the hook for named, downloadable weights; none are
registered yet.
"""

import json
import os
import re
import tempfile
import zipfile

import h5py
import keras

# name -> metadata dict; filled in by the presets module of a later release.
PRESETS = {}
FILE_SUFFIXES = (".weights.h5", ".keras")
_CLASSIFIER = "predictions"


def resolve(weights, spec, variant):
    """Returns the local path `weights` names, or None for random init.

    Raises:
        ValueError: if `weights` is neither None, an existing weights file,
            nor a preset.
    """
    del spec, variant  # Used once presets exist (depth, stride layout).
    if weights is None:
        return None
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str):
        raise ValueError(
            "`weights` must be None, a path to a .weights.h5/.keras file, or "
            f"a preset name. Received weights={weights!r}."
        )
    if weights in PRESETS:
        raise NotImplementedError(f"Preset {weights!r} has no loader yet.")
    if weights.endswith(FILE_SUFFIXES):
        if not os.path.isfile(weights):
            raise ValueError(f"`weights` file not found. Received weights={weights!r}.")
        return weights
    presets = sorted(PRESETS) or "none registered yet"
    raise ValueError(
        "`weights` must be None, a path to a file ending in .weights.h5 or "
        f".keras, or a preset name (presets: {presets}). "
        f"Received weights={weights!r}."
    )


def load_into(model, path):
    """Checks that the weights in `path` fit `model`, then assigns them."""
    if path.endswith(".keras"):
        source = _arrays_by_layer_name(path)
        keyed = {layer.name: layer for layer in _weighted_layers(model)}
        describe = "layer name"
    else:
        with h5py.File(path, "r") as f:
            source = _arrays_by_h5_key(f)
        keyed = positional_keys(model)
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
    extra = sorted(set(source) - set(keyed) - {_CLASSIFIER, "dense"})
    if extra:
        raise ValueError(
            f"Weights file {path!r} has weights for layers that model "
            f"{model.name!r} lacks ({extra[:5]}{'...' if len(extra) > 5 else ''}): "
            "it was saved from a different architecture."
        )
    for layer, arrays in assignments:
        layer.set_weights(arrays)


def _mismatch_message(path, model, layer, expected, found):
    if layer.name == "conv1_conv":
        return (
            f"Weights file {path!r} was saved for {found[0][2]} input "
            f"channels (stem kernel {found[0]}), but model {model.name!r} "
            f"takes {expected[0][2]} channels (stem kernel {expected[0]}). "
            "Build the model with the file's channel count in `input_shape`."
        )
    if layer.name == _CLASSIFIER:
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


def _snake_case(name):
    # The rule Keras uses to key layers in .weights.h5 files.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def positional_keys(model):
    """Maps the keys Keras uses in `model`'s .weights.h5 to its layers."""
    used, keys = {}, {}
    for layer in model.layers:
        base = _snake_case(layer.__class__.__name__)
        count = used.get(base, -1) + 1
        used[base] = count
        if layer.weights:
            keys[base if count == 0 else f"{base}_{count}"] = layer
    return keys


def _arrays_by_h5_key(h5file):
    arrays = {}
    for key, group in h5file["layers"].items():
        values = group.get("vars")
        if values is not None and len(values):
            arrays[key] = [values[str(i)][()] for i in range(len(values))]
    return arrays


def _arrays_by_layer_name(path):
    """Reads a .keras file's weights keyed by layer name, without building it."""
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
        names = archive.namelist()
        if "model.weights.h5" not in names or "config.json" not in names:
            raise ValueError(f"{path!r} is not a Keras .keras archive (contents: {names}).")
        config = json.loads(archive.read("config.json"))
        archive.extract("model.weights.h5", tmp)
        with h5py.File(os.path.join(tmp, "model.weights.h5"), "r") as f:
            by_key = _arrays_by_h5_key(f)
    layer_configs = config.get("config", {}).get("layers")
    if not isinstance(layer_configs, list):
        raise ValueError(
            f"{path!r} holds a {config.get('class_name')!r}, not a functional "
            "model with named layers; save it with model.save() from a "
            "model built by keras_resnet.ResNet."
        )
    # Recompute the positional keys from the saved config's layer order.
    used, arrays = {}, {}
    for layer_config in layer_configs:
        base = _snake_case(layer_config["class_name"])
        count = used.get(base, -1) + 1
        used[base] = count
        key = base if count == 0 else f"{base}_{count}"
        if key in by_key:
            arrays[layer_config["config"]["name"]] = by_key[key]
    return arrays
