"""Reading weight files: `.keras` archives and `.weights.h5` files, without building them.

- `read_file(path, reader)` reports a damaged file (empty, truncated,
  corrupt) by name, not by h5py or zipfile.
- `read_keras_file(path)` returns what a `.keras` file holds (`KerasFile`):
  every layer's weights by name (nested functional models flattened), the
  (name, strides) of its layers, and the layers in front of its net.
- `arrays_by_h5_path(path)` reads a `.weights.h5` file, keyed as Keras keys
  it (by layer class and order, `positional_keys`).
- `file_preprocessing(path)` is the preprocessing a `.keras` file computes
  in front of its net (a zoo run's per-pixel mean).

Arrays are read only if the file stores them in full, and zip members only
if stored or deflated, so a small crafted file cannot make the reader
allocate without bound. Checking the weights against a model and assigning
them is `keras_resnet.weight_checks`.
"""

import dataclasses
import json
import os
import re
import tempfile
import zipfile

import h5py
import keras
import numpy as np

from keras_resnet import presets as presets_lib

FILE_SUFFIXES = (".weights.h5", ".keras")


def read_file(path, reader):
    """`reader(path)`, with a damaged file reported by name, not by h5py or zipfile."""
    try:
        return reader(path)
    except ValueError as error:
        if not isinstance(error, json.JSONDecodeError):
            raise
        state, kind = "cannot be read", "Keras archive"
        raise ValueError(
            f"Weights file {path!r} {state}: its config is not valid JSON ({error}). "
            "Save or download it again."
        ) from None
    except (OSError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as error:
        state = "is empty" if os.path.getsize(path) == 0 else "cannot be read"
        kind = "Keras archive" if path.endswith(".keras") else "HDF5 weights file"
        raise ValueError(
            f"Weights file {path!r} {state}: it is not a whole {kind} "
            f"({type(error).__name__}: {error}). It may be truncated (an interrupted "
            "copy, download or save); save or download it again."
        ) from None


def arrays_by_h5_path(path):
    """(arrays by layer key, every layer key) of a .weights.h5 file."""
    with h5py.File(path, "r") as f:
        return _arrays_by_h5_key(f, path), set(f["layers"])


def _snake_case(name):
    # The rule Keras uses to key layers in .weights.h5 files.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def positional_keys(model, weighted_only=True):
    """Maps the keys Keras uses in `model`'s .weights.h5 to its layers
    (those with weights, or all of them)."""
    used, keys = {}, {}
    for layer in model.layers:
        base = _snake_case(layer.__class__.__name__)
        count = used.get(base, -1) + 1
        used[base] = count
        if layer.weights or not weighted_only:
            keys[base if count == 0 else f"{base}_{count}"] = layer
    return keys


def _arrays_by_h5_key(h5file, path):
    arrays = {}
    for key, group in h5file["layers"].items():
        values = group.get("vars")
        if values is not None and len(values):
            arrays[key] = [_read_dataset(values[str(i)], path) for i in range(len(values))]
    return arrays


def _read_dataset(dataset, path):
    """A dataset's array, if the file holds it.

    HDF5 may declare a dataset of any shape and store little or nothing of
    it (unwritten chunks read as the fill value, compressed ones expand), so
    a small file could make the reader allocate terabytes. Keras writes
    every array in full.
    """
    stored = dataset.id.get_storage_size()
    if dataset.nbytes > 16 * stored + 4096:
        raise ValueError(
            f"Weights file {path!r} declares an array {dataset.name} of shape {dataset.shape} "
            f"({dataset.nbytes} bytes) but stores {stored} bytes of it; Keras writes every "
            "array in full. Refusing to read it: save or download the file again."
        )
    return dataset[()]


@dataclasses.dataclass(frozen=True)
class KerasFile:
    """What a .keras file holds, read without building it.

    Attributes:
        arrays: layer name -> its weights, nested functional models (a zoo
            run's net sits inside its model) flattened.
        layers: (name, strides) of every layer, nested ones too.
        front: configs of the layers between the input and the net (the
            first layer named conv1_*), in order.
        unknown_front: a description of what sits in front of the net if it
            is not a chain of preprocessing layers this module can read
            (Normalization, Rescaling, keras_resnet's Preprocessing); else None.
        records: the architecture records of the keras_resnet nets the
            model is or holds (`ResNetModel.get_config()["architecture"]`);
            empty for a file saved before models carried one.
    """

    arrays: dict
    layers: list
    front: tuple
    unknown_front: str
    records: tuple = ()


# Zip compression whose output is at most ~1000x its input (Keras stores).
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def read_keras_file(path):
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
        names = archive.namelist()
        if "model.weights.h5" not in names or "config.json" not in names:
            raise ValueError(f"{path!r} is not a Keras .keras archive (contents: {names}).")
        for member in ("config.json", "model.weights.h5"):
            if archive.getinfo(member).compress_type not in _ZIP_METHODS:
                raise ValueError(
                    f"Weights file {path!r} has {member} compressed with zip method "
                    f"{archive.getinfo(member).compress_type}, which can expand without bound; "
                    "Keras stores it uncompressed. Save it again with model.save()."
                )
        config = json.loads(archive.read("config.json"))
        archive.extract("model.weights.h5", tmp)
        layer_configs = config.get("config", {}).get("layers") if isinstance(config, dict) else None
        if not isinstance(layer_configs, list):
            kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
            raise ValueError(
                f"{path!r} holds a {kind!r}, not a functional "
                "model with named layers; save it with model.save() from a "
                "model built by keras_resnet.ResNet."
            )
        arrays = {}
        with h5py.File(os.path.join(tmp, "model.weights.h5"), "r") as f:
            _arrays_by_config(layer_configs, f["layers"], path, arrays)
    front, unknown = _front_of_net(config["config"])
    return KerasFile(arrays, list(_flat_layers(layer_configs)), front, unknown, tuple(_records(config["config"])))


def _records(model_config):
    """The architecture records in a saved functional config, nested models' too."""
    if isinstance(model_config.get("architecture"), dict):
        yield model_config["architecture"]
    for layer_config in model_config.get("layers", []):
        inner = layer_config.get("config", {})
        if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
            yield from _records(inner)


def _arrays_by_config(layer_configs, layers_group, path, arrays):
    """Fills `arrays` (layer name -> weights) from a Keras weights file's
    `layers` group, whose keys Keras derives from the layer classes in the
    config's order; nested functional models have their own `layers` group."""
    used = {}
    for layer_config in layer_configs:
        base = _snake_case(layer_config["class_name"])
        count = used.get(base, -1) + 1
        used[base] = count
        group = layers_group.get(base if count == 0 else f"{base}_{count}")
        if group is None:
            continue
        inner = layer_config.get("config", {}).get("layers")
        if isinstance(inner, list):
            if "layers" in group:
                _arrays_by_config(inner, group["layers"], path, arrays)
            continue
        values = group.get("vars")
        if values is not None and len(values):
            arrays[layer_config["config"]["name"]] = [
                _read_dataset(values[str(i)], path) for i in range(len(values))]


def _flat_layers(layer_configs):
    """(name, strides) of every layer in a saved functional config, nested models too."""
    for layer_config in layer_configs:
        config = layer_config.get("config", {})
        if isinstance(config.get("layers"), list):
            yield from _flat_layers(config["layers"])
        else:
            yield config.get("name"), config.get("strides")


_PREPROCESSING_LAYERS = {"Normalization", "Rescaling", "keras_resnet>Preprocessing"}


def _inbound_names(layer_config):
    """Names of the layers whose outputs a saved layer takes."""
    found = []

    def visit(value):
        if isinstance(value, dict):
            history = value.get("config", {}).get("keras_history") if value.get("class_name") == "__keras_tensor__" else None
            if history:
                found.append(history[0])
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(layer_config.get("inbound_nodes", []))
    return found


def _starts_net(layer_config):
    config = layer_config.get("config", {})
    if isinstance(config.get("layers"), list):
        return any(_starts_net(inner) for inner in config["layers"])
    return re.fullmatch(r"conv1_(pad|conv)", str(config.get("name"))) is not None


def _front_of_net(model_config):
    """(configs of the layers between the input and the net, or a description
    of what sits there if they are not preprocessing layers) of a saved model."""
    layers = model_config.get("layers", [])
    inputs = [c for c in layers if c.get("class_name") == "InputLayer"]
    if len(inputs) != 1:
        return (), f"{len(inputs)} inputs"
    current, front = inputs[0]["config"]["name"], []
    for _ in range(len(layers)):
        consumers = [c for c in layers if current in _inbound_names(c)]
        if len(consumers) != 1:
            return tuple(front), f"{len(consumers)} layers reading {current!r}"
        (layer,) = consumers
        if _starts_net(layer):
            return tuple(front), None
        kind = layer.get("registered_name") or layer.get("class_name")
        if kind not in _PREPROCESSING_LAYERS and layer.get("class_name") not in _PREPROCESSING_LAYERS:
            return tuple(front), f"layer {layer['config'].get('name')!r} ({layer.get('class_name')})"
        front.append(layer)
        current = layer["config"]["name"]
    return tuple(front), "no net"


def front_preprocessing(keras_file, path):
    """The preprocessing that a .keras file's layers in front of its net
    compute, as a preprocessing dict; None if the net takes the input as is.

    Raises:
        ValueError: if something else sits in front of the net.
    """
    if keras_file.unknown_front is not None:
        raise ValueError(
            f"{path!r} has {keras_file.unknown_front} in front of its net, which is not a chain "
            "of Normalization, Rescaling or keras_resnet Preprocessing layers, so its "
            "preprocessing cannot be read from it."
        )
    if not keras_file.front:
        return None
    mean, std, bgr = np.zeros(3), np.ones(3), False
    for layer in keras_file.front:
        config = layer["config"]
        if bgr:
            raise ValueError(f"{path!r}: layers follow a BGR flip in front of its net; say its preprocessing.")
        if layer["class_name"] == "Normalization":
            if config.get("invert"):
                raise ValueError(f"{path!r}: an inverted Normalization sits in front of its net.")
            m, v = config.get("mean"), config.get("variance")
            if m is None:  # adapted: the statistics are weights
                m, v = keras_file.arrays[config["name"]][:2]
            m = np.asarray(m, np.float64)
            s = np.maximum(np.sqrt(np.asarray(v, np.float64)), keras.config.epsilon())
        elif layer["class_name"] == "Rescaling":
            scale, offset = (np.asarray(config.get(k, d), np.float64) for k, d in (("scale", 1.0), ("offset", 0.0)))
            m, s = -offset / scale, 1 / scale
        else:  # keras_resnet Preprocessing
            m, s, bgr = presets_lib.preprocessing_parameters(config["mode"])
            m, s = np.asarray(m, np.float64), np.asarray(s, np.float64)
        mean, std = mean + m * std, std * s
    while mean.ndim > 1 and mean.shape[0] == 1:
        mean = mean[0]
    std = np.broadcast_to(std, mean.shape if mean.ndim == 3 else (3,))
    if std.ndim == 3:  # per pixel: expressible only if the same at every pixel
        if not np.allclose(std, std[:1, :1]):
            raise ValueError(f"{path!r} divides by a per-pixel std, which a preset cannot express.")
        std = std[0, 0]
    return {"mean": mean.tolist(), "std": std.tolist(), "bgr": bool(bgr)}


def file_preprocessing(path):
    """The preprocessing a `.keras` file holds in front of its net (e.g. a
    zoo run's per-pixel mean), as a preprocessing dict, or None if none.

    Raises:
        ValueError: if the file is damaged, or something other than
            preprocessing layers sits in front of its net.
    """
    path = os.path.expanduser(os.fspath(path))
    return front_preprocessing(read_file(path, read_keras_file), path)


def describe_preprocessing(mode):
    """A short phrase for messages: what `mode` does to pixels."""
    mean, std, bgr = presets_lib.preprocessing_parameters(mode)
    if isinstance(mode, str):
        return f"preprocessing={mode!r}"
    what = (f"subtracts a per-pixel mean ({'x'.join(map(str, np.shape(mean)))})" if np.ndim(mean) == 3
            else f"subtracts the mean {tuple(round(v, 3) for v in mean)}")
    if not np.allclose(std, 1):
        what += f" and divides by {tuple(round(v, 3) for v in std)}"
    return what + (", then flips RGB to BGR" if bgr else "")


def same_preprocessing(a, b):
    (mean_a, std_a, bgr_a), (mean_b, std_b, bgr_b) = (presets_lib.preprocessing_parameters(m) for m in (a, b))
    return bgr_a == bgr_b and np.allclose(std_a, std_b, rtol=1e-4) and np.allclose(
        np.broadcast_arrays(np.asarray(mean_a), np.asarray(mean_b))[0],
        np.broadcast_arrays(np.asarray(mean_a), np.asarray(mean_b))[1], rtol=1e-4, atol=1e-3)

