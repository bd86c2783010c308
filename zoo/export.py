"""Exports a trained zoo run as a TF SavedModel (and optionally TFLite).

    python -m zoo.export --workdir=/tmp/r20 --output=/tmp/r20_savedmodel
    python -m zoo.export --workdir=/tmp/r20 --output=/tmp/r20_sm \\
        --fold_batchnorm --tflite=/tmp/r20.tflite --quantization=dynamic

Reads the run's `model.keras` (raw 0..255 pixels in, preprocessing inside)
and `classes.json` (class names, if the run wrote them), and writes the
SavedModel of `keras_resnet.serving.export`: signatures `serving_default`
(float images), `serve_uint8`, `serve_bytes` (encoded JPEG/PNG), each
returning probabilities, the top-k class ids and, with classes.json, their
names.
"""

import pathlib

from absl import flags

from zoo import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A zoo run's directory (holds model.keras).")
flags.DEFINE_string("output", None, "SavedModel directory to write.")
flags.DEFINE_bool("overwrite", False, "Replace an existing export at --output.")
flags.DEFINE_bool("fold_batchnorm", False, "Fold every BN into its conv.")
flags.DEFINE_integer("top_k", None, "Class ids to return; default min(5, classes).")
flags.DEFINE_string("tflite", None, "Also write a .tflite file here.")
flags.DEFINE_enum("quantization", None, ["dynamic"], "TFLite quantisation (with --tflite).")

MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"
COMMAND = "zoo.export"
# What zoo.train writes into a workdir (eval_<mode>.json aside).
RUN_ENTRIES = (
    "config.json", "checkpoints", "logs", "history.csv", "results.json",
    CLASSES_FILE, MODEL_FILE, ".workers",
)


def load_run(workdir):
    """Returns (model, class names or None) of the run in `workdir`."""
    from zoo import history
    from zoo import runs

    workdir = pathlib.Path(cli.expand(workdir))
    model_path = workdir / MODEL_FILE
    if not model_path.is_file():
        raise FileNotFoundError(
            f"No {MODEL_FILE} in --workdir={str(workdir)!r}: run "
            "`python -m zoo.train` to the end first (it writes the model last)."
        )
    model = runs.load_model_file(model_path)
    classes_path = workdir / CLASSES_FILE
    class_names = None
    if classes_path.is_file():
        class_names = history.read_json(
            classes_path, "the run's class names", "It is written when the run ends; rerun zoo.train."
        )
        if not isinstance(class_names, list):
            raise ValueError(
                f"{classes_path} must hold a JSON list of class names. "
                f"Received {type(class_names).__name__}."
            )
    return model, class_names


def check_outputs(workdir, output, tflite=None, overwrite=False):
    """Refuses outputs that would overwrite the run itself, or an existing .tflite.

    An export with `overwrite=True` replaces its output directory whole, so
    an output that is the workdir, or a folder that contains it, would
    delete the training run; so would an output inside the workdir that is
    one of the run's own files. Checked before anything is written.

    Returns:
        (output, tflite) as absolute paths, `~` expanded.
    """
    run = pathlib.Path(cli.expand(workdir)).resolve()
    output = pathlib.Path(cli.expand(output)).resolve()
    if output == run or run.is_relative_to(output):
        raise ValueError(
            f"--output={str(output)!r} contains the training run {str(run)!r}: the export "
            "would replace it. Export to a path outside the run, e.g. "
            f"{str(run.parent / (run.name + '_savedmodel'))!r}."
        )
    if _part_of_run(output, run):
        raise ValueError(
            f"--output={str(output)!r} is part of the training run {str(run)!r} "
            f"({output.relative_to(run).parts[0]}); export to another path."
        )
    if tflite is not None:
        tflite = pathlib.Path(cli.expand(tflite)).resolve()
        if tflite.suffix != ".tflite":
            raise ValueError(f"--tflite must end with '.tflite'. Received {str(tflite)!r}.")
        if tflite.is_relative_to(output) or _part_of_run(tflite, run):
            raise ValueError(
                f"--tflite={str(tflite)!r} would be inside the SavedModel or the run; "
                "choose a path outside both."
            )
        if tflite.exists() and not overwrite:
            raise FileExistsError(
                f"--tflite={str(tflite)!r} exists; pass --overwrite to replace it. Nothing was written."
            )
    return output, tflite


def _part_of_run(path, run):
    if not path.is_relative_to(run) or path == run:
        return False
    entry = path.relative_to(run).parts[0]
    return entry in RUN_ENTRIES or entry.startswith("eval_")


def export_run(workdir, output, *, overwrite=False, fold_batchnorm=False, top_k=None,
               tflite=None, quantization=None):
    """Exports the run in `workdir`; returns the paths written.

    Args:
        workdir: the zoo run's directory.
        output: the SavedModel directory to write; not the workdir, nor a
            folder that contains it.
        overwrite: replace existing outputs.
        fold_batchnorm: fold every BN into its conv.
        top_k: class ids per image; default min(5, classes).
        tflite: optional .tflite path to write as well.
        quantization: None or "dynamic" (for `tflite`).

    Raises:
        ValueError: an output that overlaps the run, or a bad argument.
        FileExistsError: an existing output without `overwrite`; checked for
            both outputs before either is written.
    """
    from keras_resnet import serving

    output, tflite = check_outputs(workdir, output, tflite, overwrite)
    if serving._occupied(output) and not overwrite:
        raise FileExistsError(
            f"{str(output)!r} exists and is not an empty directory; pass --overwrite to "
            "replace it. Nothing was written."
        )
    model, class_names = load_run(workdir)
    written = [serving.export(
        model, output, class_names=class_names, top_k=top_k,
        fold_batchnorm=fold_batchnorm, overwrite=overwrite,
    )]
    if tflite:
        written.append(serving.export_tflite(
            model, tflite, quantization=quantization,
            fold_batchnorm=fold_batchnorm, overwrite=overwrite,
        ))
    return written


def main(argv):
    if len(argv) > 1:
        cli.fail(f"Unexpected arguments: {argv[1:]}", COMMAND)
    if FLAGS.quantization and not FLAGS.tflite:
        cli.fail("--quantization needs --tflite=PATH.", COMMAND)
    try:
        written = export_run(
            FLAGS.workdir, FLAGS.output, overwrite=FLAGS.overwrite,
            fold_batchnorm=FLAGS.fold_batchnorm, top_k=FLAGS.top_k,
            tflite=FLAGS.tflite, quantization=FLAGS.quantization,
        )
    except ValueError as error:
        cli.fail(str(error))
    except OSError as error:
        cli.fail(cli.os_error(error))
    for path in written:
        print(f"Wrote {path}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir", "output"])
    cli.run(main)
