"""ONNX, LiteRT (TFLite) and OpenVINO exports of the serving graph.

`keras_resnet.export(model, path, format=...)` writes, besides the
SavedModel (`keras_resnet.serving`):

    format="onnx"      one `.onnx` file. Input `images`, float32
                       (batch, H, W, 3), the batch dimension dynamic and
                       named "batch"; output `probabilities`, float32
                       (batch, classes). ONNX opset 15 (tf2onnx's default).
    format="litert"    one `.tflite` file, signature "serving_default":
                       input `images`, output `probabilities`.
                       quantization=None: float32.
                       quantization="dynamic": int8 weights, float
                       activations, float32 in and out.
                       quantization="int8": full-integer (int8 weights and
                       activations, calibrated on `calibration_images`).
                       io_dtype="float32" (default) keeps float32 in and out
                       (the file quantizes and dequantizes at its ends);
                       io_dtype="uint8" takes uint8 pixels, exactly the raw
                       0..255 values (input scale 1, zero point 0, checked),
                       and returns uint8 probabilities in 1/256 steps
                       (p = q / 256).
    format="openvino"  a directory holding `model.xml` and `model.bin`
                       (OpenVINO IR, float32 weights); input `images`,
                       output `probabilities`.

Every format runs the graph of the SavedModel's `serve` endpoint
(`serving.serve_outputs`): the preprocessing baked in, the model, a softmax
on logits, and an image with a NaN or infinite pixel gets NaN outputs. A
model without a classifier (`include_top=False`) outputs `features`
instead of `probabilities`. Full-integer int8 has no NaN: there a NaN pixel
is quantized like any other value and the output is a number.

The files are written by Keras's own exporters (`keras.Model.export`, which
call tf2onnx, the TFLite converter and OpenVINO's `convert_model`) on a
small Keras model that wraps the serving graph. What they leave to us:
the graph itself (Keras exports `call()` alone), atomic writes (a temporary
path renamed into place, `serving._write_atomically`), the ONNX batch
dimension's name, LiteRT restricted to its builtin ops (so the file runs
in the plain `ai-edge-litert` interpreter, without TensorFlow's Flex ops),
the int8 calibration checks, and errors that name what was received.

ONNX and OpenVINO need the `deploy` extra: pip install "keras-resnet[deploy]".
`keras_resnet.runtimes.load(path)` runs each file in its own runtime.
"""

import os
import pathlib
import warnings

import keras
import numpy as np

from keras_resnet import serving
from keras_resnet.models import recursion_headroom

SAVED_MODEL = "tf_saved_model"
ONNX = "onnx"
LITERT = "litert"
OPENVINO = "openvino"
FORMATS = (SAVED_MODEL, ONNX, LITERT, OPENVINO)
IO_DTYPES = ("float32", "uint8")
OPENVINO_XML = "model.xml"
DEPLOY_EXTRA = 'pip install "keras-resnet[deploy]" (from a clone: pip install ".[deploy]")'


def export(
    model,
    path,
    *,
    format,
    preprocessing=None,
    fold_batchnorm=False,
    overwrite=False,
    quantization=None,
    calibration_images=None,
    io_dtype="float32",
):
    """Writes `model` as ONNX, LiteRT or OpenVINO; see the module docstring.

    Called by `keras_resnet.export(model, path, format=...)`, whose
    docstring describes the arguments.

    Returns:
        The path written, as a string.
    """
    tf = serving._tensorflow()
    if format not in FORMATS[1:]:
        raise ValueError(f"`format` must be one of {FORMATS}. Received format={format!r}.")
    _check_quantization(format, quantization, calibration_images, io_dtype)
    suffix = {ONNX: ".onnx", LITERT: ".tflite"}.get(format)
    path = _check_format_path(path, format, suffix)
    path = serving._check_path(path, overwrite)
    if format == ONNX:
        require("tf2onnx", "format='onnx'")
        require("onnx", "format='onnx'")
    elif format == OPENVINO:
        require("openvino", "format='openvino'")
    plan = serving._Plan(model, None, preprocessing, None, None, fold_batchnorm)
    calibration = None
    if quantization == "int8":
        calibration = _calibration_batches(calibration_images, plan)
    spec = tf.TensorSpec((None, plan.height, plan.width, 3), tf.float32, name="images")

    def write(target):
        with recursion_headroom():
            wrapper = _ServingModel(plan, keep_nan=quantization != "int8")
            if format == ONNX:
                wrapper.freeze(tf, spec)
                with warnings.catch_warnings():
                    # Keras's numpy-2 patch of tf2onnx touches np.object.
                    warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
                    wrapper.export(target, format=ONNX, input_signature=[spec], verbose=False)
                _name_onnx_dimensions(target)
            elif format == OPENVINO:
                pathlib.Path(target).mkdir()
                xml = str(pathlib.Path(target) / OPENVINO_XML)
                wrapper.export(xml, format=OPENVINO, input_signature=[spec], verbose=False)
            else:
                # Keras's LiteRT exporter wants a name ending with .tflite.
                staged = target + ".tflite"
                wrapper.export(
                    staged, format=LITERT, input_signature=[spec], verbose=False,
                    **_converter_options(tf, quantization, calibration, io_dtype),
                )
                if io_dtype == "uint8":
                    _check_uint8_input(staged, calibration)
                os.replace(staged, target)

    serving._write_atomically(path, overwrite, write)
    return str(path)


class _ServingModel(keras.Model):
    """`serving.serve_outputs` as a Keras model, for Keras's exporters."""

    def __init__(self, plan, keep_nan=True):
        super().__init__(name=f"{plan.model.name}_serving")
        self.plan = plan
        self.keep_nan = keep_nan
        self.frozen = None
        # Attributes, so that the exporters find their variables.
        self.net = plan.model
        if isinstance(plan.preprocessing, keras.layers.Layer):
            if not plan.preprocessing.built:
                plan.preprocessing.build((None, plan.height, plan.width, 3))
            self.preprocessing = plan.preprocessing
        # Its layers are built; an eager call to build it would cost a
        # forward pass of the whole model.
        self.built = True

    def call(self, images):
        if self.frozen is not None:
            # A frozen function returns its outputs as a list: name them again.
            (output,) = self.frozen(images)
            return {"features" if self.plan.head == "features" else "probabilities": output}
        import tensorflow as tf

        return serving.serve_outputs(tf, self.plan, images, keep_nan=self.keep_nan)

    def freeze(self, tf, spec):
        """Serves a copy of the graph with every variable and captured tensor
        folded into constants, for the ONNX exporter.

        Keras's ONNX exporter hands tf2onnx the traced function, and tf2onnx
        makes every non-variable tensor that function captures a graph input
        of the .onnx file: a `keras.layers.Normalization(mean=..., variance=...)`
        (the zoo's per-pixel mean) becomes two extra required inputs, the
        mean and the variance, and the file cannot be run on images alone.
        Frozen, the graph captures nothing, so `images` is its one input.
        """
        from tensorflow.python.framework import convert_to_constants

        self.frozen = None
        traced = tf.function(self.call, input_signature=[spec], autograph=False)
        self.frozen = convert_to_constants.convert_variables_to_constants_v2(
            traced.get_concrete_function()
        )


def _check_quantization(format, quantization, calibration_images, io_dtype):
    if format != LITERT and quantization is not None:
        raise ValueError(
            f"`quantization` applies to format='litert' only. Received "
            f"quantization={quantization!r} with format={format!r}."
        )
    if quantization not in serving.QUANTIZATIONS:
        raise ValueError(
            f"`quantization` must be one of {serving.QUANTIZATIONS}. "
            f"Received quantization={quantization!r}."
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


def _check_format_path(path, format, suffix):
    if not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
        raise ValueError(f"`path` must be a str or os.PathLike. Received path={path!r}.")
    path = pathlib.Path(path).expanduser()
    if suffix is not None and path.suffix != suffix:
        raise ValueError(
            f"format={format!r} writes one {suffix} file: `path` must end with "
            f"'{suffix}'. Received path={str(path)!r}."
        )
    if format == OPENVINO and path.suffix in (".xml", ".bin"):
        raise ValueError(
            f"format='openvino' writes a directory holding {OPENVINO_XML} and "
            f"model.bin: pass the directory. Received path={str(path)!r}."
        )
    return path


def require(module, needed_by):
    """Imports `module`, or raises an ImportError that names the deploy extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{needed_by} needs the {module} package, which is not installed "
            f"({error}). Install the deploy extra: {DEPLOY_EXTRA}."
        ) from error


def _calibration_batches(images, plan):
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


def _converter_options(tf, quantization, calibration, io_dtype):
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


def _check_uint8_input(path, calibration):
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


def _name_onnx_dimensions(path):
    """Names the dynamic dimensions tf2onnx calls unk__N: batch, height, width."""
    import onnx

    proto = onnx.load(path)
    for values, names in ((proto.graph.input, ("batch", "height", "width")), (proto.graph.output, ("batch",))):
        for value in values:
            for dim, name in zip(value.type.tensor_type.shape.dim, names):
                if not dim.HasField("dim_value"):
                    dim.dim_param = name
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
