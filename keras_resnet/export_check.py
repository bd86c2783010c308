"""Every export written at a staging path, checked, and renamed into place.

`keras_resnet.export` (through `serving.write_export`) calls `write`: the
format's writer puts the file at a staging path next to its destination
(`keras_resnet.atomic`), `verify_file` loads it in its own runtime
(`keras_resnet.runtimes.load`, with its input checks) and runs it on a few
images, and compares its outputs with Keras's: the float32 computation that
was exported (`serving.serve_outputs`), run eagerly by TensorFlow. A file
that fails is not renamed into place, and the error says what disagreed and
by how much. A writer that fails on a full disk (in its own words: OSError,
TensorFlow's ResourceExhaustedError, OpenVINO's "basic_ios::clear") gives
an OSError ENOSPC that names the path.

The images: two of random pixels (0..255 for a file that takes raw pixels,
standard normal values otherwise), and for a format that keeps NaN a third
with one NaN pixel, which must get NaN out; for full-integer int8, the
first four calibration images instead (the values its ranges come from;
int8 has no NaN).

What "agree" means comes from the arithmetic, not from a measured run:

- **Float files.** Keras and the runtime compute the same float32 graph in
  different orders (and kernels). A dot product of K terms rounded in
  float32 errs by about lambda * sqrt(K) * u relative (u = 2**-24;
  Higham & Mary's probabilistic bound, lambda = 4), these add up over the
  D layers with weights, and both sides err: |out - out_keras| <= 2 *
  lambda * D * sqrt(K) * u * scale, where the scale is the largest
  |feature| for features, and for probabilities half the largest |logit|
  (|dp| <= |dz| / 2 through a softmax), the logits computed by Keras. For
  ResNet-20 with logits up to 20 that is about 1e-3; the runtimes agree to
  about 1e-5 (README), so a real fault (a 16-bit computation, a wrong
  weight or preprocessing) stands out.
- **Quantized files** (LiteRT "dynamic" and "int8"). Each quantized
  tensor is rounded to half a step of its 8-bit range, 1/510 of it; over
  D layers the logits move by up to D / 510 of their range, and
  probabilities by half that. An image whose Keras top-1 leads the
  runner-up by more than twice that bound must keep its top-1 (for a deep
  net the bound exceeds 1 and no image has to: the check is then that the
  file loads, runs, and returns probabilities that sum to 1 within a 1/256
  step per class).

Cost: one load in the runtime and one forward pass of a few images in the
runtime and in Keras; small next to the export itself (BENCHMARKS.md has
the figures). `export(..., verify=False)` skips it.
"""

import errno
import math
import os
import pathlib

import numpy as np

from keras_resnet import atomic
from keras_resnet import formats
from keras_resnet import preprocessing
from keras_resnet import runtimes

UNIT_ROUNDOFF = 2.0 ** -24  # float32
LAMBDA = 4.0
RANDOM_IMAGES = 2
INT8_IMAGES = 4
# The images' size when the model takes any size and the export names none.
ANY_SIZE = 64
TINY = 1e-30  # probabilities below this count as this, for the logits' spread
# Written with fewer bytes free than this, a failed write is a full disk.
DISK_FULL_BYTES = 1 << 20


class ExportCheckError(RuntimeError):
    """An exported file failed the check against Keras; it was not written."""


def verify_file(fmt, job, target):
    """Checks the export of `job` written at `target` in its runtime.

    Args:
        fmt: the `formats.Format`.
        job: the `formats.ExportJob`.
        target: where the file is (a staging path).

    Raises:
        ExportCheckError: the file does not load or run in its runtime, or
            disagrees with Keras; naming what and by how much.
        ImportError: its runtime is not installed.
    """
    where = f"The {fmt.title} export written for {str(job.path)!r}"
    unchecked = ("Nothing was written. This is a fault of the exporter or the runtime on this "
                 "model; export(..., verify=False) writes the file unchecked.")
    try:
        predict = runtimes.load(target, format=fmt.name)
    except ImportError:
        raise
    except Exception as error:
        raise ExportCheckError(
            f"{where} does not load in {fmt.runtime} ({type(error).__name__}: {error}). {unchecked}"
        ) from error
    images, described = _check_images(job, nan=predict.input_dtype.kind == "f")
    expected, logits = _keras_outputs(job.plan, images)
    try:
        got = np.asarray(predict(images))
    except Exception as error:
        raise ExportCheckError(
            f"{where} does not run in {predict.runtime} on {described} "
            f"({type(error).__name__}: {error}). {unchecked}"
        ) from error
    problem = _disagreement(job, images, expected, got, logits)
    if problem:
        raise ExportCheckError(
            f"{where} disagrees with Keras on {described}: {problem}. {unchecked}")


def _check_images(job, nan=True):
    """(float32 images (N, H, W, 3), their description) for the check; one
    with a NaN pixel if the file keeps NaN and `nan` (it takes floats)."""
    plan = job.plan
    if job.options.get("quantization") == "int8":
        images = np.concatenate(job.options["calibration_images"][:INT8_IMAGES])
        if job.options.get("io_dtype") == "uint8":
            images = np.round(images)  # what the file's uint8 input gets
        return images, f"the first {len(images)} calibration images"
    height, width = plan.image_size or (plan.height or ANY_SIZE, plan.width or ANY_SIZE)
    rng = np.random.default_rng(0)
    shape = (RANDOM_IMAGES, height, width, 3)
    record = getattr(plan.model, "architecture_record", None) or {}
    if job.metadata["raw_pixels"]:
        images, kind = rng.integers(0, 256, shape).astype(np.float32), "random pixels 0..255"
    elif record.get("input_preprocessing") is not None:
        # A preset's net takes its preprocessed pixels, and refuses other values (model_classes).
        pixels = rng.integers(0, 256, shape).astype(np.float32)
        images = preprocessing.preprocess_input(pixels, weights=record["weights"], depth=record["depth"])
        kind = f"random pixels 0..255 preprocessed as weights={record['weights']!r} expects"
    else:
        images, kind = rng.standard_normal(shape).astype(np.float32), "random normal values"
    if job.metadata["nan_out"] and nan:
        with_nan = images[:1].copy()
        with_nan[0, height // 2, width // 2, 1] = np.nan
        images = np.concatenate([images, with_nan])
        kind += ", the last with a NaN pixel"
    return images, f"{len(images)} images ({kind})"


def _keras_outputs(plan, images):
    """(outputs, logits or None): the exported graph's outputs and a
    classifier's logits (their scale), from one eager pass of Keras."""
    from keras_resnet.model_classes import recursion_headroom

    with recursion_headroom():
        return plan.keras_reference(images)


def _disagreement(job, images, expected, got, logits=None):
    """What is wrong with the file's outputs `got`, in words; None if nothing."""
    if got.shape != expected.shape:
        return f"it returns an array of shape {got.shape}, Keras {expected.shape}"
    nan_images = ~np.isfinite(images).reshape(len(images), -1).all(axis=1)
    for i in np.flatnonzero(nan_images):
        if not np.isnan(got[i]).all():
            return f"image {i} has a NaN pixel and gets numbers, not NaN"
    # The NaN image comes last: the others keep their numbers.
    expected, got = expected[~nan_images], got[~nan_images]
    logits = None if logits is None else logits[~nan_images]
    if not np.isfinite(got).all():
        return "it returns NaN or infinite values for images with finite pixels"
    layers, fan_in = layers_with_weights(job.plan.model)
    if job.options.get("quantization") is not None:
        return _quantized_disagreement(job.plan, expected, got, logits, layers)
    relative = 2 * LAMBDA * layers * math.sqrt(fan_in) * UNIT_ROUNDOFF
    if job.plan.head == "features":
        scale = np.full(len(got), max(float(np.abs(expected).max()), TINY))
    else:  # |dp| <= |dz| / 2 through a softmax; |dz| <= relative * |z|
        scale = np.maximum(1.0, _logit_scale(expected, logits)) / 2
    tolerance = relative * scale
    difference = np.abs(got - expected).reshape(len(got), -1).max(axis=1)
    excess = np.where(np.isfinite(tolerance), difference - tolerance, -np.inf)
    worst = int(np.argmax(excess))
    if excess[worst] > 0:
        return (
            f"max |out - out_keras| = {difference[worst]:.3g} on image {worst}, above "
            f"{tolerance[worst]:.3g}, the most that float32 rounding explains ({layers} layers "
            f"with weights, up to {fan_in} products per output)"
        )
    return None


def layers_with_weights(model):
    """How many layers of `model` have a kernel, and how many products one
    of their outputs sums at most: the D and K of the float32 bound.

    Args:
        model: a Keras model (nested models are walked).

    Returns:
        (D, K), K being kh * kw * input channels for a conv and the inputs
        of a dense layer; (1, 1) for a model without kernels.
    """
    kernels = [layer.kernel for layer in model._flatten_layers(include_self=False, recursive=True)
               if getattr(layer, "kernel", None) is not None]
    if not kernels:
        return 1, 1
    return len(kernels), max(math.prod(kernel.shape[:-1]) for kernel in kernels)


def _logit_scale(probabilities, logits):
    """Per image, the largest |logit|; without the logits (a softmax layer
    of its own), the spread of the log-probabilities, or NaN (unknown: not
    compared) where a probability underflows below `TINY`."""
    if logits is not None:
        return np.abs(logits).max(axis=1)
    logs = np.log(np.maximum(probabilities, TINY))
    spread = logs.max(axis=1) - logs.min(axis=1)
    return np.where(probabilities.min(axis=1) > TINY, spread, np.nan)


def _quantized_disagreement(plan, expected, got, logits, layers):
    """8-bit rounding: each quantized tensor is off by half a step of its
    range (1/510 of it); over `layers` layers, `layers` / 510 of the output's."""
    if plan.head == "features":
        bound = layers / 510 * float(expected.max() - expected.min())
        difference = np.abs(got - expected).reshape(len(got), -1).max(axis=1)
        if (difference > bound).any():
            worst = int(np.argmax(difference))
            return (f"max |out - out_keras| = {difference[worst]:.3g} on image {worst}, above "
                    f"{bound:.3g}, what 8-bit rounding over {layers} layers explains")
        return None
    # int8 probabilities are q / 256: each within a step of its value (half a
    # step of rounding, and the fixed-point exp of int8's softmax), and the
    # largest one capped at 255 / 256.
    sums = got.sum(axis=1)
    if (np.abs(sums - 1) > (got.shape[1] + 1) / 256).any():
        worst = int(np.argmax(np.abs(sums - 1)))
        return f"its probabilities for image {worst} sum to {sums[worst]:.4g}, not 1"
    # The logits' range over these images (what calibration sets), moved by
    # up to layers / 510 of it; probabilities by half that.
    ranges = (logits.max(axis=1) - logits.min(axis=1) if logits is not None
              else _logit_scale(expected, None))
    bound = layers * np.max(ranges) / 1020 if np.isfinite(ranges).all() else np.inf
    top2 = np.sort(expected, axis=1)[:, -2:]
    confident = top2[:, 1] - top2[:, 0] > 2 * bound
    flipped = confident & (got.argmax(axis=1) != expected.argmax(axis=1))
    if flipped.any():
        i = int(np.flatnonzero(flipped)[0])
        return (
            f"image {i} gets class {int(got[i].argmax())} ({got[i].max():.3f}), Keras class "
            f"{int(expected[i].argmax())} ({expected[i].max():.3f}), a lead of "
            f"{top2[i, 1] - top2[i, 0]:.3f} that 8-bit rounding over {layers} layers "
            f"(at most {bound:.3f} per probability) cannot undo"
        )
    return None


def write(fmt, plan, options, path, overwrite, verify=True):
    """Writes the export of `plan` in format `fmt` at `path`: at a staging
    path next to it, checked (`verify`), then renamed into place.

    Args:
        fmt: the `formats.Format`.
        plan: the checked export (`keras_resnet.serving._Plan`).
        options: the format's own options, checked (`Format.check_options`).
        path: where the export goes (checked: `formats.check_path`).
        overwrite: whether an existing `path` may be replaced.
        verify: check the file in its runtime first.

    Raises:
        ExportCheckError: the file failed the check; nothing was written.
        OSError: the disk is full (ENOSPC), naming `path`; nothing written.
    """
    job = formats.ExportJob(plan, options, formats.metadata(fmt, plan, options), path)
    _write_checked(fmt, job, overwrite, verify)


def _write_checked(fmt, job, overwrite, verify=True):
    """Writes `job` at a staging path, checks it, renames it into place
    (see `write`)."""
    from keras_resnet.model_classes import recursion_headroom

    def write(target):
        try:
            with recursion_headroom():
                fmt.write(job, target)
        except Exception as error:
            _raise_if_disk_full(error, target, job.path, fmt)
            raise
        if verify:
            verify_file(fmt, job, target)

    # Keras's LiteRT exporter wants a name ending with .tflite.
    atomic.write_atomically(job.path, overwrite, write, suffix=fmt.suffix or "")


def _raise_if_disk_full(error, target, path, fmt):
    """An OSError (ENOSPC) naming `path` if `error` came from a full disk.

    The writers report a full disk each in their own words: OSError
    ENOSPC (tf2onnx, the TFLite converter), TensorFlow's
    ResourceExhaustedError (the SavedModel), "basic_ios::clear: iostream
    error" (OpenVINO). So a failed write is called a full disk when it says
    so, or when the disk holding the half-written export has less than
    `DISK_FULL_BYTES` free.
    """
    free = _free_bytes(pathlib.Path(target).parent)
    said = getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error)
    if said or (free is not None and free < DISK_FULL_BYTES):
        raise OSError(
            errno.ENOSPC,
            f"No space left on device: the {fmt.title} export failed with {free} bytes free "
            f"there ({type(error).__name__}: {str(error)[:200]}). Nothing was written; free "
            "some space or export elsewhere",
            str(path),
        ) from error


def _free_bytes(directory):
    try:
        stats = os.statvfs(directory)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize
