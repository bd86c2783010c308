"""Reading predictions as classes: `decode_predictions`, and a model's preset.

Every preset carries its class list (`Preset.class_names`, a
`keras_resnet.class_lists.ClassList`): CIFAR-10's ten names, or
ImageNet-1k's thousand WordNet ids and names.

`decode_predictions(preds, top=5, classes=...)` reads a batch of
predictions as named classes, with the contract of keras.applications'
`decode_predictions`: one list per image of `(class_id, name, score)`
tuples, most probable first. `class_id` is the WordNet id for ImageNet-1k
(as keras.applications gives it) and the class index (an int) for a list
without ids (CIFAR-10, your own names).

A model built with a preset knows it: `ResNet(depth, weights=PRESET)`
records the preset in the model's architecture record, which `.keras` files
keep (`preset_of(model)` reads it), so `decode_predictions(preds,
classes=model)` and `keras_resnet.export(model, path)` name its classes
without being told, after a save and load too. A model cloned or given a new
head has no record.
"""

import collections

import keras
import numpy as np

from keras_resnet import class_lists
from keras_resnet import registry
from keras_resnet import specs

DEFAULT_TOP = 5
NAN_POLICIES = ("raise", "empty")


def class_list_of_preset(name):
    """The `ClassList` of preset (or alias) `name`, the same at every depth.

    Raises:
        ValueError: an unknown preset; one that records no class names; one
            whose depths have different class lists.
    """
    entries = registry.presets_of(name)
    found = {depth: preset.class_names for depth, preset in entries.items()}
    lists = set(found.values())
    if None in lists or not lists:
        missing = sorted(d for d, c in found.items() if c is None)
        raise ValueError(
            f"Preset {name!r} records no class names (depths {missing}); register it with "
            "class_names=..., or pass the names themselves."
        )
    if len(lists) > 1:
        raise ValueError(
            f"Preset {name!r} has different class lists by depth "
            f"({ {d: repr(c) for d, c in sorted(found.items())} }); pass one of them."
        )
    return lists.pop()


Prediction = collections.namedtuple("Prediction", ["class_id", "name", "score"])
Prediction.__doc__ = """One decoded class: (class_id, name, score), a tuple as keras.applications'."""


def decode_predictions(preds, top=DEFAULT_TOP, classes=None, nan="raise"):
    """Names the `top` most probable classes of each image.

    The contract of `keras.applications.imagenet_utils.decode_predictions`:

        decode_predictions(model.predict(images), top=3)
        # [[('n02123045', 'tabby', 0.71), ('n02123159', 'tiger_cat', 0.12), ...], ...]

    Args:
        preds: predictions (batch, classes): a numpy array or a tensor of
            any backend, probabilities or logits (the order is what
            counts). A batch of 0 gives [].
        top: how many classes per image, an int in [1, classes].
        classes: which classes the columns are:
            - None: inferred from the width where that is unambiguous:
              1000 is ImageNet-1k (as keras.applications assumes). Every
              other width is refused, 10 included: ten outputs may be
              CIFAR-10 or any ten classes (the zoo's digits), and naming
              them CIFAR-10's would be a silent wrong answer.
            - a class list's name ("cifar10", "imagenet1k"), a preset name
              or alias ("cifar10", "imagenet", "akamaster_cifar10", one you
              registered with class_names=...);
            - a list of names, or a `ClassList`;
            - a model built with a preset (`ResNet(20, weights="cifar10")`).
        nan: what a row with a NaN decodes to (an image with a NaN or
            infinite pixel gets NaN probabilities): "raise" (the default)
            refuses the batch, naming the rows; "empty" decodes each such
            row to [] (no class can be named) and the others as usual.

    Returns:
        A list with one list per image of `Prediction(class_id, name,
        score)` tuples, highest score first (ties: lower class id first).
        `class_id` is the WordNet id for ImageNet-1k and the class index
        (an int) otherwise; `score` is a Python float.

    Raises:
        ValueError: `preds` not 2-d (one image without its batch axis is
            named as such) or not numbers; a width that matches no known
            class list, or not the length of `classes`; `top` not an int in
            [1, classes]; a NaN row with nan="raise"; a bad `classes` or
            `nan`.
    """
    array = _as_batch(preds)
    names = _resolve_classes(classes, array.shape[1])
    top = _check_top(top, len(names))
    if nan not in NAN_POLICIES:
        raise ValueError(f"`nan` must be one of {NAN_POLICIES}. Received nan={nan!r}.")
    nan_rows = np.flatnonzero(np.isnan(array).any(axis=1))
    if nan_rows.size and nan == "raise":
        shown = ", ".join(map(str, nan_rows[:10])) + (", ..." if nan_rows.size > 10 else "")
        raise ValueError(
            f"decode_predictions: {nan_rows.size} of {len(array)} rows hold NaN (rows {shown}); an image "
            "with a NaN or infinite pixel gets NaN outputs, so no class can be named for it. Drop those "
            "rows, or pass nan='empty' to decode each of them to [] and the others as usual."
        )
    skipped = set(nan_rows.tolist())
    decoded = []
    for index, row in enumerate(array):
        if index in skipped:
            decoded.append([])
            continue
        best = np.argsort(-row, kind="stable")[:top]
        decoded.append([Prediction(names.class_id(j), names[j], float(row[j])) for j in best])
    return decoded


def _as_batch(preds):
    """`preds` as a float64 numpy array (batch, classes)."""
    try:
        array = np.asarray(preds)
    except Exception:  # A tensor numpy cannot read directly (e.g. on a GPU).
        array = np.asarray(keras.ops.convert_to_numpy(preds))
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype.name == "bfloat16") \
            or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(
            "decode_predictions takes numbers, a (batch, classes) array of probabilities or logits. "
            f"Received {type(preds).__name__} of dtype {array.dtype}."
        )
    if array.ndim != 2:
        hint = " One image's predictions? Pass preds[None]." if array.ndim == 1 else ""
        raise ValueError(
            "decode_predictions takes a batch of predictions, shape (batch, classes), e.g. "
            f"(n, 1000) for ImageNet-1k. Received shape {array.shape}.{hint}"
        )
    return array.astype(np.float64)


def _resolve_classes(classes, width):
    """The `ClassList` of `classes` (see decode_predictions), checked against the width."""
    if classes is None:
        if width == len(class_lists.IMAGENET_1K):
            return class_lists.IMAGENET_1K
        raise ValueError(
            f"decode_predictions cannot tell which classes {width} outputs are: only 1000 "
            "(ImageNet-1k) is inferred. Pass classes= a preset or class list name "
            f"({', '.join(sorted(class_lists.CLASS_LISTS))}), a model built with a preset, or the {width} names"
            + (" (classes='cifar10' for CIFAR-10: ten outputs may be any ten classes)." if width == 10 else ".")
        )
    if isinstance(classes, keras.Model):
        found = class_names_of(classes)
        if found is None:
            raise ValueError(
                f"Model {classes.name!r} records no preset classes: only a model built by "
                "ResNet(..., weights=PRESET) with its classifier knows them (not one loaded from "
                "a file, cloned, or with a new head). Pass classes= the names or the preset's name."
            )
        names = found
    elif isinstance(classes, str) and classes not in class_lists.CLASS_LISTS:
        if classes not in registry.preset_names():
            raise ValueError(
                f"classes={classes!r} is neither a class list ({sorted(class_lists.CLASS_LISTS)}) nor a preset "
                f"({registry.preset_names()}); pass one of those, or a list of names."
            )
        names = class_list_of_preset(classes)
    else:
        names = class_lists.class_list(classes)
    if len(names) != width:
        raise ValueError(
            f"The predictions have {width} columns, but classes={_describe(classes, names)} has "
            f"{len(names)} classes."
        )
    return names


def _describe(classes, names):
    return repr(classes) if isinstance(classes, str) else repr(names)


def _check_top(top, count):
    as_int = specs.integer(top)
    if as_int is None or not 1 <= as_int <= count:
        raise ValueError(f"`top` must be an int in [1, {count}] (the number of classes). Received top={top!r}.")
    return as_int


def preset_of(model):
    """The `Preset` whose weights `model` was built with, or None.

    The one place that reads what a model says about its preset: the
    architecture record of a `ResNetModel` (`get_config()["architecture"]`,
    kept in `.keras` files), whose `weights` is the preset (or alias) that
    `ResNet(depth, weights=PRESET)` loaded. A model made another way (your
    own, `clone_model`, `fold_batchnorm`) has no record, and no preset.
    """
    record = getattr(model, "architecture_record", None)
    if not record or record.get("weights") is None:
        return None
    try:
        return registry.get_preset(record["weights"], record["depth"])
    except ValueError:  # A preset registered in another session, not in this one.
        return None


def class_names_of(model):
    """The `ClassList` of `model`'s classifier, if it was built with a preset
    that records one and still has that preset's classifier (one output of
    that many classes); else None."""
    preset = preset_of(model)
    if preset is None or preset.class_names is None:
        return None
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or tuple(outputs[0].shape[1:]) != (len(preset.class_names),):
        return None
    return preset.class_names


def export_class_names(model):
    """The class names `keras_resnet.export` gives `model` by default: its
    preset's (`class_names_of`), made distinct (`ClassList.distinct_names`);
    None for a model without them."""
    names = class_names_of(model)
    return None if names is None else names.distinct_names()
