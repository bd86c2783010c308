"""The `weights=` argument: None, a local weights file, or a named preset.

Local files are checked layer by layer before anything is assigned, so a file
that does not fit the model raises a `ValueError` that names the layer, the
shapes and the fix, and the model is left untouched.

- `.keras` files carry their config: weights are matched by layer name, so a
  file saved with `include_top=True` also loads into `include_top=False`,
  and nested functional models are read through (a zoo run's model.keras
  holds the net behind its per-pixel mean). The layers in front of the net
  (Normalization, Rescaling, `Preprocessing`) are the file's preprocessing:
  not loaded into the bare net, but built in by `include_preprocessing=True`
  and read by `register_preset` (`file_preprocessing`).
  The config also says how the net was built, and it must be how the model
  is built: family, depth, plain or shortcut option, bottleneck variant and
  every conv's strides. A plain-20 file has exactly the weights of an
  option-A ResNet-20, and a v1 ResNet-50 those of a v1.5 one, so without
  this check they would load and compute something else.
- `.weights.h5` files (`model.save_weights`) carry no names and no config:
  Keras keys them by layer class and order (`conv2d_7`,
  `batch_normalization_7`, `dense`). The shapes are checked, and so is
  whether the net had shortcuts: Keras records weightless layers too, so a
  ResNet's file has `add` (and, with option A, `zero_pad_shortcut`) groups
  that its plain net's lacks, and a plain-20 file is refused by `ResNet(20)`
  and vice versa. The v1 and v1.5 bottleneck layouts differ only in a
  stride, which the file does not hold: those stay indistinguishable. Load
  such a file only into the architecture it was saved from, or save
  `.keras` files, which are checked in full. The classifier may be left out
  (`include_top=False`).
- A file that is not what its suffix says (empty, truncated, corrupt) raises
  a `ValueError` that names it.

Presets (`keras_resnet.presets` lists the built-in ones) are named after
their source and hold one entry per depth; an alias ("imagenet",
"cifar10") names a preset per depth. Loading one:

1. `resolve` (before the model is built) checks the name, the depth and the
   stride layout (`variant`).
2. `load_into` (after) checks the built model against the preset (classes
   when `include_top=True`, 3 input channels, the shortcut option), then
   reads the file: a file shipped in the package or registered from disk
   is checked against its sha256 first; a download goes, its hash pinned,
   into the Keras cache (~/.keras/models, or $KERAS_HOME/models). It
   converts the weights (`keras_resnet.porting`) and assigns them. A
   download whose hash differs is deleted and never used; a cached file
   whose hash differs is downloaded again. An unpinned preset is never
   downloaded. A download waits at most `DOWNLOAD_TIMEOUTS` (connect, read),
   each attempt must keep ahead of its deadline (those timeouts plus what
   has arrived at `DOWNLOAD_MIN_SPEED` bytes per second), and it is tried
   `DOWNLOAD_ATTEMPTS` times (server errors, timeouts, a passed deadline,
   dropped and truncated connections; not a missing file or an unknown
   host). When it fails (offline, say), the error names the URL and the path
   to put the file at by hand.

`include_top=False` works with every preset. Images must be preprocessed
as the preset says: `keras_resnet.preprocess_input(x, weights=name)`.

This module decides what `weights=` means and holds the download settings;
the jobs it calls have modules of their own: the preset registry
(`keras_resnet.registry`), downloads and hashes (`keras_resnet.downloads`),
reading weight files (`keras_resnet.weight_files`), checking one against a
model and assigning it (`keras_resnet.weight_checks`), and what ResNet a
model is (`keras_resnet.architecture`).
"""

import dataclasses
import os

import keras

from keras_resnet import architecture as architecture_lib
from keras_resnet import downloads
from keras_resnet import porting
from keras_resnet import presets as presets_lib
from keras_resnet import registry
from keras_resnet import torch_checkpoint
from keras_resnet import weight_checks
from keras_resnet import weight_files

__all__ = [
    "DOWNLOAD_ATTEMPTS", "DOWNLOAD_BACKOFF", "DOWNLOAD_MIN_SPEED", "DOWNLOAD_TIMEOUTS", "PresetWeights",
    "fetch", "load_into", "preprocessing_of", "resolve",
]

# Downloads: seconds to wait for a connection and for each read (any bytes
# at all), how many times to try, and the wait before the second try
# (doubling after). Module settings, for slow links and for tests:
# keras_resnet.weights.DOWNLOAD_TIMEOUTS = (60, 300).
DOWNLOAD_TIMEOUTS = (30.0, 60.0)
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_BACKOFF = 1.0
# And the slowest speed, in bytes per second, that a download may average:
# each attempt's deadline is its two timeouts plus what has arrived at this
# speed, so a server that trickles bytes (each inside the read timeout) is
# given up on. 100 kB/s is a slow but real link (0.8 Mbit/s): akamaster's
# ResNet-20 (1.1 MB) may take 101 s, timm's ResNet-50 (102 MB) 19 min.
# None: no deadline.
DOWNLOAD_MIN_SPEED = 100_000


@dataclasses.dataclass(frozen=True)
class PresetWeights:
    """What `resolve` returns for a preset: loaded by `load_into`."""

    preset: presets_lib.Preset


def resolve(weights, spec, variant):
    """Checks `weights` before the model is built.

    Returns:
        None for random init, the path of a local weights file, or a
        `PresetWeights` for a preset (downloaded later, by `load_into`).

    Raises:
        ValueError: if `weights` is neither None, an existing weights file,
            nor a preset that has this depth and stride layout.
    """
    if weights is None:
        return None
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if isinstance(weights, str) and weights.startswith("~"):
        weights = os.path.expanduser(weights)
    if not isinstance(weights, str):
        raise ValueError(
            "`weights` must be None, a path to a .weights.h5/.keras file, or "
            f"a preset name. Received weights={weights!r}."
        )
    if weights in registry.PRESETS or weights in registry.ALIASES:
        preset = registry.get_preset(weights, depth=spec.depth, family=spec.family)
        if spec.block == "bottleneck" and variant != preset.variant:
            raise ValueError(
                f"Preset {weights!r} for depth {spec.depth} was trained with "
                f"the {preset.variant} stride layout (variant={preset.variant!r}), "
                f"but the model is built with variant={variant!r}: the weights "
                f"would load but compute something else. Pass "
                f"variant={preset.variant!r}."
            )
        return PresetWeights(preset)
    if weights.endswith(weight_files.FILE_SUFFIXES):
        if not os.path.isfile(weights):
            raise ValueError(f"`weights` file not found. Received weights={weights!r}.")
        return weights
    raise ValueError(
        "`weights` must be None, a path to a file ending in .weights.h5 or "
        f".keras, or a preset name (presets: {registry.preset_names()}). "
        f"Received weights={weights!r}."
    )


def preprocessing_of(resolved, weights):
    """The preprocessing `include_preprocessing=True` puts in a model built
    with `weights` (`resolved` is what `resolve` returned): the preset's, or
    what a `.keras` file holds in front of its net (a zoo run's mean).

    Raises:
        ValueError: for weights that carry no preprocessing.
    """
    if isinstance(resolved, PresetWeights):
        return resolved.preset.preprocessing
    if isinstance(resolved, str) and resolved.endswith(".keras"):
        found = weight_files.file_preprocessing(resolved)
        if found is None:
            raise ValueError(
                f"include_preprocessing=True puts the preprocessing the weights were trained "
                f"with in the model, but {resolved!r} has no preprocessing in front of its net "
                "(its net takes the model's input as it is). Leave include_preprocessing=False, "
                "or preprocess the images yourself."
            )
        return found
    raise ValueError(
        "include_preprocessing=True puts the preprocessing of a preset (or of a .keras file "
        "that holds it in front of its net, as a zoo run's model.keras does) in the model, so "
        f"`weights` must be a preset name ({registry.preset_names()}) or such a file. "
        f"Received weights={weights!r}."
    )


def load_into(model, path):
    """Checks that the weights in `path` fit `model`, then assigns them.

    Args:
        model: the model `ResNet` built.
        path: what `resolve` returned: a local file path or a
            `PresetWeights`.
    """
    if isinstance(path, PresetWeights):
        return _load_preset(model, path.preset)
    return weight_checks.load_file(model, path)


def _load_preset(model, preset):
    arch = architecture_lib.architecture_of(model)
    include_top = arch.include_top
    _check_model_fits(model, preset, arch)
    if preset.source_format == presets_lib.KERAS_RESNET:
        path = fetch(preset) if preset.url else _checked_local_file(preset)
        weight_checks.load_file(model, path, skip_foreign=True)
    elif preset.source_format == presets_lib.TORCH_CIFAR_OPTION_A:
        checkpoint = torch_checkpoint.load(fetch(preset))
        porting.assign(model, porting.cifar_option_a_arrays(checkpoint, model))
    elif preset.source_format == presets_lib.TORCHVISION_SAFETENSORS:
        state = porting.load_safetensors(fetch(preset))
        porting.assign(model, porting.torchvision_arrays(state, model))
    elif preset.source_format == presets_lib.KERAS_APPLICATIONS_H5:
        path = fetch(preset, no_top=not include_top)
        constructor = getattr(keras.applications, f"ResNet{preset.depth}")
        peer = constructor(
            weights=path,
            include_top=include_top,
            input_shape=(224, 224, 3) if include_top else (None, None, 3),
        )
        porting.assign(model, porting.keras_applications_arrays(peer, model))
    else:
        raise ValueError(f"Preset {preset.name!r} has unknown source_format {preset.source_format!r}.")


def _checked_local_file(preset):
    """The path of a preset's local or shipped file, after checking its sha256."""
    path = preset.path
    described = f"Preset {preset.name!r} (depth {preset.depth})"
    if not os.path.isfile(path):
        shipped = os.path.dirname(path) == presets_lib.WEIGHTS_DATA
        raise ValueError(
            f"{described}: its weights file {path!r} is missing"
            + (" from the installed package (was it installed without its package data?)."
               if shipped else ".")
        )
    actual = downloads.file_sha256(path)
    if actual != preset.file_hash:
        raise ValueError(
            f"{described}: file {path!r} changed since it was registered: "
            f"its sha256 is {actual}, not {preset.file_hash}. It is not loaded."
        )
    return path


def _check_model_fits(model, preset, arch):
    """The checks that need the built model (`arch` is its `Architecture`),
    made before any download."""
    described = f"Preset {preset.name!r} (depth {preset.depth})"
    if arch.include_top:
        classes = arch.classes
        if classes != preset.classes:
            raise ValueError(
                f"{described} has a {preset.classes}-class classifier, but the "
                f"model has classes={classes} with include_top=True. Pass "
                f"include_top=False (and add your own head) to use its "
                f"backbone, or classes={preset.classes}."
            )
    channels = model.get_layer(architecture_lib.STEM_CONV).kernel.shape[2]
    if channels != 3:
        raise ValueError(
            f"{described} was trained on 3-channel RGB images, but the model "
            f"takes {channels} channels."
        )
    shortcut = arch.shortcut
    if shortcut != preset.shortcut:
        got = "plain=True" if shortcut is None else f"shortcut={shortcut!r}"
        raise ValueError(
            f"{described} was trained with shortcut={preset.shortcut!r}, "
            f"but the model is built with {got}."
        )


def fetch(preset, no_top=False):
    """`keras_resnet.downloads.fetch` with this module's download settings:
    a preset's file from the Keras cache, or downloaded there, hash checked."""
    return downloads.fetch(
        preset, no_top, timeouts=DOWNLOAD_TIMEOUTS, attempts=DOWNLOAD_ATTEMPTS, backoff=DOWNLOAD_BACKOFF,
        min_speed=DOWNLOAD_MIN_SPEED)
