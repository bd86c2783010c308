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
   downloaded. A download waits at most `DOWNLOAD_TIMEOUTS` (connect, read)
   and is tried `DOWNLOAD_ATTEMPTS` times (server errors, timeouts and
   dropped connections; not a missing file or an unknown host). When it
   fails (offline, say), the error names the URL and the path to put the
   file at by hand.

`include_top=False` works with every preset. Images must be preprocessed
as the preset says: `keras_resnet.preprocess_input(x, weights=name)`.
"""

import dataclasses
import functools
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile

import h5py
import keras
import numpy as np

from keras_resnet import architecture as architecture_lib
from keras_resnet import atomic
from keras_resnet import porting
from keras_resnet import presets as presets_lib
from keras_resnet import specs
from keras_resnet import torch_checkpoint

# name -> {depth: Preset}; the built-ins plus whatever register_preset adds.
PRESETS = {name: dict(entries) for name, entries in presets_lib.BUILTIN.items()}
# alias -> {depth: name}.
ALIASES = {alias: dict(table) for alias, table in presets_lib.ALIASES.items()}
FILE_SUFFIXES = (".weights.h5", ".keras")
_CLASSIFIER = architecture_lib.CLASSIFIER
# Downloads: seconds to wait for a connection and for each read (any bytes
# at all), how many times to try, and the wait before the second try
# (doubling after). Module settings, for slow links and for tests:
# keras_resnet.weights.DOWNLOAD_TIMEOUTS = (60, 300).
DOWNLOAD_TIMEOUTS = (30.0, 60.0)
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_BACKOFF = 1.0


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
    if weights in PRESETS or weights in ALIASES:
        preset = get_preset(weights, depth=spec.depth, family=spec.family)
        if spec.block == "bottleneck" and variant != preset.variant:
            raise ValueError(
                f"Preset {weights!r} for depth {spec.depth} was trained with "
                f"the {preset.variant} stride layout (variant={preset.variant!r}), "
                f"but the model is built with variant={variant!r}: the weights "
                f"would load but compute something else. Pass "
                f"variant={preset.variant!r}."
            )
        return PresetWeights(preset)
    if weights.endswith(FILE_SUFFIXES):
        if not os.path.isfile(weights):
            raise ValueError(f"`weights` file not found. Received weights={weights!r}.")
        return weights
    raise ValueError(
        "`weights` must be None, a path to a file ending in .weights.h5 or "
        f".keras, or a preset name (presets: {preset_names()}). "
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
        found = file_preprocessing(resolved)
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
        f"`weights` must be a preset name ({preset_names()}) or such a file. "
        f"Received weights={weights!r}."
    )


def preset_names():
    """All preset names, aliases included, sorted."""
    return sorted(set(PRESETS) | set(ALIASES))


def presets_of(name):
    """{depth: Preset} that preset name or alias `name` loads.

    Raises:
        ValueError: if there is no such preset or alias.
    """
    if isinstance(name, str) and name in ALIASES:
        return {depth: PRESETS[target][depth] for depth, target in sorted(ALIASES[name].items())
                if depth in PRESETS.get(target, {})}
    if isinstance(name, str) and name in PRESETS:
        return PRESETS[name]
    raise ValueError(f"Unknown preset {name!r}. Presets: {preset_names()}.")


def get_preset(name, depth=None, family=None):
    """Returns the `Preset` that `name` loads at `depth` (any, if None).

    Raises:
        ValueError: if there is no such preset, or none for this depth; the
            message lists the depths that have one.
    """
    entries = presets_of(name)
    if not entries:
        raise ValueError(f"Preset {name!r} has no weights registered.")
    if depth is None:
        return next(iter(entries.values()))
    preset = entries.get(depth)
    if preset is None or (family is not None and preset.family != family):
        have = sorted(entries)
        raise ValueError(
            f"Preset {name!r} has weights for depths {have} "
            f"({next(iter(entries.values())).family}), not for depth {depth}"
            f"{'' if family is None else f' ({family})'}. "
            f"Presets with depth {depth}: "
            f"{sorted(n for n in preset_names() if depth in presets_of(n)) or 'none'}."
        )
    return preset


def register_preset(
    name,
    path,
    *,
    depth,
    family=None,
    variant="v1",
    shortcut=None,
    classes=None,
    preprocessing=None,
    sha256=None,
    recipe=None,
    top1=None,
    accuracy_source=None,
    overwrite=False,
):
    """Registers a local or downloadable weights file under a preset name.

    This is how the zoo's checkpoints become presets, e.g.

        register_preset("my_cifar10", "runs/r20/model.keras", depth=20,
                        recipe="cifar10_resnet20", top1=0.9125,
                        preprocessing={"mean": MEAN, "std": STD})

    after which `ResNet(20, weights="my_cifar10")` loads it.

    Args:
        name: the preset name.
        path: a local `.keras`/`.weights.h5` file saved from a
            `keras_resnet.ResNet` of the same architecture, or an http(s)
            URL of one (then `sha256` is required).
        depth, family, variant, shortcut, classes: the architecture the
            file fits (family, shortcut and classes default from the depth).
        preprocessing: what the weights expect; a
            `keras_resnet.preprocessing.MODES` key or a dict
            {"mean": (r, g, b), "std": (r, g, b)} in pixel units. None (the
            default): what a local `.keras` file holds in front of its net
            (a zoo run's model.keras: its per-pixel mean), else "none". Given
            for such a file, it must be what the file computes.
        sha256: the file's sha256. For a local file it is computed (and, if
            given, checked); it is checked again at every load.
        recipe, top1, accuracy_source: metadata: the training recipe, the
            measured top-1 accuracy (fraction) and where it was measured.
        overwrite: replace an existing entry for this name and depth.

    Returns:
        The registered `Preset`.
    """
    spec = specs.get_spec(depth, family)
    overwrite = specs.check_bool("overwrite", overwrite)
    if preprocessing is not None:
        presets_lib.preprocessing_parameters(preprocessing)  # Raises on a bad mode.
    path = os.fspath(path)
    is_url = path.startswith(("http://", "https://"))
    if not is_url:
        path = os.path.expanduser(path)
    if not path.endswith(FILE_SUFFIXES):
        raise ValueError(f"`path` must end in .weights.h5 or .keras. Received path={path!r}.")
    if is_url:
        if sha256 is None:
            raise ValueError(
                f"Registering a download ({path}) needs its `sha256`: an "
                "unpinned download would load whatever the server sends."
            )
    else:
        if not os.path.isfile(path):
            raise ValueError(f"Weights file not found. Received path={path!r}.")
        actual = file_sha256(path)
        if sha256 is not None and sha256 != actual:
            raise ValueError(f"{path!r} has sha256 {actual}, not the given {sha256}.")
        sha256 = actual
        path = os.path.abspath(path)
        preprocessing = _registered_preprocessing(path, preprocessing)
    if preprocessing is None:
        preprocessing = "none"
    if name in ALIASES:
        raise ValueError(
            f"{name!r} is an alias (of {sorted(set(ALIASES[name].values()))}); "
            f"choose another name, e.g. 'my_{name}'."
        )
    entries = PRESETS.setdefault(name, {})
    if depth in entries and not overwrite:
        raise ValueError(
            f"Preset {name!r} already has depth {depth}; pass overwrite=True to replace it."
        )
    defaults = specs.DEFAULTS[spec.family]
    preset = presets_lib.Preset(
        name=name,
        depth=depth,
        family=spec.family,
        variant=variant,
        shortcut=shortcut or defaults.shortcut,
        classes=classes or defaults.classes,
        preprocessing=preprocessing,
        source_format=presets_lib.KERAS_RESNET,
        url=path if is_url else None,
        file_hash=sha256,
        fname=f"{name}_{depth}_{sha256[:12]}_{os.path.basename(path)}" if is_url else None,
        path=None if is_url else path,
        top1=top1,
        accuracy_source=accuracy_source,
        recipe=recipe,
    )
    entries[depth] = preset
    return preset


def _registered_preprocessing(path, given):
    """A local file's preprocessing: what a .keras file holds in front of its
    net, checked against `given`; or `given`."""
    if not path.endswith(".keras"):
        return given
    keras_file = _read_file(path, _read_keras_file)
    if given is not None and keras_file.unknown_front is not None:
        return given  # Something we cannot read sits in front: the caller says what.
    try:
        found = _front_preprocessing(keras_file, path)
    except ValueError as error:
        raise ValueError(f"{error} Pass `preprocessing=` to say what the weights expect.") from None
    if given is not None and not _same_preprocessing(given, found or "none"):
        raise ValueError(
            f"{path!r} {describe_preprocessing(found) if found else 'has no preprocessing in front of its net'}"
            f", but the preset is registered with preprocessing={given!r:.200}: its presets would "
            "preprocess images another way than the net was trained on. Leave `preprocessing` "
            "out to take the file's."
        )
    return found if found is not None else given


def load_registry(path):
    """Registers every preset listed in a JSON registry file.

    The file is a JSON list of objects, each the keyword arguments of one
    `register_preset` call ("name", "path", "depth", "sha256", "recipe",
    "top1", "preprocessing", ...); a relative "path" is relative to the
    file. This is how the zoo's trained checkpoints persist as presets
    across processes: set the environment variable
    `KERAS_RESNET_PRESETS=/path/to/presets.json` and they register when
    keras_resnet is imported.

    Returns:
        The registered `Preset`s.
    """
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise ValueError(f"Preset registry file not found: {path!r} (from $KERAS_RESNET_PRESETS?).")
    try:
        with open(path) as f:
            entries = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        empty = " is empty" if os.path.getsize(path) == 0 else " is not valid JSON"
        raise ValueError(
            f"Preset registry {path!r}{empty} ({error}). It must hold a JSON list of "
            "register_preset arguments; fix or delete it (or unset $KERAS_RESNET_PRESETS)."
        ) from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(
            f"Preset registry {path!r} must hold a JSON list of objects, each the "
            f"arguments of one register_preset call. Received {str(entries)[:200]}."
        )
    registered = []
    for entry in entries:
        entry = dict(entry)
        try:
            name, target = entry.pop("name"), entry.pop("path")
        except KeyError as error:
            raise ValueError(f"Preset registry {path!r}: entry {entry!r} lacks {error}.") from None
        if not target.startswith(("http://", "https://")) and not os.path.isabs(target):
            target = os.path.join(os.path.dirname(os.path.abspath(path)), target)
        entry.setdefault("overwrite", True)
        try:
            registered.append(register_preset(name, target, **entry))
        except (ValueError, TypeError) as error:
            raise ValueError(f"Preset registry {path!r}, entry {name!r}: {error}") from None
    return registered


def file_sha256(path):
    """The sha256 of a file, as hex."""
    return _digest(path, "sha256")


def load_into(model, path):
    """Checks that the weights in `path` fit `model`, then assigns them.

    Args:
        model: the model `ResNet` built.
        path: what `resolve` returned: a local file path or a
            `PresetWeights`.
    """
    if isinstance(path, PresetWeights):
        return _load_preset(model, path.preset)
    return _load_file(model, path)


def _load_preset(model, preset):
    arch = architecture_lib.architecture_of(model)
    include_top = arch.include_top
    _check_model_fits(model, preset, arch)
    if preset.source_format == presets_lib.KERAS_RESNET:
        path = fetch(preset) if preset.url else _checked_local_file(preset)
        _load_file(model, path, skip_foreign=True)
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
    actual = file_sha256(path)
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


def _cache_dir():
    """The Keras cache, where keras.utils.get_file caches too: $KERAS_HOME, or ~/.keras."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def fetch(preset, no_top=False):
    """Downloads a preset's file (or finds it in the cache) and returns its path.

    The hash is pinned: a cached file whose hash differs is downloaded
    again; a download whose hash differs is deleted and raises. A pin of 8
    hex digits is the start of the sha256 (torch.hub's convention for file
    names); one of 32 an md5 (keras.applications' pins); one of 64 a sha256.

    Raises:
        ValueError: if the preset's hash is not pinned, or the download's
            hash differs.
        OSError: if the download fails (after `DOWNLOAD_ATTEMPTS` tries
            where retrying can help), naming the URL and the path at which
            to put the file by hand.
    """
    url, file_hash = preset.url, preset.file_hash
    if no_top and preset.url_no_top:
        url, file_hash = preset.url_no_top, preset.file_hash_no_top
    fname = preset.fname if preset.fname and url == preset.url else os.path.basename(url)
    target = os.path.join(_cache_dir(), "models", fname)
    if file_hash is None:
        raise ValueError(
            f"Preset {preset.name!r} (depth {preset.depth}) has no pinned "
            "hash yet, so keras-resnet will not download it: a file it "
            "cannot verify could be anything. Either download "
            f"{url} yourself, check it against the publisher's listing and "
            "convert it directly with keras_resnet.convert.from_torchvision("
            "keras_resnet.convert.load_safetensors(path)); or pin its sha256 "
            f"with keras_resnet.weights.pin_hash({preset.name!r}, "
            f"{preset.depth}, sha256), after which it downloads to (or is "
            f"read from) {target}."
        )
    if os.path.exists(target):
        if _has_hash(target, file_hash):
            return target
        os.remove(target)  # corrupted or stale: download again
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        _download(url, target)
    except OSError as error:
        raise OSError(
            f"Could not download preset {preset.name!r} (depth "
            f"{preset.depth}) from {url}: {error}. If this machine is "
            f"offline, download that file elsewhere and put it at {target} "
            f"(its {'sha256 must start with' if len(file_hash) == 8 else 'hash must be'} {file_hash})."
        ) from error
    if not _has_hash(target, file_hash):
        actual = _digest(target, "md5" if len(file_hash) == 32 else "sha256")
        os.remove(target)
        raise ValueError(
            f"The file downloaded from {url} for preset {preset.name!r} does "
            f"not have the pinned hash {file_hash}; it was deleted and not "
            f"used. (Its {'md5' if len(file_hash) == 32 else 'sha256'} is {actual}.)"
        )
    return target


def _digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _has_hash(path, file_hash):
    """Whether the file has the pin: an md5 (32 hex), a sha256 (64) or its first 8 digits."""
    actual = _digest(path, "md5" if len(file_hash) == 32 else "sha256")
    return actual.startswith(file_hash) if len(file_hash) == 8 else actual == file_hash


class _Connection(http.client.HTTPConnection):
    """Waits `timeout` to connect, then `read_timeout` for each read."""

    def __init__(self, *args, read_timeout, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout

    def connect(self):
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _TLSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, read_timeout, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout

    def connect(self):
        super().connect()  # TCP and the TLS handshake, under the connect timeout
        self.sock.settimeout(self.read_timeout)


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout):
        super().__init__()
        self.read_timeout = read_timeout

    def http_open(self, request):
        return self.do_open(functools.partial(_Connection, read_timeout=self.read_timeout), request)


class _TLSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout):
        self.context = ssl.create_default_context()
        super().__init__(context=self.context)
        self.read_timeout = read_timeout

    def https_open(self, request):
        connection = functools.partial(_TLSConnection, read_timeout=self.read_timeout)
        return self.do_open(connection, request, context=self.context)


# HTTP statuses worth another try: the server or a proxy on the way is busy.
_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


def _download(url, target):
    """Downloads `url` to `target` (atomically) with timeouts and retries.

    Raises:
        OSError: saying what failed on the last attempt and how many were made.
    """
    connect_timeout, read_timeout = DOWNLOAD_TIMEOUTS
    opener = urllib.request.build_opener(_Handler(read_timeout), _TLSHandler(read_timeout))
    attempts = max(1, int(DOWNLOAD_ATTEMPTS))
    print(f"Downloading data from {url}")
    for attempt in range(1, attempts + 1):
        try:
            _copy(opener.open(url, timeout=connect_timeout), target)
            return
        except urllib.error.HTTPError as error:
            failure, retry = f"HTTP Error {error.code}: {error.reason}", error.code in _RETRY_STATUSES
        except urllib.error.URLError as error:
            reason = error.reason
            failure = _timed_out(connect_timeout, read_timeout) if isinstance(reason, TimeoutError) else str(reason)
            # An unknown host or a refused certificate will not come right.
            retry = not isinstance(reason, (socket.gaierror, ssl.SSLCertVerificationError))
        except TimeoutError:  # a read timed out after the connection was made
            failure, retry = _timed_out(connect_timeout, read_timeout), True
        except (ConnectionError, http.client.HTTPException) as error:
            failure, retry = f"{type(error).__name__}: {error}", True
        if not retry or attempt == attempts:
            tries = f" ({attempt} attempts)" if attempt > 1 else ""
            raise OSError(f"{failure}{tries}")
        time.sleep(DOWNLOAD_BACKOFF * 2 ** (attempt - 1))


def _timed_out(connect_timeout, read_timeout):
    return (f"timed out (connect timeout {connect_timeout:g} s, read timeout {read_timeout:g} s; "
            "see keras_resnet.weights.DOWNLOAD_TIMEOUTS)")


def _copy(response, target):
    """Streams a response into `target`, written beside it and renamed into place."""

    def write(staging):
        with response, open(staging, "wb") as f:
            total = response.headers.get("Content-Length")
            progress = keras.utils.Progbar(int(total) if total and total.isdigit() else None)
            done = 0
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                done += len(chunk)
                progress.update(done)

    atomic.write_atomically(target, True, write)


def pin_hash(name, depth, file_hash):
    """Pins the hash of a preset whose hash is not pinned (after you checked it).

    Returns:
        The updated `Preset`.
    """
    preset = get_preset(name, depth=depth)
    if preset.file_hash is not None and preset.file_hash != file_hash:
        raise ValueError(f"Preset {name!r} depth {depth} is already pinned to {preset.file_hash}.")
    if not (isinstance(file_hash, str) and re.fullmatch(r"[0-9a-f]{64}", file_hash)):
        raise ValueError(f"`file_hash` must be a sha256 in hex (64 chars). Received {file_hash!r}.")
    preset = dataclasses.replace(preset, file_hash=file_hash)
    PRESETS[preset.name][depth] = preset
    return preset


def _load_file(model, path, skip_foreign=False):
    """Checks that the weights in a local file fit `model`, then assigns them.

    Args:
        skip_foreign: ignore layers of a `.keras` file whose names are not
            ResNet layer names (e.g. the preprocessing a zoo model holds).
    """
    if path.endswith(".keras"):
        keras_file = _read_file(path, _read_keras_file)
        _check_architecture(path, keras_file.layers, model)
        keyed = {layer.name: layer for layer in _weighted_layers(model)}
        describe = "layer name"
        # The preprocessing in front of the net (a zoo run's mean) is not the
        # net's; include_preprocessing=True builds it in from the file.
        front = {layer["config"]["name"] for layer in keras_file.front}
        source = {k: v for k, v in keras_file.arrays.items() if k not in front}
        if skip_foreign:
            source = {k: v for k, v in source.items() if k in keyed or _is_resnet_layer(k)}
    else:
        source, recorded = _read_file(path, _arrays_by_h5_path)
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
    if not path.endswith(".keras"):  # every weight fits: did the net have shortcuts?
        _check_residual_layers(path, source, recorded, model)
    for layer, arrays in assignments:
        layer.set_weights(arrays)


def _read_file(path, reader):
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


def _arrays_by_h5_path(path):
    """(arrays by layer key, every layer key) of a .weights.h5 file."""
    with h5py.File(path, "r") as f:
        return _arrays_by_h5_key(f, path), set(f["layers"])


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

    saved, built = counts(recorded), counts(positional_keys(model, weighted_only=False))
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


def architecture(layers):
    """Deprecated: use `keras_resnet.architecture_of(model)` (a built model)
    or `keras_resnet.architecture.from_layers(layers)` (a saved config).

    How a keras_resnet net was built, from (name, strides) of its layers, as
    a dict with "family", "depth", "plain", "shortcut", "variant" and
    "strides", or None if the layers are not a keras_resnet net.
    """
    warnings.warn(
        "keras_resnet.weights.architecture is deprecated; use keras_resnet.architecture_of(model) "
        "or keras_resnet.architecture.from_layers(layers).", DeprecationWarning, stacklevel=2)
    arch = architecture_lib.from_layers(layers)
    if arch is None:
        return None
    fields = ("family", "depth", "plain", "shortcut", "variant", "strides")
    return {field: getattr(arch, field) for field in fields}


def _check_architecture(path, saved_layers, model):
    saved = architecture_lib.from_layers(saved_layers)
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


def _is_resnet_layer(name):
    return name == architecture_lib.CLASSIFIER or re.fullmatch(r"conv\d(_block\d+_\d)?_(conv|bn)", name) is not None


def _mismatch_message(path, model, layer, expected, found):
    if layer.name == architecture_lib.STEM_CONV:
        return (
            f"Weights file {path!r} was saved for {found[0][2]} input "
            f"channels (stem kernel {found[0]}), but model {model.name!r} "
            f"takes {expected[0][2]} channels (stem kernel {expected[0]}). "
            "Build the model with the file's channel count in `input_shape`."
        )
    if layer.name == architecture_lib.CLASSIFIER:
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
class _KerasFile:
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
    """

    arrays: dict
    layers: list
    front: tuple
    unknown_front: str


# Zip compression whose output is at most ~1000x its input (Keras stores).
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _read_keras_file(path):
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
    return _KerasFile(arrays, list(_flat_layers(layer_configs)), front, unknown)


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


def _front_preprocessing(keras_file, path):
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
    return _front_preprocessing(_read_file(path, _read_keras_file), path)


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


def _same_preprocessing(a, b):
    (mean_a, std_a, bgr_a), (mean_b, std_b, bgr_b) = (presets_lib.preprocessing_parameters(m) for m in (a, b))
    return bgr_a == bgr_b and np.allclose(std_a, std_b, rtol=1e-4) and np.allclose(
        np.broadcast_arrays(np.asarray(mean_a), np.asarray(mean_b))[0],
        np.broadcast_arrays(np.asarray(mean_a), np.asarray(mean_b))[1], rtol=1e-4, atol=1e-3)


def _flat_layers(layer_configs):
    """(name, strides) of every layer in a saved functional config, nested models too."""
    for layer_config in layer_configs:
        config = layer_config.get("config", {})
        if isinstance(config.get("layers"), list):
            yield from _flat_layers(config["layers"])
        else:
            yield config.get("name"), config.get("strides")


if os.environ.get("KERAS_RESNET_PRESETS"):
    load_registry(os.environ["KERAS_RESNET_PRESETS"])
