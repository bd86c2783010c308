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

import json
import pathlib

from absl import app
from absl import flags

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


def load_run(workdir):
    """Returns (model, class names or None) of the run in `workdir`."""
    import keras

    import keras_resnet  # Registers the layers model.keras may use.

    workdir = pathlib.Path(workdir)
    model_path = workdir / MODEL_FILE
    if not model_path.is_file():
        raise FileNotFoundError(
            f"No {MODEL_FILE} in --workdir={str(workdir)!r}: run "
            "`python -m zoo.train` to the end first (it writes the model last)."
        )
    with keras_resnet.recursion_headroom():  # ResNet-1202's graph is deep.
        model = keras.saving.load_model(model_path, compile=False)
    classes_path = workdir / CLASSES_FILE
    class_names = None
    if classes_path.is_file():
        class_names = json.loads(classes_path.read_text())
        if not isinstance(class_names, list):
            raise ValueError(
                f"{classes_path} must hold a JSON list of class names. "
                f"Received {type(class_names).__name__}."
            )
    return model, class_names


def export_run(workdir, output, *, overwrite=False, fold_batchnorm=False, top_k=None,
               tflite=None, quantization=None):
    """Exports the run in `workdir`; returns the paths written.

    Args:
        workdir: the zoo run's directory.
        output: the SavedModel directory to write.
        overwrite: replace existing outputs.
        fold_batchnorm: fold every BN into its conv.
        top_k: class ids per image; default min(5, classes).
        tflite: optional .tflite path to write as well.
        quantization: None or "dynamic" (for `tflite`).
    """
    from keras_resnet import serving

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
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.quantization and not FLAGS.tflite:
        raise app.UsageError("--quantization needs --tflite=PATH.")
    for path in export_run(
        FLAGS.workdir, FLAGS.output, overwrite=FLAGS.overwrite,
        fold_batchnorm=FLAGS.fold_batchnorm, top_k=FLAGS.top_k,
        tflite=FLAGS.tflite, quantization=FLAGS.quantization,
    ):
        print(f"Wrote {path}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir", "output"])
    app.run(main)
