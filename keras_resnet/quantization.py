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


def check_options(plan, quantization=None, calibration_images=None, io_dtype="float32"):
    """format="litert"'s options checked; int8's calibration images read.

    Returns:
        {"quantization", "calibration_images" (a list of float32 (1, H, W,
        3) batches, or None), "io_dtype"}, for `converter_options`.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"`quantization` must be one of {QUANTIZATIONS}. Received quantization={quantization!r}."
        )
    if quantization == "int8" and calibration_images is None:
        raise ValueError(
            "quantization='int8' needs calibration images, to measure the range of "
            "every activation: pass calibration_images=, an array (N, H, W, 3) of a "
            "few hundred training images (pixels as the model is served, e.g. raw "
            "0..255 for zoo models) or an iterable of images or batches. From a zoo "
            "run, python -m zoo.export --tflite=PATH --quantization=int8 draws them "
            "from the run's training split."
        )
    if quantization != "int8" and calibration_images is not None:
        raise ValueError(
            "`calibration_images` is only used by quantization='int8'. Received "
            f"calibration_images with quantization={quantization!r}."
        )
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"`io_dtype` must be one of {IO_DTYPES}. Received io_dtype={io_dtype!r}.")
    if io_dtype != "float32" and quantization != "int8":
        raise ValueError(
            "io_dtype='uint8' needs quantization='int8' (only a full-integer file "
            f"has integer inputs). Received quantization={quantization!r}."
        )
    calibration = None
    if quantization == "int8":
        # A uint8 input is the raw pixel, whatever the model begins with.
        calibration = calibration_batches(calibration_images, plan, plan.raw_pixels or io_dtype == "uint8")
    return {"quantization": quantization, "calibration_images": calibration, "io_dtype": io_dtype}


def calibration_batches(images, plan, raw_pixels=False):
    """The calibration images as a list of float32 (1, H, W, 3) arrays, checked.

    With `raw_pixels` (the file takes raw 0..255 pixels) they must be such
    pixels: values below 0 (already normalised) or above 255 (16-bit), or
    all within 0..1 (scaled to 0..1), would set every activation's range
    from images the file never sees, and are refused.
    """
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
        if not np.isfinite(array).all():
            raise ValueError(
                "`calibration_images` holds NaN or infinite pixels, which would make the "
                f"quantization ranges meaningless (an array of shape {array.shape})."
            )
        if raw_pixels:
            _check_raw_pixels(array)
        array = array.astype(np.float32)
        batches += [array[i : i + 1] for i in range(len(array))]
    if not batches:
        raise ValueError("`calibration_images` is empty: pass a few hundred training images.")
    if raw_pixels and max(float(b.max()) for b in batches) <= 1.0:
        raise ValueError(
            "The exported file takes raw RGB pixels 0..255, but every `calibration_images` "
            f"value lies within 0..{max(float(b.max()) for b in batches):g}: images scaled to "
            "0..1? Pass the raw 0..255 pixels (e.g. images * 255), as the file will be served; "
            "the preprocessing inside the model scales them itself."
        )
    return batches


def _check_raw_pixels(array):
    from keras_resnet.preprocessing import check_pixels

    check_pixels(
        array, "Calibrating a file that takes raw pixels (`calibration_images`)",
        "the preprocessing inside the model normalises them itself, and calibrating on other "
        "values would set every quantization range from images the file never sees (for a "
        "file that takes other values, export with raw_pixels=False)",
    )


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


def add_metadata(path, name, data):
    """Adds a metadata entry `name` holding the bytes `data` to the .tflite
    file at `path` (where runtimes read `min_runtime_version` too)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    flatbuffer_utils.write_model(model, str(path))
