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
formats, probabilities out. The flags are the formats' table's
(`keras_resnet.formats.TABLE`, a `zoo_flag` each); a run trained in
mixed precision exports its float32 computation, and every file is checked
in its runtime before it is written (`keras_resnet.export_check`).

--quantization=int8 calibrates on --calibration_images images drawn from
the run's training split (never its val or test split; `zoo.calibration`;
by default 300, or all of them if the split has fewer, which it says)
and records which next to the file: PATH.tflite -> PATH.calibration.json.
"""

import pathlib

from absl import flags

from zoo import cli
from zoo import run as run_lib

FLAGS = flags.FLAGS

COMMAND = "zoo.export"
CALIBRATION_SUFFIX = ".calibration.json"


def formats():
    """{zoo.export flag: `keras_resnet.formats.Format`}, one per format."""
    from keras_resnet import formats as formats_

    return {fmt.zoo_flag: fmt for fmt in formats_.TABLE.values()}


def check_outputs(workdir, outputs, overwrite=False):
    """Refuses outputs that would overwrite the run, each other, or existing files.

    An export with `overwrite=True` replaces its output whole, so an output
    that is the workdir, or a folder that contains it, would delete the
    training run; so would an output inside the workdir that is one of the
    run's own files. Checked for every output before anything is written.

    Args:
        workdir: the run's directory (`zoo.run.directory`).
        outputs: {flag: path or None}, flags of `formats()` (and
            "calibration", the int8 record).
        overwrite: whether existing outputs may be replaced.

    Returns:
        {flag: absolute path, `~` expanded} of the outputs given.
    """
    from keras_resnet import atomic

    run = workdir.resolve()
    suffixes = {flag: fmt.suffix for flag, fmt in formats().items()}
    checked = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        path = pathlib.Path(cli.expand(path)).resolve()
        suffix = suffixes.get(flag, CALIBRATION_SUFFIX)
        # What the messages call it: the flag, or the int8 record written beside its file.
        name = f"--{flag}={str(path)!r}" if flag in suffixes else f"The int8 calibration record {str(path)!r}"
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
            "Nothing to export: give at least one of "
            + ", ".join(f"--{flag} ({fmt.name})" for flag, fmt in formats().items()) + "."
        )
    return checked


def _part_of_run(path, run):
    if not path.is_relative_to(run) or path == run:
        return False
    return run_lib.is_run_entry(path.relative_to(run).parts[0])


def export_run(workdir, output=None, *, overwrite=False, fold_batchnorm=False, top_k=None,
               quantization=None, calibration_images=None, io_dtype="float32", **paths):
    """Exports the run in `workdir`; returns the paths written.

    Args:
        workdir: the zoo run's directory.
        output: the SavedModel directory to write; not the workdir, nor a
            folder that contains it.
        overwrite: replace existing outputs.
        fold_batchnorm: fold every BN into its conv (every format).
        top_k: class ids per image; default min(5, classes). SavedModel only.
        quantization: None, "dynamic" or "int8" (for `tflite`).
        calibration_images: int8: how many training images to calibrate on
            (default `zoo.calibration.DEFAULT_COUNT`, or all of them if the
            training split has fewer; printed).
        io_dtype: int8: "float32" or "uint8" inputs and outputs.
        **paths: a path per format, by its zoo flag (`formats()`): `onnx`
            (a .onnx file), `tflite` (a .tflite file), `openvino` (a
            directory).

    Raises:
        ValueError: an output that overlaps the run or another output, or a
            bad argument.
        FileExistsError: an existing output without `overwrite`; checked for
            every output before any is written.
        TypeError: a path for a flag that names no format.
    """
    import keras_resnet

    flags_ = formats()
    unknown = sorted(set(paths) - set(flags_))
    if unknown:
        raise TypeError(f"export_run() got paths for {unknown}, which name no format; "
                        f"the formats' flags: {sorted(flags_)}.")
    paths = {**paths, "output": output}
    options = _check_options(flags_, paths, top_k, quantization, calibration_images, io_dtype)
    record_path = None
    if quantization == "int8":  # beside the file calibrated (checked: given)
        (flag,) = _owners(flags_, "calibration_images")
        record_path = str(cli.expand(paths[flag]))[: -len(flags_[flag].suffix)] + CALIBRATION_SUFFIX
    workdir = run_lib.directory(workdir)
    checked = check_outputs(workdir, {**paths, "calibration": record_path}, overwrite)
    model, options["class_names"] = run_lib.load_run(workdir)
    record = None
    if quantization == "int8":  # Before anything is written: the dataset may be gone.
        options["calibration_images"], record = _calibration(workdir, calibration_images)
    written = []
    for flag, fmt in flags_.items():
        if flag not in checked:
            continue
        own = {name: value for name, value in options.items() if name in fmt.options and value is not None}
        written.append(keras_resnet.export(model, checked[flag], format=fmt.name,
                                           fold_batchnorm=fold_batchnorm, overwrite=overwrite, **own))
        if record is not None and "calibration_images" in own:
            from zoo import files

            record[flag] = str(checked[flag])
            files.write_json(checked["calibration"], record)
            written.append(str(checked["calibration"]))
    return written


def _check_options(flags_, paths, top_k, quantization, calibration_images, io_dtype):
    """The export options given, each refused without a path for a format it applies to."""
    if quantization != "int8" and (calibration_images is not None or io_dtype != "float32"):
        raise ValueError("--calibration_images and --io_dtype apply to --quantization=int8 only.")
    options = {"top_k": top_k, "quantization": quantization,
               "io_dtype": io_dtype if quantization == "int8" else None}
    for name, value in options.items():
        owners = _owners(flags_, name)
        if value is not None and not any(paths.get(flag) is not None for flag in owners):
            formats_ = " or ".join(f"the {flags_[flag].title} (--{flag})" for flag in owners)
            where = " or ".join(
                f"a {flags_[flag].suffix} path (--{flag})" if flags_[flag].suffix
                else f"a {flags_[flag].title} directory (--{flag})" for flag in owners)
            raise ValueError(f"--{name} applies to {formats_} only: {name}={value!r} needs {where}.")
    return options


def _owners(flags_, option):
    """The flags of the formats that `option` (an export argument) applies to."""
    return [flag for flag, fmt in flags_.items() if option in fmt.options]


def _calibration(workdir, count):
    from zoo import calibration

    recipe, config = run_lib.load_recipe(workdir)
    images, record = calibration.draw(recipe, config, count)
    if "note" in record:
        print(f"{COMMAND}: {record['note']}")
    return images, record


def main(argv):
    from keras_resnet.export_check import ExportCheckError

    if len(argv) > 1:
        cli.fail(f"Unexpected arguments: {argv[1:]}", COMMAND)
    paths = {flag: FLAGS[flag].value for flag in formats() if flag != "output"}
    try:
        written = export_run(
            FLAGS.workdir, FLAGS.output, overwrite=FLAGS.overwrite,
            fold_batchnorm=FLAGS.fold_batchnorm, top_k=FLAGS.top_k,
            quantization=FLAGS.quantization, calibration_images=FLAGS.calibration_images,
            io_dtype=FLAGS.io_dtype, **paths,
        )
    except (ValueError, ImportError, ExportCheckError) as error:
        cli.fail(str(error))
    except OSError as error:
        cli.fail(cli.os_error(error))
    for path in written:
        print(f"Wrote {path}")


def define_flags():
    """Defines the command-line flags (only when run as a program): a path
    flag per export format (`formats()`), and the options."""
    flags.DEFINE_string("workdir", None, f"A zoo run's directory (holds {run_lib.MODEL}).")
    for flag, fmt in formats().items():
        flags.DEFINE_string(flag, None, fmt.zoo_help)
    flags.DEFINE_bool("overwrite", False, "Replace existing exports.")
    flags.DEFINE_bool("fold_batchnorm", False, "Fold every BN into its conv.")
    flags.DEFINE_integer("top_k", None, "Class ids to return; default min(5, classes). SavedModel only.")
    quantized = " or ".join(f"--{flag}" for flag in _owners(formats(), "quantization"))
    flags.DEFINE_enum("quantization", None, ["dynamic", "int8"], f"Quantisation (with {quantized}).")
    flags.DEFINE_integer("calibration_images", None,
                         "int8: how many training images to calibrate on (default 300, or all "
                         "of them if the training split has fewer).")
    flags.DEFINE_enum("io_dtype", "float32", ["float32", "uint8"],
                      "int8: float32 in and out, or uint8 pixels in and uint8 probabilities out.")
    flags.mark_flags_as_required(["workdir"])


if __name__ == "__main__":
    define_flags()
    cli.run(main)
