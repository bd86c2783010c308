"""ONNX, LiteRT (TFLite) and OpenVINO exports of the serving graph.

`keras_resnet.export(model, path, format=...)` (the `export` here) writes
the SavedModel of `keras_resnet.serving` by default, and:

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
path renamed into place, `keras_resnet.atomic`), the ONNX batch
dimension's name, LiteRT restricted to its builtin ops (so the file runs
in the plain `ai-edge-litert` interpreter, without TensorFlow's Flex ops),
the int8 calibration checks, and errors that name what was received.

ONNX and OpenVINO need the `deploy` extra: pip install "keras-resnet-zoo[deploy]".
`keras_resnet.runtimes.load(path)` runs each file in its own runtime.
"""

import pathlib
import warnings

import keras

from keras_resnet import atomic
from keras_resnet import quantization as quantization_lib
from keras_resnet import serving
from keras_resnet.model_classes import recursion_headroom

SAVED_MODEL = "tf_saved_model"
ONNX = "onnx"
LITERT = "litert"
OPENVINO = "openvino"
FORMATS = (SAVED_MODEL, ONNX, LITERT, OPENVINO)
OPENVINO_XML = "model.xml"
DEPLOY_EXTRA = 'pip install "keras-resnet-zoo[deploy]" (from a clone: pip install ".[deploy]")'


def export(
    model,
    path,
    *,
    format=SAVED_MODEL,
    class_names=None,
    preprocessing=None,
    top_k=None,
    image_size=None,
    fold_batchnorm=False,
    endpoints=serving.ENDPOINTS,
    overwrite=False,
    verbose=False,
    quantization=None,
    calibration_images=None,
    io_dtype="float32",
):
    """Writes `model` for serving: a SavedModel, ONNX, LiteRT or OpenVINO.

    `keras_resnet.export`. format="tf_saved_model" (the default) is
    `keras_resnet.serving.export`: a SavedModel with three signatures,
    top-k and class names. The other formats are that graph's `serve`
    endpoint alone (see the module docstring for their inputs and outputs);
    run any of them with `keras_resnet.runtimes.load(path)`.

    Args:
        model: a `keras.Model` with one image input, e.g. from
            `keras_resnet.ResNet` or a zoo run's `model.keras`.
        path: the SavedModel directory; format="onnx": a `.onnx` file;
            "litert": a `.tflite` file; "openvino": a directory for
            model.xml and model.bin. Written to a temporary path next to it
            and renamed into place, so an interrupted export leaves no
            half-written file.
        format: "tf_saved_model", "onnx", "litert" or "openvino" (the names
            of `keras.Model.export`). All need the TensorFlow backend; ONNX
            and OpenVINO need the `deploy` extra.
        class_names, top_k, image_size, endpoints, verbose: SavedModel only,
            as in `keras_resnet.serving.export`.
        preprocessing: what turns the served images into the model's input,
            baked in: None, or a callable on float32 (batch, H, W, 3) images
            such as `keras.layers.Rescaling(1 / 255)`.
        fold_batchnorm: fold every BN into its conv first.
        overwrite: replace an existing `path`.
        quantization: format="litert" only: None (float32), "dynamic"
            (int8 weights, float activations) or "int8" (full-integer).
        calibration_images: quantization="int8" only, and required there: an
            array (N, H, W, 3) or an iterable of images or batches, uint8 or
            float, the pixels as the model is served; a few hundred training
            images (never test images).
        io_dtype: quantization="int8" only: "float32" (float in and out) or
            "uint8" (raw 0..255 pixels in, probabilities q / 256 out).

    Returns:
        The path written, as a string.

    Raises:
        FileExistsError: `path` exists (for a directory: is not empty) and
            `overwrite` is False. The existing export is left intact.
        ValueError: for a bad argument, naming the value received.
        ImportError: a package of the `deploy` extra is missing.
    """
    if format == SAVED_MODEL:
        if quantization is not None or calibration_images is not None or io_dtype != "float32":
            raise ValueError(
                "`quantization`, `calibration_images` and `io_dtype` apply to "
                "format='litert' only. Received them with format='tf_saved_model'."
            )
        return serving.export(
            model, path, class_names=class_names, preprocessing=preprocessing, top_k=top_k,
            image_size=image_size, fold_batchnorm=fold_batchnorm, endpoints=endpoints,
            overwrite=overwrite, verbose=verbose,
        )
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received format={format!r}.")
    saved_model_only = {
        "class_names": class_names is not None, "top_k": top_k is not None,
        "image_size": image_size is not None, "endpoints": endpoints != serving.ENDPOINTS,
        "verbose": verbose is not False,
    }
    given = [f"`{name}`" for name, set_ in saved_model_only.items() if set_]
    if given:
        raise ValueError(
            f"{', '.join(given)} applies to the SavedModel (format='tf_saved_model') only; "
            f"format={format!r} returns probabilities (or features) alone."
        )
    return _export_file(model, path, format, preprocessing, fold_batchnorm, overwrite,
                        quantization, calibration_images, io_dtype)


def export_tflite(
    model,
    path,
    *,
    quantization=None,
    preprocessing=None,
    fold_batchnorm=False,
    overwrite=False,
    calibration_images=None,
    io_dtype="float32",
):
    """`export(model, path, format="litert", ...)`: a LiteRT (TFLite) file.

    One signature, "serving_default": input float32 `images` (batch, H, W,
    3) (uint8 for int8 with io_dtype="uint8"), output `probabilities` (or
    `features` for a model without a classifier). Run it with
    `ai_edge_litert.interpreter.Interpreter` or `keras_resnet.runtimes.load`.

    Args:
        model: a `keras.Model` with one image input.
        path: the `.tflite` file to write.
        quantization, preprocessing, fold_batchnorm, overwrite: as in `export`.
        calibration_images, io_dtype: as in `export` (quantization="int8").

    Returns:
        The path written, as a string.

    Raises:
        FileExistsError, ValueError, ImportError: as `export` raises them.
    """
    return _export_file(model, path, LITERT, preprocessing, fold_batchnorm, overwrite,
                        quantization, calibration_images, io_dtype)


def _export_file(model, path, format, preprocessing, fold_batchnorm, overwrite,
                 quantization, calibration_images, io_dtype):
    """ONNX, LiteRT or OpenVINO, arguments as in `export`."""
    tf = serving._tensorflow()
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
        calibration = quantization_lib.calibration_batches(calibration_images, plan)
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
                wrapper.export(
                    target, format=LITERT, input_signature=[spec], verbose=False,
                    **quantization_lib.converter_options(tf, quantization, calibration, io_dtype),
                )
                if io_dtype == "uint8":
                    quantization_lib.check_uint8_input(target, calibration)

    # Keras's LiteRT exporter wants a name ending with .tflite.
    atomic.write_atomically(path, overwrite, write, suffix=".tflite" if format == LITERT else "")
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
    if quantization not in quantization_lib.QUANTIZATIONS:
        raise ValueError(
            f"`quantization` must be one of {quantization_lib.QUANTIZATIONS}. "
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
    if io_dtype not in quantization_lib.IO_DTYPES:
        raise ValueError(
            f"`io_dtype` must be one of {quantization_lib.IO_DTYPES}. Received io_dtype={io_dtype!r}."
        )
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
