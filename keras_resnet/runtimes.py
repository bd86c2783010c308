"""Runs an exported file in its own runtime: the check that an export works.

    predict = keras_resnet.runtimes.load("resnet20.onnx")
    probabilities = predict(images)          # float32 (batch, classes)

`load(path)` picks the runtime from what `keras_resnet.export` wrote:

    a `.onnx` file                ONNX Runtime, CPU execution provider
    a `.tflite` file              the ai-edge-litert interpreter (LiteRT)
    a directory with model.xml    OpenVINO Runtime on the CPU, float32
                                  (`precision="bf16"` for its CPU default
                                  on processors with bf16 units; see below)
    a SavedModel directory        TensorFlow, the `serve` endpoint

Images go in as float32 (or uint8) pixels (batch, H, W, 3), as the model is
served; an int8 LiteRT file with uint8 inputs is fed the pixels as uint8,
and its uint8 outputs come back as float32 probabilities (q / 256). Each
runner returns the file's one output, probabilities or features.

OpenVINO's CPU plugin computes in bfloat16 by default on processors with
bf16 units (AVX-512 BF16 or AMX), which changes probabilities by up to
~1e-2; `load` asks for float32 unless told `precision="bf16"`.

All but the SavedModel need the `deploy` extra.
"""

import os
import pathlib

import numpy as np

PRECISIONS = ("f32", "bf16")


def load(path, *, threads=None, precision="f32"):
    """A callable that runs `images` through the exported file at `path`.

    Args:
        path: what `keras_resnet.export` wrote (any format).
        threads: CPU threads for the runtime; default: every core this
            process may use (each runtime's default differs, and LiteRT's is
            one thread).
        precision: OpenVINO only: "f32" (default) or "bf16".

    Returns:
        A function `images -> np.ndarray` (float32), with attributes
        `runtime` (its name) and `input_dtype`.

    Raises:
        FileNotFoundError: nothing exported at `path`.
        ValueError: a path that is no export, or a bad argument.
        ImportError: the runtime is not installed (naming the extra).
    """
    path = pathlib.Path(path).expanduser()
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}. Received precision={precision!r}.")
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not path.exists():
        raise FileNotFoundError(f"Nothing exported at {str(path)!r}.")
    if path.suffix == ".onnx":
        return _onnx(path, threads)
    if path.suffix == ".tflite":
        return _litert(path, threads)
    if (path / "model.xml").is_file():
        return _openvino(path / "model.xml", threads, precision)
    if (path / "saved_model.pb").is_file():
        return _saved_model(path)
    raise ValueError(
        f"{str(path)!r} is not an export of keras_resnet.export: expected a .onnx or "
        ".tflite file, or a directory holding model.xml (OpenVINO) or saved_model.pb."
    )


def _require(module, runtime):
    from keras_resnet.export_formats import require

    return require(module, f"Running {runtime} files")


def _named(fn, runtime, input_dtype=np.float32):
    fn.runtime = runtime
    fn.input_dtype = np.dtype(input_dtype)
    return fn


def _onnx(path, threads):
    ort = _require("onnxruntime", "ONNX")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(images):
        return session.run(None, {name: np.asarray(images, np.float32)})[0]

    return _named(predict, "onnxruntime")


def _litert(path, threads):
    litert = _require("ai_edge_litert.interpreter", "LiteRT")
    interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)
    runner = interpreter.get_signature_runner()
    (input_name,) = interpreter.get_signature_list()["serving_default"]["inputs"]
    input_dtype = interpreter.get_input_details()[0]["dtype"]
    output = interpreter.get_output_details()[0]
    scale, zero_point = output["quantization"]

    def predict(images):
        images = np.asarray(images)
        if input_dtype == np.uint8:
            # The file's input scale is 1 and zero point 0 (export checks
            # it): the uint8 value is the pixel.
            images = np.clip(np.round(images.astype(np.float32)), 0, 255).astype(np.uint8)
        else:
            images = images.astype(input_dtype)
        (result,) = runner(**{input_name: images}).values()
        if output["dtype"] != np.float32:
            result = (result.astype(np.float32) - zero_point) * scale
        return result

    return _named(predict, "ai-edge-litert", input_dtype)


def _openvino(xml, threads, precision):
    ov = _require("openvino", "OpenVINO")
    compiled = ov.Core().compile_model(
        str(xml), "CPU", {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads}
    )
    request = compiled.create_infer_request()

    def predict(images):
        return request.infer({0: np.asarray(images, np.float32)})[compiled.output(0)].copy()

    return _named(predict, f"openvino ({precision})")


def _saved_model(path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))

    def predict(images):
        outputs = loaded.serve(tf.constant(np.asarray(images, np.float32)))
        key = "probabilities" if "probabilities" in outputs else "features"
        return outputs[key].numpy()

    predict.loaded = loaded  # Keeps the variables alive.
    return _named(predict, "tensorflow (SavedModel)")
