"""`keras_resnet.export(model, path, format=...)`: every export format.

`export` (the `keras_resnet.export` of the package) writes:

    format="tf_saved_model"  (the default) a SavedModel directory with the
                       signatures of `keras_resnet.serving`: float32 and
                       uint8 images, encoded image bytes; probabilities and
                       top-k (class names with `class_names`).
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
would be quantized like any other value, so `keras_resnet.runtimes.load`
refuses such images. A mixed-precision model (`mixed_bfloat16`,
`mixed_float16`) is exported as its float32 computation (its variables are
float32 already), which every runtime runs.

Every file is checked before it is declared written: loaded once in its
own runtime (`keras_resnet.runtimes.load`) and compared with Keras on a few
images (`keras_resnet.export_check`); a file that fails is not left behind.
Each file also records what it takes (raw 0..255 pixels or not, NaN out or
not) in its metadata, which `runtimes.load` reads to check images before
the runtime sees them.

The formats, and everything that goes with each (file suffix, writer,
runtime loader, packages, zoo.export flag, benchmark rows), are one table,
`keras_resnet.formats.TABLE`: adding a format is one entry there plus its
two functions.

The files are written by Keras's own exporters (`keras.Model.export`, which
call tf2onnx, the TFLite converter and OpenVINO's `convert_model`) on a
small Keras model that wraps the serving graph. What they leave to us:
the graph itself (Keras exports `call()` alone), atomic writes (a temporary
path renamed into place, `keras_resnet.atomic`), the ONNX batch
dimension's name, LiteRT restricted to its builtin ops (so the file runs
in the plain `ai-edge-litert` interpreter, without TensorFlow's Flex ops),
the int8 calibration checks, and errors that name what was received.

ONNX, LiteRT and OpenVINO need the `deploy` extra: pip install "keras-resnet-zoo[deploy]".
`keras_resnet.runtimes.load(path)` runs each file in its own runtime.
"""

from keras_resnet import formats

__all__ = ["export", "export_tflite"]


def export(model, path, *, format=formats.SAVED_MODEL, class_names=None, preprocessing=None,
           top_k=None, image_size=None, fold_batchnorm=False, endpoints=None, overwrite=False, verbose=False,
           quantization=None, calibration_images=None, io_dtype="float32", raw_pixels=None,
           verify=True):
    """Writes `model` for serving: a SavedModel, ONNX, LiteRT or OpenVINO.

    `keras_resnet.export`. The default, a SavedModel with three signatures,
    top-k and class names, is described in `keras_resnet.serving`; the
    other formats hold its `serve` graph alone (module docstring). A
    mixed-precision model is exported as its float32 computation. The file
    is loaded in its runtime and compared with Keras on a few images before
    it is declared written (`keras_resnet.export_check`); run it with
    `keras_resnet.runtimes.load(path)`.

    Args:
        model: a `keras.Model` with one image input, e.g. from
            `keras_resnet.ResNet` or a zoo run's `model.keras`.
        path: the SavedModel directory; a `.onnx` file; a `.tflite` file; an
            OpenVINO directory (for model.xml and model.bin). Written at a
            temporary path next to it and renamed into place.
        format: "tf_saved_model", "onnx", "litert" or "openvino" (the names
            of `keras.Model.export`), each with the TensorFlow backend; all
            but the SavedModel need the `deploy` extra.
        class_names, top_k, image_size, endpoints, verbose: SavedModel only,
            as in `keras_resnet.serving.export` (`endpoints=None`: all).
        preprocessing: None, or a callable on float32 (batch, H, W, 3)
            images baked in before the model, e.g. `Rescaling(1 / 255)`.
        fold_batchnorm: fold every BN into its conv first.
        overwrite: replace an existing `path`.
        quantization, calibration_images, io_dtype: format="litert" only:
            None (float32), "dynamic" or "int8"; int8's calibration images
            (an (N, H, W, 3) array or an iterable of images or batches, a
            few hundred training images as the file is served); its inputs
            and outputs, "float32" or "uint8" (raw pixels in, q / 256 out).
        raw_pixels: whether the file takes raw RGB pixels 0..255, which
            `runtimes.load` then checks (as `preprocess_input` does) and
            int8 calibration images must be. None: True when
            `preprocessing` is given or the model begins with keras_resnet's
            `Preprocessing` or Keras's `Rescaling` or `Normalization` (zoo
            models do), else False.
        verify: check the file in its runtime before declaring it written;
            False saves a runtime load and a forward pass of a few images.

    Returns:
        The path written, as a string.

    Raises:
        FileExistsError: `path` is occupied and `overwrite` is False.
        ValueError: a bad argument, naming the value received.
        ImportError: a package of the `deploy` extra is missing.
        keras_resnet.export_check.ExportCheckError: the file does not load
            or run in its runtime, or disagrees with Keras; not written.
        OSError: the disk is full (ENOSPC), naming `path`; nothing written.
    """
    from keras_resnet import serving

    fmt = formats.format_named(format)
    options = formats.format_options(fmt, {
        "class_names": class_names, "top_k": top_k, "image_size": image_size,
        "endpoints": endpoints, "verbose": verbose, "quantization": quantization,
        "calibration_images": calibration_images, "io_dtype": io_dtype,
    })
    return serving.write_export(fmt, model, path, options, preprocessing=preprocessing,
                                fold_batchnorm=fold_batchnorm, overwrite=overwrite,
                                raw_pixels=raw_pixels, verify=verify)


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
    raw_pixels=None,
    verify=True,
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
        raw_pixels, verify: as in `export`.

    Returns:
        The path written, as a string.

    Raises:
        FileExistsError, ValueError, ImportError, ExportCheckError, OSError:
            as `export` raises them.
    """
    return export(model, path, format=formats.LITERT, quantization=quantization, preprocessing=preprocessing,
                  fold_batchnorm=fold_batchnorm, overwrite=overwrite,
                  calibration_images=calibration_images, io_dtype=io_dtype,
                  raw_pixels=raw_pixels, verify=verify)
