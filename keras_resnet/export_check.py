"""The check every export passes before it is declared written.

`keras_resnet.export` writes each file at a staging path and calls `verify`:
the file is loaded in its own runtime (`keras_resnet.runtimes.load`, with
its input checks) and run on a few images, and its outputs are compared
with Keras's: the float32 computation that was exported
(`serving.serve_outputs`), run eagerly by TensorFlow. A file that fails is
not renamed into place, and the error says what disagreed and by how much.

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
  |feature| for features, and half the spread of the logits (|dp| <=
  |dz| / 2 through a softmax) for probabilities, the spread read from
  Keras's log-probabilities. ResNet-20 on trained-looking outputs: about
  2e-3; the runtimes agree to about 1e-5 (README), so a real fault (a
  16-bit computation, a wrong weight or preprocessing) stands out.
- **Quantized files** (LiteRT "dynamic" and "int8"). Each quantized
  tensor is rounded to half a step of its 8-bit range, 1/510 of it; over
  D layers the logits move by up to D / 510 of their spread, and
  probabilities by half that. An image whose Keras top-1 leads the runner-up
  by more than twice that bound must keep its top-1 (for a deep net the
  bound exceeds 1 and no image has to: the check is then that the file
  loads, runs, and returns probabilities that sum to 1 within the output's
  1/256 steps).

Cost: one load in the runtime and one forward pass of a few images in the
runtime and in Keras; for ResNet-20 about a second, dominated by the
runtime's load (OpenVINO compiles the model). `export(..., verify=False)`
skips it.
"""

import math

import numpy as np

UNIT_ROUNDOFF = 2.0 ** -24  # float32
LAMBDA = 4.0
RANDOM_IMAGES = 2
INT8_IMAGES = 4
# The images' size when the model takes any size and the export names none.
ANY_SIZE = 64
TINY = 1e-30  # probabilities below this count as this, for the logits' spread


class ExportCheckError(RuntimeError):
    """An exported file failed the check against Keras; it was not written."""


def verify(fmt, job, target):
    """Checks the export of `job` written at `target` in its runtime.

    Args:
        fmt: the `export_formats.Format`.
        job: the `export_formats.ExportJob`.
        target: where the file is (a staging path).

    Raises:
        ExportCheckError: the file does not load or run in its runtime, or
            disagrees with Keras; naming what and by how much.
        ImportError: its runtime is not installed.
    """
    from keras_resnet import runtimes

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
    images, described = check_images(job, nan=predict.input_dtype.kind == "f")
    expected = keras_outputs(job.plan, images)
    try:
        got = np.asarray(predict(images))
    except Exception as error:
        raise ExportCheckError(
            f"{where} does not run in {predict.runtime} on {described} "
            f"({type(error).__name__}: {error}). {unchecked}"
        ) from error
    problem = disagreement(job, images, expected, got)
    if problem:
        raise ExportCheckError(
            f"{where} disagrees with Keras on {described}: {problem}. {unchecked}")


def check_images(job, nan=True):
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
    if job.metadata["raw_pixels"]:
        images, kind = rng.integers(0, 256, shape).astype(np.float32), "random pixels 0..255"
    else:
        images, kind = rng.standard_normal(shape).astype(np.float32), "random normal values"
    if job.metadata["nan_out"] and nan:
        with_nan = images[:1].copy()
        with_nan[0, height // 2, width // 2, 1] = np.nan
        images = np.concatenate([images, with_nan])
        kind += ", the last with a NaN pixel"
    return images, f"{len(images)} images ({kind})"


def keras_outputs(plan, images):
    """The exported graph's outputs computed by Keras (TensorFlow, eager)."""
    import tensorflow as tf

    from keras_resnet import serving
    from keras_resnet.model_classes import recursion_headroom

    with recursion_headroom():
        (output,) = serving.serve_outputs(tf, plan, tf.constant(images)).values()
    return output.numpy()


def disagreement(job, images, expected, got):
    """What is wrong with the file's outputs `got`, in words; None if nothing."""
    if got.shape != expected.shape:
        return f"it returns an array of shape {got.shape}, Keras {expected.shape}"
    nan_images = ~np.isfinite(images).reshape(len(images), -1).all(axis=1)
    for i in np.flatnonzero(nan_images):
        if not np.isnan(got[i]).all():
            return f"image {i} has a NaN pixel and gets numbers, not NaN"
    expected, got = expected[~nan_images], got[~nan_images]
    if not np.isfinite(got).all():
        return "it returns NaN or infinite values for images with finite pixels"
    layers, fan_in = layers_with_weights(job.plan.model)
    if job.options.get("quantization") is not None:
        return _quantized_disagreement(job.plan, expected, got, layers)
    tolerance = 2 * LAMBDA * layers * math.sqrt(fan_in) * UNIT_ROUNDOFF * _scale(job.plan, expected)
    difference = np.abs(got - expected).reshape(len(got), -1).max(axis=1)
    worst = int(np.argmax(difference - tolerance))
    if difference[worst] > tolerance[worst]:
        return (
            f"max |out - out_keras| = {difference[worst]:.3g} on image {worst}, above "
            f"{tolerance[worst]:.3g}, the most that float32 rounding explains ({layers} layers "
            f"with weights, up to {fan_in} products per output)"
        )
    return None


def layers_with_weights(model):
    """(D, K): how many layers have a kernel, and the most products one output of
    them sums (kh * kw * input channels for a conv, inputs for a dense layer)."""
    kernels = [layer.kernel for layer in model._flatten_layers(include_self=False, recursive=True)
               if getattr(layer, "kernel", None) is not None]
    if not kernels:
        return 1, 1
    return len(kernels), max(math.prod(kernel.shape[:-1]) for kernel in kernels)


def _spread(probabilities):
    """Per image, the spread of the logits: max log p - min log p."""
    logs = np.log(np.clip(probabilities, TINY, None)).reshape(len(probabilities), -1)
    return logs.max(axis=1) - logs.min(axis=1)


def _scale(plan, expected):
    if plan.head == "features":
        return np.full(len(expected), max(float(np.abs(expected).max()), TINY))
    return np.maximum(1.0, _spread(expected)) / 2


def _quantized_disagreement(plan, expected, got, layers):
    if plan.head == "features":
        bound = layers / 510 * _scale(plan, expected)
        difference = np.abs(got - expected).reshape(len(got), -1).max(axis=1)
        if (difference > bound).any():
            worst = int(np.argmax(difference - bound))
            return (f"max |out - out_keras| = {difference[worst]:.3g} on image {worst}, above "
                    f"{bound[worst]:.3g}, what 8-bit rounding over {layers} layers explains")
        return None
    sums = got.sum(axis=1)
    if (np.abs(sums - 1) > got.shape[1] / 256).any():
        worst = int(np.argmax(np.abs(sums - 1)))
        return f"its probabilities for image {worst} sum to {sums[worst]:.4g}, not 1"
    bound = layers * np.maximum(1.0, _spread(expected)) / 1020
    top2 = np.sort(expected, axis=1)[:, -2:]
    confident = top2[:, 1] - top2[:, 0] > 2 * bound
    flipped = confident & (got.argmax(axis=1) != expected.argmax(axis=1))
    if flipped.any():
        i = int(np.flatnonzero(flipped)[0])
        return (
            f"image {i} gets class {int(got[i].argmax())} ({got[i].max():.3f}), Keras class "
            f"{int(expected[i].argmax())} ({expected[i].max():.3f}), a lead of "
            f"{top2[i, 1] - top2[i, 0]:.3f} that 8-bit rounding over {layers} layers "
            f"(at most {bound[i]:.3f} per probability) cannot undo"
        )
    return None
