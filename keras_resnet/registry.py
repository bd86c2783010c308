"""The preset registry: preset names -> the weights file of each depth.

`PRESETS` (name -> {depth: Preset}) starts as the built-in presets
(`keras_resnet.presets`) and grows by `register_preset` (a local or
downloadable file, e.g. a zoo run's model.keras) and `load_registry` (a
JSON list of register_preset arguments; $KERAS_RESNET_PRESETS names one
to load when keras_resnet is imported). `ALIASES` (alias -> {depth: name})
names a preset per depth ("imagenet", "cifar10"). `get_preset` answers
which `Preset` a name loads at a depth, `pin_hash` pins a download.
"""

import dataclasses
import json
import os
import re

from keras_resnet import downloads
from keras_resnet import class_lists
from keras_resnet import presets as presets_lib
from keras_resnet import specs
from keras_resnet import weight_files

# name -> {depth: Preset}; the built-ins plus whatever register_preset adds.
PRESETS = {name: dict(entries) for name, entries in presets_lib.BUILTIN.items()}
# alias -> {depth: name}.
ALIASES = {alias: dict(table) for alias, table in presets_lib.ALIASES.items()}


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
    class_names=None,
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
            `keras_resnet.presets.MODES` key or a dict
            {"mean": (r, g, b), "std": (r, g, b)} in pixel units. None (the
            default): what a local `.keras` file holds in front of its net
            (a zoo run's model.keras: its per-pixel mean), else "none". Given
            for such a file, it must be what the file computes.
        sha256: the file's sha256. For a local file it is computed (and, if
            given, checked); it is checked again at every load.
        recipe, top1, accuracy_source: metadata: the training recipe, the
            measured top-1 accuracy (fraction) and where it was measured.
        class_names: the classifier's classes, so that `decode_predictions`
            and `export` name them: a list of `classes` distinct names by
            class id, or a class list's name ("cifar10", "imagenet1k").
            None: not recorded.
        overwrite: replace an existing entry for this name and depth.

    Returns:
        The registered `Preset`.

    Raises:
        ValueError: for a bad argument, a missing or changed file, an
            alias's name, or an existing entry without `overwrite`.
    """
    spec = specs.get_spec(depth, family)
    overwrite = specs.check_bool("overwrite", overwrite)
    if preprocessing is not None:
        presets_lib.preprocessing_parameters(preprocessing)  # Raises on a bad mode.
    defaults = specs.DEFAULTS[spec.family]
    classes = classes or defaults.classes
    class_names = _checked_class_names(class_names, name, classes)
    path, url, sha256 = _checked_file(path, sha256)
    if url is None:
        preprocessing = _registered_preprocessing(path, preprocessing)
    _check_free(name, depth, overwrite)
    preset = presets_lib.Preset(
        name=name, depth=depth, family=spec.family, variant=variant,
        shortcut=shortcut or defaults.shortcut, classes=classes, class_names=class_names,
        preprocessing="none" if preprocessing is None else preprocessing,
        source_format=presets_lib.KERAS_RESNET, url=url, file_hash=sha256, path=path,
        fname=None if url is None else f"{name}_{depth}_{sha256[:12]}_{os.path.basename(url)}",
        top1=top1, accuracy_source=accuracy_source, recipe=recipe,
    )
    PRESETS.setdefault(name, {})[depth] = preset
    return preset


def _checked_class_names(class_names, name, classes):
    """`class_names` as a `class_lists.ClassList` of `classes` names, or None."""
    if class_names is None:
        return None
    found = class_lists.class_list(class_names, key=name)
    if len(found) != classes:
        raise ValueError(
            f"`class_names` must name each of the preset's {classes} classes; received "
            f"{len(found)} ({found!r}). Pass classes= if the classifier has {len(found)}."
        )
    return found


def _checked_file(path, sha256):
    """Where a registered preset's weights are: (local path or None, URL or
    None, sha256). A local file must exist and have `sha256` if given (its
    hash is computed); a URL must come with its `sha256`."""
    path = os.fspath(path)
    is_url = path.startswith(("http://", "https://"))
    if not is_url:
        path = os.path.expanduser(path)
    if not path.endswith(weight_files.FILE_SUFFIXES):
        raise ValueError(f"`path` must end in .weights.h5 or .keras. Received path={path!r}.")
    if is_url:
        if sha256 is None:
            raise ValueError(
                f"Registering a download ({path}) needs its `sha256`: an "
                "unpinned download would load whatever the server sends."
            )
        return None, path, sha256
    if not os.path.isfile(path):
        raise ValueError(f"Weights file not found. Received path={path!r}.")
    actual = downloads.file_sha256(path)
    if sha256 is not None and sha256 != actual:
        raise ValueError(f"{path!r} has sha256 {actual}, not the given {sha256}.")
    return os.path.abspath(path), None, actual


def _check_free(name, depth, overwrite):
    """Refuses a name that is not a non-empty str, an alias's name, or an
    existing entry unless `overwrite`."""
    if not isinstance(name, str) or not name.strip():
        # Any other key would break every listing of presets (sorted names).
        raise ValueError(f"A preset's `name` must be a non-empty str. Received name={name!r}.")
    if name in ALIASES:
        raise ValueError(
            f"{name!r} is an alias (of {sorted(set(ALIASES[name].values()))}); "
            f"choose another name, e.g. 'my_{name}'."
        )
    if depth in PRESETS.get(name, {}) and not overwrite:
        raise ValueError(
            f"Preset {name!r} already has depth {depth}; pass overwrite=True to replace it."
        )


def _registered_preprocessing(path, given):
    """A local file's preprocessing: what a .keras file holds in front of its
    net, checked against `given`; or `given`."""
    if not path.endswith(".keras"):
        return given
    keras_file = weight_files.read_file(path, weight_files.read_keras_file)
    if given is not None and keras_file.unknown_front is not None:
        return given  # Something we cannot read sits in front: the caller says what.
    try:
        found = weight_files.front_preprocessing(keras_file, path)
    except ValueError as error:
        raise ValueError(f"{error} Pass `preprocessing=` to say what the weights expect.") from None
    if given is not None and not weight_files.same_preprocessing(given, found or "none"):
        raise ValueError(
            f"{path!r} {weight_files.describe_preprocessing(found) if found else 'has no preprocessing in front of its net'}"
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


if os.environ.get("KERAS_RESNET_PRESETS"):
    load_registry(os.environ["KERAS_RESNET_PRESETS"])
