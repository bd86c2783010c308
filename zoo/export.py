"""Exports a trained zoo run: SavedModel, ONNX, LiteRT (TFLite), OpenVINO.

    python -m zoo.export --workdir=/tmp/r20 --output=/tmp/r20_savedmodel
    python -m zoo.export --workdir=/tmp/r20 --onnx=/tmp/r20.onnx
    python -m zoo.export --workdir=/tmp/r20 --output=/tmp/r20_sm \\
        --fold_batchnorm --tflite=/tmp/r20.tflite --quantization=dynamic
    python -m zoo.export --workdir=/tmp/r20 --tflite=/tmp/r20_int8.tflite \\
        --quantization=int8 --calibration_images=300 [--io_dtype=uint8]
    python -m zoo.export --workdir=/tmp/r20 --openvino=/tmp/r20_openvino

Reads the run's `model.keras` (raw 0..255 pixels in, preprocessing inside)
and `classes.json` (class names, if the run wrote them). --output writes
the SavedModel of `keras_resnet.export`: signatures
`serving_default` (float images), `serve_uint8`, `serve_bytes` (encoded
JPEG/PNG), each returning probabilities, the top-k class ids and, with
classes.json, their names. --onnx, --tflite and --openvino write those
formats (`keras_resnet.export_formats`), probabilities out.

--quantization=int8 calibrates on --calibration_images images drawn from
the run's training split (never its val or test split; `zoo.calibration`)
and records which next to the file: PATH.tflite -> PATH.calibration.json.
"""

import pathlib

from absl import flags

from zoo import cli
from zoo import run as run_lib

FLAGS = flags.FLAGS

COMMAND = "zoo.export"

# flag -> the suffix its path must have (None: a directory).
OUTPUTS = {"output": None, "onnx": ".onnx", "tflite": ".tflite", "openvino": None}
CALIBRATION_SUFFIX = ".calibration.json"


def check_outputs(workdir, outputs, overwrite=False):
    """Refuses outputs that would overwrite the run, each other, or existing files.

    An export with `overwrite=True` replaces its output whole, so an output
    that is the workdir, or a folder that contains it, would delete the
    training run; so would an output inside the workdir that is one of the
    run's own files. Checked for every output before anything is written.

    Args:
        workdir: the run's directory (`zoo.run.directory`).
        outputs: {flag: path or None}, flags from `OUTPUTS` (and
            "calibration", the int8 record).
        overwrite: whether existing outputs may be replaced.

    Returns:
        {flag: absolute path, `~` expanded} of the outputs given.
    """
    from keras_resnet import atomic

    run = workdir.resolve()
    checked = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        path = pathlib.Path(cli.expand(path)).resolve()
        suffix = OUTPUTS.get(flag, CALIBRATION_SUFFIX)
        # What the messages call it: the flag, or the record written beside --tflite.
        name = f"--{flag}={str(path)!r}" if flag in OUTPUTS else f"The int8 calibration record {str(path)!r}"
        if path == run or run.is_relative_to(path):
            example = run.parent / (run.name + (suffix or f"_{'savedmodel' if flag == 'output' else flag}"))
            raise ValueError(
                f"{name} contains the training run {str(run)!r}: the export "
                f"would replace it. Export to a path outside the run, e.g. {str(example)!r}."
            )
        if _part_of_run(path, run):
            raise ValueError(
                f"{name} is part of the training run {str(run)!r} "
                f"({path.relative_to(run).parts[0]}); export to another path."
            )
        if suffix is not None and not path.name.endswith(suffix):
            raise ValueError(f"--{flag} must end with '{suffix}'. Received {str(path)!r}.")
        for other_flag, other in checked.items():
            if path == other or path.is_relative_to(other) or other.is_relative_to(path):
                raise ValueError(
                    f"{name} and --{other_flag}={str(other)!r} overlap; "
                    "give each export a path of its own, outside the others."
                )
        if atomic.occupied(path) and not overwrite:
            what = "is not an empty directory" if path.is_dir() else "exists"
            raise FileExistsError(
                f"{name} {what}; pass --overwrite to replace it. "
                "Nothing was written."
            )
        checked[flag] = path
    if not checked:
        raise ValueError(
            "Nothing to export: give at least one of --output (SavedModel), --onnx, "
            "--tflite or --openvino."
        )
    return checked


def _part_of_run(path, run):
    if not path.is_relative_to(run) or path == run:
        return False
    return run_lib.is_run_entry(path.relative_to(run).parts[0])


def export_run(workdir, output=None, *, overwrite=False, fold_batchnorm=False, top_k=None,
               tflite=None, quantization=None, onnx=None, openvino=None,
               calibration_images=None, io_dtype="float32"):
    """Exports the run in `workdir`; returns the paths written.

    Args:
        workdir: the zoo run's directory.
        output: the SavedModel directory to write; not the workdir, nor a
            folder that contains it.
        overwrite: replace existing outputs.
        fold_batchnorm: fold every BN into its conv (every format).
        top_k: class ids per image; default min(5, classes). SavedModel only.
        tflite: a .tflite path to write.
        quantization: None, "dynamic" or "int8" (for `tflite`).
        onnx: a .onnx path to write.
        openvino: an OpenVINO IR directory to write.
        calibration_images: int8: how many training images to calibrate on
            (default `zoo.calibration.DEFAULT_COUNT`).
        io_dtype: int8: "float32" or "uint8" inputs and outputs.

    Raises:
        ValueError: an output that overlaps the run or another output, or a
            bad argument.
        FileExistsError: an existing output without `overwrite`; checked for
            every output before any is written.
    """
    import keras_resnet

    if quantization is not None and tflite is None:
        raise ValueError(f"quantization={quantization!r} needs a .tflite path (--tflite).")
    if quantization != "int8" and (calibration_images is not None or io_dtype != "float32"):
        raise ValueError("--calibration_images and --io_dtype apply to --quantization=int8 only.")
    if top_k is not None and output is None:
        raise ValueError("--top_k applies to the SavedModel (--output) only.")
    record_path = None
    if quantization == "int8":
        record_path = str(cli.expand(tflite))[: -len(".tflite")] + CALIBRATION_SUFFIX
    workdir = run_lib.directory(workdir)
    paths = check_outputs(workdir, {"output": output, "onnx": onnx, "tflite": tflite,
                                    "openvino": openvino, "calibration": record_path}, overwrite)
    model, class_names = run_lib.load_run(workdir)
    images = record = None
    if quantization == "int8":  # Before anything is written: the dataset may be gone.
        images, record = _calibration(workdir, calibration_images)
    written = []
    if output is not None:
        written.append(keras_resnet.export(
            model, paths["output"], class_names=class_names, top_k=top_k,
            fold_batchnorm=fold_batchnorm, overwrite=overwrite,
        ))
    for flag in ("onnx", "openvino"):
        if flag in paths:
            written.append(keras_resnet.export(
                model, paths[flag], format=flag, fold_batchnorm=fold_batchnorm, overwrite=overwrite,
            ))
    if tflite is not None:
        written.append(keras_resnet.export_tflite(
            model, paths["tflite"], quantization=quantization, fold_batchnorm=fold_batchnorm,
            overwrite=overwrite, calibration_images=images, io_dtype=io_dtype,
        ))
        if record is not None:
            from zoo import files

            record["tflite"] = str(paths["tflite"])
            files.write_json(paths["calibration"], record)
            written.append(str(paths["calibration"]))
    return written


def _calibration(workdir, count):
    from zoo import calibration

    recipe, config = run_lib.load_recipe(workdir)
    return calibration.draw(recipe, config, calibration.DEFAULT_COUNT if count is None else count)


def main(argv):
    if len(argv) > 1:
        cli.fail(f"Unexpected arguments: {argv[1:]}", COMMAND)
    if FLAGS.quantization and not FLAGS.tflite:
        cli.fail("--quantization needs --tflite=PATH.", COMMAND)
    try:
        written = export_run(
            FLAGS.workdir, FLAGS.output, overwrite=FLAGS.overwrite,
            fold_batchnorm=FLAGS.fold_batchnorm, top_k=FLAGS.top_k,
            tflite=FLAGS.tflite, quantization=FLAGS.quantization, onnx=FLAGS.onnx,
            openvino=FLAGS.openvino, calibration_images=FLAGS.calibration_images,
            io_dtype=FLAGS.io_dtype,
        )
    except (ValueError, ImportError) as error:
        cli.fail(str(error))
    except OSError as error:
        cli.fail(cli.os_error(error))
    for path in written:
        print(f"Wrote {path}")


def define_flags():
    """Defines the command-line flags (only when run as a program)."""
    flags.DEFINE_string("workdir", None, f"A zoo run's directory (holds {run_lib.MODEL}).")
    flags.DEFINE_string("output", None, "SavedModel directory to write.")
    flags.DEFINE_bool("overwrite", False, "Replace existing exports.")
    flags.DEFINE_bool("fold_batchnorm", False, "Fold every BN into its conv.")
    flags.DEFINE_integer("top_k", None, "Class ids to return; default min(5, classes). SavedModel only.")
    flags.DEFINE_string("onnx", None, "Write a .onnx file here (needs the deploy extra).")
    flags.DEFINE_string("tflite", None, "Write a LiteRT .tflite file here.")
    flags.DEFINE_enum("quantization", None, ["dynamic", "int8"], "LiteRT quantisation (with --tflite).")
    flags.DEFINE_integer("calibration_images", None,
                         "int8: how many training images to calibrate on (default 300).")
    flags.DEFINE_enum("io_dtype", "float32", ["float32", "uint8"],
                      "int8: float32 in and out, or uint8 pixels in and uint8 probabilities out.")
    flags.DEFINE_string("openvino", None, "Write an OpenVINO IR directory (model.xml, model.bin) here.")
    flags.mark_flags_as_required(["workdir"])


if __name__ == "__main__":
    define_flags()
    cli.run(main, COMMAND)
