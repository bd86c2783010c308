"""LiteRT quantization: the TFLite converter's options, int8 calibration checked.

quantization=None is float32; "dynamic" quantizes the weights to int8 and
keeps float activations; "int8" is full-integer post-training
quantization: int8 weights and activations, each activation's range
measured on calibration images (a representative dataset). Its inputs
and outputs stay float32, or with io_dtype="uint8" become uint8: the raw
pixel in (checked: input scale 1, zero point 0) and q = 256 p out.

The options go to Keras's LiteRT exporter, which sets them on its
`tf.lite.TFLiteConverter`; every file is limited to LiteRT's builtin ops
(Keras also allows TensorFlow's Flex ops, which the ai-edge-litert
interpreter cannot run).
"""

import numpy as np

QUANTIZATIONS = (None, "dynamic", "int8")
IO_DTYPES = ("float32", "uint8")


def calibration_batches(images, plan):
    """The calibration images as a list of float32 (1, H, W, 3) arrays, checked."""
    want = (plan.height, plan.width, 3)
    if isinstance(images, (str, bytes)) or not (
        hasattr(images, "__iter__") or hasattr(images, "__array__")
    ):
        raise ValueError(
            "`calibration_images` must be an array (N, H, W, 3) or an iterable of "
            f"images (H, W, 3) or batches. Received {type(images).__name__}: {images!r:.80}."
        )
    parts = [images] if hasattr(images, "__array__") else images
    batches = []
    for part in parts:
        array = np.asarray(part)
        if array.ndim == 3:
            array = array[None]
        fixed = all(w is None or g == w for g, w in zip(array.shape[1:], want))
        if array.ndim != 4 or not fixed or array.shape[-1] != 3:
            raise ValueError(
                f"`calibration_images` must be images of shape {_shape(want)} (channels "
                f"last, as the exported file takes them), as (N, H, W, 3) arrays or single "
                f"(H, W, 3) images. Received an array of shape {array.shape}."
            )
        if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
            raise ValueError(
                "`calibration_images` must be uint8 or float pixels. Received dtype "
                f"{array.dtype} (shape {array.shape})."
            )
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise ValueError(
                "`calibration_images` holds NaN or infinite pixels, which would make the "
                f"quantization ranges meaningless (an array of shape {array.shape})."
            )
        batches += [array[i : i + 1] for i in range(len(array))]
    if not batches:
        raise ValueError("`calibration_images` is empty: pass a few hundred training images.")
    return batches


def _shape(want):
    return "(" + ", ".join("H" if d is None else str(d) for d in want[:2]) + ", 3)"


def converter_options(tf, quantization, calibration, io_dtype):
    """TFLiteConverter attributes for Keras's LiteRT exporter."""
    if quantization is None:
        # Builtin ops only: Keras also allows TensorFlow's Flex ops, which
        # the ai-edge-litert interpreter cannot run.
        return {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantization == "dynamic":
        options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
        return options
    options["representative_dataset"] = lambda: ([batch] for batch in calibration)
    options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    if io_dtype == "uint8":
        options["inference_input_type"] = tf.uint8
        options["inference_output_type"] = tf.uint8
    return options


def check_uint8_input(path, calibration):
    """A uint8 input must be the raw pixel value: scale 1, zero point 0.

    The converter sets the input's range from the calibration images; only
    images that span 0..255 give exactly that. Anything else would make
    uint8 callers feed wrong values silently, so it is refused.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    graph = flatbuffer_utils.read_model(str(path)).subgraphs[0]
    quantization = graph.tensors[graph.inputs[0]].quantization
    scale, zero_point = float(quantization.scale[0]), int(quantization.zeroPoint[0])
    if (scale, zero_point) != (1.0, 0):
        low = min(float(b.min()) for b in calibration)
        high = max(float(b.max()) for b in calibration)
        raise ValueError(
            f"io_dtype='uint8' needs calibration images whose pixels span 0..255, so that "
            f"the uint8 input is the raw pixel value; these span {low:g}..{high:g}, which "
            f"gives input scale {scale:g} and zero point {zero_point}. Calibrate on more "
            "(or brighter and darker) images, or use io_dtype='float32'. Nothing was written."
        )
