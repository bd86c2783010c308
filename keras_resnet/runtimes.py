"""Runs an exported file in its own runtime: the check that an export works.

    predict = keras_resnet.runtimes.load("resnet20.onnx")
    probabilities = predict(images)          # float32 (batch, classes)

`load(path)` picks the runtime from what `keras_resnet.export` wrote (the
formats' table, `keras_resnet.formats.TABLE`):

    a SavedModel directory        TensorFlow, the `serve` endpoint
    a `.onnx` file                ONNX Runtime, CPU execution provider
    a `.tflite` file              the ai-edge-litert interpreter (LiteRT)
    a directory with model.xml    OpenVINO Runtime on the CPU, float32
                                  (`precision="bf16"` for its CPU default
                                  on processors with bf16 units; see below)

Images go in as float or integer pixels (batch, H, W, 3), as the model is
served; an int8 LiteRT file with uint8 inputs is fed them as uint8 (float
values rounded), and its uint8 outputs come back as float32 probabilities
(q / 256). Each runner returns the file's one output, probabilities or
features.

**Every call is checked before the runtime sees the images**, against the
file's own signature: rank 4 with the batch axis (one image alone is
refused, with the fix `images[None]`), height, width and 3 channels last
(channels-first, grayscale and RGBA are refused by name), a float or
integer dtype. A batch of 0 images gives an empty result of the output's
shape, as `ResNetModel.predict` does. (Unchecked, LiteRT answered 1-channel
and 40x40 images of a 32x32 file, and 0 images or channels-first input
left its XNNPack delegate broken: the next calls crashed the process with
SIGSEGV or "double free or corruption".) A file that records taking raw
RGB pixels 0..255 (`export`'s `raw_pixels`; every file of a model with its
preprocessing inside) refuses values outside 0..255, as
`keras_resnet.preprocess_input` does; a full-integer int8 file, which has
no NaN, refuses images with NaN or infinite pixels rather than answer them
with numbers. Files written by older versions record neither: their pixel
values are not checked.

OpenVINO's CPU plugin computes in bfloat16 by default on processors with
bf16 units (AVX-512 BF16 or AMX), which changes probabilities by up to
~1e-2; `load` asks for float32 unless told `precision="bf16"`.

All but the SavedModel need the `deploy` extra.
"""

import operator
import os
import pathlib

import numpy as np

from keras_resnet import formats

PRECISIONS = ("f32", "bf16")


def load(path, *, threads=None, precision="f32", format=None):
    """A callable that runs `images` through the exported file at `path`.

    Args:
        path: what `keras_resnet.export` wrote (any format).
        threads: CPU threads for the runtime, an int >= 1; default: every
            core this process may use (each runtime's default differs, and
            LiteRT's is one thread). The SavedModel runs on TensorFlow's
            own threads.
        precision: OpenVINO only: "f32" (default) or "bf16".
        format: the format's name (`keras_resnet.export`'s `format=`), for
            a file named otherwise; default: from `path`.

    Returns:
        A function `images -> np.ndarray` (float32) that checks `images`
        first (see the module docstring), with attributes `runtime` (its
        name), `input_dtype`, `input_shape` (None for a dynamic dimension)
        and `metadata` (what the export recorded).

    Raises:
        FileNotFoundError: nothing exported at `path`.
        ValueError: a path that is no export, a file its runtime cannot
            read (naming the file), or a bad argument.
        ImportError: the runtime is not installed (naming the extra).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"`path` must be a str or os.PathLike. Received path={path!r}.")
    path = pathlib.Path(path).expanduser()
    fmt = _format(path, format)
    options = _load_options(fmt, threads, precision)
    try:
        runner = fmt.load(path, **options)
    except ImportError:
        raise
    except Exception as error:
        said = " ".join(str(error).split())[:300]
        raise ValueError(
            f"{str(path)!r} cannot be read by {fmt.runtime}: the file is damaged or truncated, "
            f"or is no {fmt.title} export ({type(error).__name__}: {said}). Export it again."
        ) from error
    return _checked(runner, path.name)


def _format(path, format):
    if format is not None:
        fmt = formats.format_named(format)
    else:
        fmt = formats.format_of(path)
    if not path.exists():
        raise FileNotFoundError(f"Nothing exported at {str(path)!r}.")
    if fmt is None:
        kinds = ", ".join(f.describe_path() for f in formats.TABLE.values())
        raise ValueError(
            f"{str(path)!r} is not an export of keras_resnet.export: expected {kinds} "
            "(or pass format=)."
        )
    return fmt


def _load_options(fmt, threads, precision):
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    elif isinstance(threads, bool) or not _is_int(threads) or operator.index(threads) < 1:
        raise ValueError(
            "`threads` must be an int >= 1 (CPU threads for the runtime), or None for every "
            f"core this process may use. Received threads={threads!r}."
        )
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}. Received precision={precision!r}.")
    options = {"threads": operator.index(threads)}
    if "precision" in fmt.load_options:
        options["precision"] = precision
    elif precision != "f32":
        raise ValueError(
            f"`precision` applies to OpenVINO files only; {fmt.title} files compute in the "
            f"precision they were written in. Received precision={precision!r}."
        )
    return options


def _is_int(value):
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _checked(runner, name):
    """`runner.run` behind the checks of `_check_images`."""

    def predict(images):
        x = _check_images(images, runner, name)
        if len(x) == 0:
            return _empty_result(runner, name)
        if runner.input_dtype == np.uint8:
            # Checked: finite, 0..255. The file's input scale is 1 and zero
            # point 0 (export checks it): the uint8 value is the pixel.
            x = np.round(x)
        return np.asarray(runner.run(x.astype(runner.input_dtype, copy=False)), np.float32)

    predict.runtime = runner.runtime
    predict.input_dtype = runner.input_dtype
    predict.input_shape = runner.input_shape
    predict.metadata = runner.metadata
    predict.runner = runner  # keeps the runtime's objects alive
    return predict


def _check_images(images, runner, name):
    """`images` as a numpy array, checked against the file's signature and
    what it records; a ValueError naming what is wrong and the fix."""
    described = f"{name} ({runner.runtime})"
    try:
        x = np.asarray(images)
    except Exception as error:  # noqa: BLE001 - any object numpy cannot read
        raise ValueError(
            f"{described} takes images as an array (batch, H, W, 3). Received a "
            f"{type(images).__name__} that numpy cannot read as one ({error})."
        ) from error
    if x.dtype.kind not in "fiu":
        raise ValueError(
            f"{described} takes float or integer pixels. Received an array of dtype {x.dtype} "
            f"(shape {x.shape})."
        )
    _check_shape(x.shape, runner.input_shape, described)
    if x.size:
        _check_values(x, runner, described)
    return x


def _check_shape(shape, expected, described):
    want = "(" + ", ".join("batch" if i == 0 else "any" if d is None else str(d)
                           for i, d in enumerate(expected)) + ")"
    takes = f"{described} takes images of shape {want}"
    if len(shape) != len(expected):
        single = len(shape) == len(expected) - 1 and _matches(shape, expected[1:])
        hint = " One image without its batch axis? Pass images[None]." if single else ""
        raise ValueError(f"{takes}. Received an array of shape {shape}.{hint}")
    if expected[0] is not None and shape[0] != expected[0]:
        raise ValueError(f"{takes}: batches of exactly {expected[0]}. Received {shape[0]} images.")
    if _matches(shape[1:], expected[1:]):
        return
    channels = expected[-1]
    if len(shape) == 4 and shape[1] == channels and shape[-1] != channels:
        hint = " Channels first? Pass images.transpose(0, 2, 3, 1)."
    elif len(shape) == 4 and shape[-1] != channels and channels == 3:
        hint = {1: " Grayscale? Repeat the channel: np.repeat(images, 3, axis=-1).",
                4: " RGBA? Drop the alpha channel: images[..., :3]."}.get(shape[-1], "")
    else:
        hint = " Resize them to the file's size."
    raise ValueError(f"{takes}, channels last. Received an array of shape {shape}.{hint}")


def _matches(shape, expected):
    return all(want is None or got == want for got, want in zip(shape, expected))


def _check_values(x, runner, described):
    from keras_resnet.preprocessing import check_pixels

    if runner.metadata.get("raw_pixels") or runner.input_dtype == np.uint8:
        check_pixels(x, described, "the file normalises them itself (its preprocessing is inside)")
    no_nan = runner.metadata.get("nan_out") is False or runner.input_dtype.kind in "iu"
    if no_nan and x.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1))
        if bad.size and runner.input_dtype.kind in "iu":
            raise ValueError(
                f"{described} takes {runner.input_dtype} pixels, which have no NaN or infinity: "
                f"images {bad[:10].tolist()} have such pixels; refused. Repair or drop them."
            )
        if bad.size:
            raise ValueError(
                f"{described} is a full-integer (int8) file, which has no NaN: an image with a "
                f"NaN or infinite pixel would get an ordinary, meaningless answer. Images "
                f"{bad[:10].tolist()} have such pixels; refused. Repair or drop them (a float "
                "export, quantization=None or 'dynamic', answers them with NaN)."
            )


def _empty_result(runner, name):
    """The result for 0 images: an empty array of the output's shape."""
    rest = runner.output_shape[1:]
    if any(d is None for d in rest):
        raise ValueError(
            f"{name} ({runner.runtime}) got 0 images, and its output's shape "
            f"{runner.output_shape} depends on the images' size: there is no empty result to give."
        )
    return np.zeros((0, *rest), np.float32)
