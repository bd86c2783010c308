"""`keras-resnet predict`: the top classes of image files, from a preset, a model file, a zoo run or an export.

    keras-resnet predict --weights=cifar10 --depth=56 photos/
    keras-resnet predict --weights=imagenet --depth=50 cat.jpg dog.png --top=3
    keras-resnet predict --weights=runs/r20 'photos/**/*.jpg' --format=csv > predictions.csv
    keras-resnet predict --weights=resnet20.onnx --image_size=32 photos/ --format=json
    python -m keras_resnet.predict ...          # the same command

**Inputs**: image files, folders (every image file below them, by suffix:
.jpg .jpeg .png .bmp .gif .webp, in sorted order; hidden files skipped) and
glob patterns (quoted, so the shell leaves them: `'photos/*.png'`,
`'photos/**/*.jpg'`). Files named or matched are tried whatever their
suffix.

**--weights**, what classifies them:
- a preset name or alias (`keras-resnet presets` lists them) with
  `--depth` (needed when the preset has several depths): the net with its
  preset's preprocessing inside, its class names;
- a `.keras` file, fed raw RGB pixels 0..255, normalised first as its
  record says for a preset's net saved without its preprocessing inside
  (`--preprocessing=PRESET` or a mode for another model that takes
  normalised input);
- a zoo run directory (`zoo.train --workdir`): its `model.keras` and
  `classes.json`;
- a file `keras_resnet.export` wrote (SavedModel, ONNX, LiteRT, OpenVINO),
  run in its own runtime (`keras_resnet.runtimes.load`), fed raw pixels
  0..255 as the project's exports take them; `--image_size` where the file
  does not say its size.

**Images** are decoded by Pillow to 8-bit RGB (a 16-bit PNG keeps its high
byte, a CMYK JPEG becomes RGB; `keras_resnet.images.open_rgb`), then cut to
the view the nets are evaluated on (`keras_resnet.images.evaluation_view`):
the shorter side resized to 256 and the centre 224x224 crop for an
ImageNet net (`--resize` for another shorter side), the shorter side at 32
and the centre crop for a CIFAR net (a 32x32 image as it is). They are
decoded a batch ahead on threads, `--batch_size` at a time, so memory
stays bounded whatever the number of files.

**Output** (standard output): per image, its `--top` classes (5 by
default) and probabilities, as a table (`--format=table`), a JSON list
(`json`: {"file", "predictions": [{"class_id", "name", "probability"}]}),
or CSV (`csv`: a row per image: file, then class_id_R, name_R,
probability_R for R = 1..top, then error), written batch by batch. Classes
are named by the preset, the run's classes.json or `--classes`; 1000
outputs are ImageNet-1k's; other widths are numbered (a note on standard
error says so). A progress bar goes to standard error for folders and
globs when standard error is a terminal (`--progress` / `--no-progress`).

**Errors**: a file that cannot be read as an image (not an image, corrupt
or truncated), a missing path, an empty folder or a glob that matches
nothing gets one line on standard error (and, in JSON and CSV, a record
with its "error"); the other images are still predicted, and the command
exits with status 1 at the end. Bad flags exit with status 2 and a
message; a model that cannot be loaded, status 1.
"""

import argparse
import concurrent.futures
import csv
import dataclasses
import glob
import json
import os
import sys
import time

from keras_resnet import images as image_files

PROG = "keras-resnet predict"
FORMATS = ("table", "json", "csv")
DEFAULT_TOP = 5
DEFAULT_BATCH_SIZE = 32
GLOB_CHARACTERS = "*?["


def parse_args(argv):
    """The command line, checked; `--help` and bad flags exit here (0 and 2).

    Args:
        argv: the arguments, without the program name.

    Returns:
        An `argparse.Namespace`.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Prints the top classes of image files: images, folders or glob patterns in, top-k "
                    "labels and probabilities out.",
        epilog="Examples:\n"
               "  keras-resnet predict --weights=cifar10 --depth=56 photos/\n"
               "  keras-resnet predict --weights=imagenet --depth=50 cat.jpg --top=3\n"
               "  keras-resnet predict --weights=RUN_DIR 'photos/**/*.jpg' --format=csv > out.csv\n"
               "  keras-resnet predict --weights=model.onnx --image_size=32 photos/\n"
               "Exit status: 0, 1 if an input could not be read or predicted, 2 for bad flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH",
                        help="image files, folders (searched below for image files) or quoted glob patterns")
    parser.add_argument("--weights", required=True, metavar="WEIGHTS",
                        help="a preset (with --depth), a .keras file, a zoo run directory, or an exported "
                             "file (SavedModel, .onnx, .tflite, OpenVINO directory)")
    parser.add_argument("--depth", type=int, help="the preset's depth (e.g. 20, 56, 50)")
    parser.add_argument("--top", type=int, help=f"classes per image (default {DEFAULT_TOP}, at most all)")
    parser.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"images per batch (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--format", choices=FORMATS, default="table", help="table (default), json or csv")
    parser.add_argument("--classes", metavar="NAMES",
                        help="the class names: a class list or preset name (cifar10, imagenet1k, ...), or a "
                             "file: a JSON list, or one name per line")
    parser.add_argument("--image_size", type=int,
                        help="the side of the images the model takes, where the model does not say")
    parser.add_argument("--resize", type=int,
                        help="the shorter side before the centre crop (default: 256 for a 224 ImageNet net, "
                             "the crop's own side for a CIFAR net)")
    parser.add_argument("--preprocessing", metavar="PRESET_OR_MODE",
                        help="for a .keras file, run or export that takes normalised input: the preset "
                             "whose preprocessing to apply to the raw pixels, or a mode (caffe, torch, "
                             "rescale)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on standard error (default: for folders and globs, when "
                             "standard error is a terminal)")
    args = parser.parse_args(argv)
    for name in ("depth", "top", "batch_size", "image_size", "resize"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be an int >= 1. Received {value}.")
    if args.resize is not None and args.image_size is not None and args.resize < args.image_size:
        parser.error(f"--resize ({args.resize}) must be at least --image_size ({args.image_size}).")
    args.parser = parser
    return args


# --- Inputs --------------------------------------------------------------------


def list_inputs(inputs):
    """The files to predict, and a message per input that gives none.

    Args:
        inputs: the command's PATH arguments.

    Returns:
        (files, problems): the image files in order (a folder's below it,
        sorted), and [(input, message)] for missing paths, folders without
        images and globs that match nothing.
    """
    files, problems = [], []
    for given in inputs:
        if os.path.isdir(given):
            found = list(_folder_images(given))
            if not found:
                problems.append((given, f"no image files in this folder or below it (looked for "
                                        f"{' '.join(image_files.IMAGE_SUFFIXES)})"))
            files += found
        elif os.path.exists(given):
            files.append(given)
        elif any(c in given for c in GLOB_CHARACTERS):
            matched = sorted(glob.glob(given, recursive=True))
            found = [f for m in matched for f in (_folder_images(m) if os.path.isdir(m) else [m])]
            if not found:
                problems.append((given, "no file matches this pattern"))
            files += found
        else:
            problems.append((given, "no such file or folder"))
    return files, problems


def _folder_images(folder):
    """The image files below `folder`, by suffix, sorted; hidden ones skipped."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in image_files.IMAGE_SUFFIXES:
                yield os.path.join(root, name)


# --- What classifies them --------------------------------------------------------


@dataclasses.dataclass
class Classifier:
    """What the command runs: `run(images uint8 (n, size, size, 3)) -> probabilities (n, classes)`.

    Attributes:
        run: the function.
        size: the side of the square images it takes.
        resize: the shorter side before the centre crop.
        classes: a `ClassList`, one name per output.
        described: what it is, for messages.
    """

    run: object
    size: int
    resize: int
    classes: object
    described: str


class CommandError(Exception):
    """A failure the command reports in one line and exits 1 for."""


def load_classifier(args):
    """The `Classifier` that `args.weights` names (see the module docstring).

    Raises:
        SystemExit: (status 2) bad flags for these weights.
        CommandError: weights that cannot be loaded.
    """
    parser = args.parser
    if os.path.exists(args.weights):
        if args.depth is not None:
            parser.error(f"--depth goes with a preset; {args.weights!r} is a file, which holds its own depth.")
        if os.path.isdir(args.weights) and os.path.isfile(os.path.join(args.weights, "model.keras")):
            return _keras_classifier(args, os.path.join(args.weights, "model.keras"),
                                     _run_classes(args.weights), "zoo run")
        if args.weights.endswith(".keras"):
            return _keras_classifier(args, args.weights, None, "model file")
        return _exported_classifier(args)
    from keras_resnet import registry

    if args.weights not in registry.preset_names():
        parser.error(
            f"--weights={args.weights!r} is neither a file or folder nor a preset. Presets: "
            f"{', '.join(registry.preset_names())} (keras-resnet presets describes them).")
    return _preset_classifier(args, registry)


def _preset_classifier(args, registry):
    depths = sorted(registry.presets_of(args.weights))
    if args.depth is None and len(depths) > 1:
        args.parser.error(f"--weights={args.weights} needs --depth: one of {', '.join(map(str, depths))}.")
    depth = depths[0] if args.depth is None else args.depth
    if depth not in depths:
        args.parser.error(f"--weights={args.weights} has no depth {depth}: it has {', '.join(map(str, depths))}.")
    if args.preprocessing is not None:
        args.parser.error("--preprocessing is for model files; a preset's net applies its own preprocessing.")
    import keras_resnet

    preset = registry.get_preset(args.weights, depth=depth)
    try:
        model = keras_resnet.ResNet(depth, weights=args.weights, include_preprocessing=True)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot load preset {args.weights!r} at depth {depth}: {error}") from None
    return _from_model(args, model, preset.class_names, preset.family, f"{args.weights} ResNet-{depth}")


def _keras_classifier(args, path, classes, kind):
    import keras

    import keras_resnet

    try:
        with keras_resnet.recursion_headroom():  # ResNet-1202's graph is deep
            model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # zipfile, h5py, JSON and Keras errors alike
        raise CommandError(f"cannot load the {kind} {path!r} ({type(error).__name__}: {error})") from None
    try:
        family = keras_resnet.architecture_of(model).family
    except ValueError:
        family = None  # not a keras_resnet net: the view follows its size
    return _from_model(args, model, classes, family, f"{kind} {path}")


def _from_model(args, model, classes, family, described):
    """A Keras model as a `Classifier`: raw pixels in (after --preprocessing), probabilities out."""
    import numpy as np

    from keras_resnet import serving

    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.inputs[0].shape) != 4:
        raise CommandError(f"{described} is not an image classifier: it takes {len(model.inputs)} input(s) of "
                           f"shape {model.inputs[0].shape} and has {len(model.outputs)} output(s).")
    head = serving._head(model)
    if head == "features":
        raise CommandError(f"{described} outputs features of shape {model.outputs[0].shape}, not classes: "
                           "it has no classifier (include_top=False?).")
    shape = tuple(model.inputs[0].shape)
    channels_first = shape[1] == 3 and shape[3] != 3
    spatial = shape[2:4] if channels_first else shape[1:3]
    size = _image_size(args, spatial, family, described)
    preprocess = _preprocessing(args) or _recorded_preprocessing(model)

    def run(batch):
        x = _pixels(batch, preprocess)
        if channels_first:
            x = np.transpose(x, (0, 3, 1, 2))
        outputs = np.asarray(model.predict(x, batch_size=len(x), verbose=0), np.float64)
        return _softmax(outputs) if head == "logits" else outputs

    width = model.outputs[0].shape[-1]
    return Classifier(run, size, _resize(args, size, family), _classes(args, classes, width, described), described)


def _exported_classifier(args):
    import numpy as np

    from keras_resnet import runtimes

    try:
        runner = runtimes.load(args.weights)
    except (OSError, ValueError, ImportError) as error:
        hint = (" (a .weights.h5 file holds weights without their net: build the net with "
                "keras_resnet.ResNet(depth, weights=FILE) and save it as .keras)" if args.weights.endswith(".h5")
                else "")
        raise CommandError(f"cannot load {args.weights!r}: {error}{hint}") from None
    # The export records its input shape once keras_resnet.runtimes says it.
    shape = getattr(runner, "input_shape", None)
    spatial = (None, None) if shape is None else tuple(shape)[1:3]
    described = f"export {args.weights} ({runner.runtime})"
    size = _image_size(args, spatial, None, described)
    preprocess = _preprocessing(args)

    def run(batch):
        return np.asarray(runner(_pixels(batch, preprocess)), np.float64)

    try:  # one black image: how many classes, and whether the file runs at all
        width = run(np.zeros((1, size, size, 3), np.uint8)).shape[-1]
    except Exception as error:  # any runtime's error
        raise CommandError(f"{described} does not run on {size}x{size} images ({type(error).__name__}: "
                           f"{error})") from None
    return Classifier(run, size, _resize(args, size, None), _classes(args, None, width, described), described)


def _pixels(batch, preprocess):
    """uint8 images as float32, through --preprocessing if given."""
    import numpy as np

    x = batch.astype(np.float32)
    if preprocess is None:
        return x
    import keras

    return keras.ops.convert_to_numpy(preprocess(x))


def _image_size(args, spatial, family, described):
    """The side of the images: the model's, else --image_size, else its family's."""
    fixed = [d for d in spatial if d is not None]
    if fixed and (len(fixed) != 2 or fixed[0] != fixed[1]):
        raise CommandError(f"{described} takes {spatial[0]}x{spatial[1]} images; this command feeds square "
                           "ones only.")
    if fixed:
        if args.image_size is not None and args.image_size != fixed[0]:
            args.parser.error(f"--image_size={args.image_size} contradicts {described}, which takes "
                              f"{fixed[0]}x{fixed[0]} images.")
        return fixed[0]
    if args.image_size is not None:
        return args.image_size
    if family is not None:
        from keras_resnet import specs

        return specs.DEFAULTS[family].size
    args.parser.error(f"{described} does not say what size of images it takes: pass --image_size.")


def _resize(args, size, family):
    if args.resize is None:
        return image_files.resize_for(size, family)
    if args.resize < size:
        args.parser.error(f"--resize ({args.resize}) must be at least the image size ({size}).")
    return args.resize


def _preprocessing(args):
    """A `Preprocessing` layer for --preprocessing, or None."""
    if args.preprocessing is None:
        return None
    from keras_resnet import preprocessing
    from keras_resnet import presets
    from keras_resnet import registry

    name = args.preprocessing
    if name in presets.MODES:
        return preprocessing.Preprocessing(name, data_format="channels_last")
    if name in registry.preset_names():
        try:
            return preprocessing.preprocessing_layer(name, data_format="channels_last")
        except ValueError as error:
            args.parser.error(f"--preprocessing={name}: {error}")
    args.parser.error(f"--preprocessing takes a preset ({', '.join(registry.preset_names())}) or a mode "
                      f"({', '.join(sorted(presets.MODES))}). Received {name!r}.")


def _recorded_preprocessing(model):
    """A `Preprocessing` layer for what `model`'s architecture record says its
    input must be (a preset's net saved without `include_preprocessing`), or None.

    The record (`ResNetModel.architecture_record`, issue 30) is read where the
    model has one; a model without it is fed raw pixels, as before.
    """
    record = getattr(model, "architecture_record", None)
    mode = None if not record else record.get("input_preprocessing")
    if mode is None:
        return None
    from keras_resnet import preprocessing

    return preprocessing.Preprocessing(mode, data_format="channels_last")  # before any transpose


def _run_classes(workdir):
    """The class names of a zoo run (its classes.json), or None."""
    path = os.path.join(workdir, "classes.json")
    if not os.path.isfile(path):
        return None
    return _read_names(path, "the run's class names")


def _read_names(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise CommandError(f"cannot read {what} {path!r}: {error}") from None
    if path.endswith(".json"):
        try:
            names = json.loads(text)
        except ValueError as error:
            raise CommandError(f"{path!r} ({what}) is not JSON: {error}") from None
        if not isinstance(names, list):
            raise CommandError(f"{path!r} ({what}) must hold a JSON list of class names. Received "
                               f"{type(names).__name__}.")
        return [str(n) for n in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


def _classes(args, classes, width, described):
    """--classes, else `classes`, else ImageNet-1k's for 1000 outputs, else numbers: a `ClassList`."""
    from keras_resnet import class_lists

    names = _named_classes(args, classes)
    if names is None:
        if width == len(class_lists.IMAGENET_1K):
            return class_lists.IMAGENET_1K
        _report(f"{described} has {width} classes and no names for them: they are numbered 0..{width - 1} "
                "(--classes names them).")
        return class_lists.class_list([str(i) for i in range(width)], key="numbered")
    if len(names) != width:
        raise CommandError(f"{described} gives {width} outputs, but the class names ({names!r}) are {len(names)}.")
    return names


def _named_classes(args, classes):
    """--classes, else `classes`: a `ClassList`, or None."""
    from keras_resnet import class_lists
    from keras_resnet import labels
    from keras_resnet import registry

    given = args.classes
    if given is not None:
        if given in class_lists.CLASS_LISTS:
            return class_lists.CLASS_LISTS[given]
        if given in registry.preset_names():
            return labels.class_list_of_preset(given)
        if not os.path.isfile(given):
            args.parser.error(f"--classes takes a class list ({', '.join(sorted(class_lists.CLASS_LISTS))}), a "
                              f"preset, or a file of names. Received {given!r}, which is none of them.")
        classes = _read_names(given, "class names")
    if classes is None or isinstance(classes, class_lists.ClassList):
        return classes
    try:
        return class_lists.class_list(classes, key="classes")
    except ValueError as error:
        raise CommandError(f"bad class names: {error}") from None


def _softmax(logits):
    import numpy as np

    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=-1, keepdims=True)


# --- Output ------------------------------------------------------------------------


class _Writer:
    """Writes each image's predictions (or its error) as it comes."""

    def __init__(self, out, top):
        self.out, self.top = out, top

    def begin(self, files):
        pass

    def image(self, path, predictions):
        raise NotImplementedError

    def error(self, path, message):
        pass

    def end(self):
        pass


class _Table(_Writer):
    def begin(self, files):
        self.width = min(60, max([len("file"), *map(len, files)]))
        self.out.write(f"{'file':<{self.width}}  rank  probability  class\n")

    def image(self, path, predictions):
        for rank, (class_id, name, score) in enumerate(predictions, 1):
            shown = name if isinstance(class_id, int) else f"{name} ({class_id})"
            first = path if rank == 1 else ""
            self.out.write(f"{first:<{self.width}}  {rank:>4}  {100 * score:>10.2f}%  {shown}\n")


class _Json(_Writer):
    def begin(self, files):
        self.out.write("[")
        self.count = 0

    def _record(self, record):
        self.out.write(("," if self.count else "") + "\n  " + json.dumps(record))
        self.count += 1

    def image(self, path, predictions):
        self._record({"file": path, "predictions": [
            {"class_id": class_id, "name": name, "probability": score} for class_id, name, score in predictions]})

    def error(self, path, message):
        self._record({"file": path, "error": message})

    def end(self):
        self.out.write("\n]\n" if self.count else "]\n")


class _Csv(_Writer):
    def begin(self, files):
        self.writer = csv.writer(self.out, lineterminator="\n")
        header = ["file"]
        for rank in range(1, self.top + 1):
            header += [f"class_id_{rank}", f"name_{rank}", f"probability_{rank}"]
        self.writer.writerow(header + ["error"])

    def image(self, path, predictions):
        row = [path]
        for class_id, name, score in predictions:
            row += [class_id, name, repr(score)]
        self.writer.writerow(row + [""] * (3 * (self.top - len(predictions))) + [""])

    def error(self, path, message):
        self.writer.writerow([path] + [""] * (3 * self.top) + [message])


WRITERS = {"table": _Table, "json": _Json, "csv": _Csv}


class _Progress:
    """A one-line progress bar on standard error, redrawn per batch."""

    def __init__(self, total, shown):
        self.total, self.shown, self.done, self.failed = total, shown, 0, 0
        self.start = time.perf_counter()

    def update(self, done, failed):
        self.done, self.failed = self.done + done, self.failed + failed
        if self.shown:
            rate = self.done / max(time.perf_counter() - self.start, 1e-9)
            width = 30
            filled = width * self.done // max(self.total, 1)
            bad = f", {self.failed} unreadable" if self.failed else ""
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} images "
                             f"({rate:.0f}/s{bad})")
            sys.stderr.flush()

    def clear(self):
        if self.shown and self.done:
            sys.stderr.write("\r\033[K")

    def finish(self):
        if self.shown:
            sys.stderr.write("\n")


def _report(message, progress=None):
    if progress is not None:
        progress.clear()
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


# --- The loop ------------------------------------------------------------------------


def _load_image(path, size, resize):
    """(uint8 (size, size, 3), None) or (None, the reason it cannot be read)."""
    try:
        return image_files.evaluation_view(image_files.open_rgb(path), size, resize), None
    except ValueError as error:
        return None, str(error)


def _batches(files, batch_size, load, pool):
    """Yields (paths, [(image, error)]) per batch; the next batch decodes while the caller predicts."""
    pending = None
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        futures = [pool.submit(load, path) for path in chunk]
        if pending is not None:
            yield pending[0], [future.result() for future in pending[1]]
        pending = (chunk, futures)
    if pending is not None:
        yield pending[0], [future.result() for future in pending[1]]


def predict_files(classifier, files, top, batch_size, writer, progress):
    """Predicts `files` batch by batch, writing each as it comes.

    Returns:
        The number of files that could not be read or predicted.
    """
    import numpy as np

    from keras_resnet import labels

    failed = 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with concurrent.futures.ThreadPoolExecutor(min(8, 2 * cores)) as pool:
        load = lambda path: _load_image(path, classifier.size, classifier.resize)  # noqa: E731
        for paths, loaded in _batches(files, batch_size, load, pool):
            good = [(path, image) for path, (image, _) in zip(paths, loaded) if image is not None]
            for path, (image, error) in zip(paths, loaded):
                if image is None:
                    _report(error, progress)
                    writer.error(path, error)
            failed += len(paths) - len(good)
            if good:
                probabilities = classifier.run(np.stack([image for _, image in good]))
                decoded = labels.decode_predictions(probabilities, top=top, classes=classifier.classes, nan="empty")
                for (path, _), predictions in zip(good, decoded):
                    if predictions:
                        writer.image(path, predictions)
                        continue
                    failed += 1
                    message = f"{path}: the model's outputs are NaN (no class can be named)"
                    _report(message, progress)
                    writer.error(path, message)
            writer.out.flush()
            progress.update(len(paths), len(paths) - len(good))
    return failed


def main(argv=None):
    """`keras-resnet predict` (`python -m keras_resnet.predict`).

    Args:
        argv: the arguments, without the program name; default sys.argv[1:].

    Returns:
        The exit status: 0 when every input was predicted, 1 otherwise (an
        input missing, empty or unreadable; weights that cannot be loaded;
        standard output closed early), 130 on Ctrl-C. Bad flags exit with
        status 2 (SystemExit) and a message.
    """
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{PROG}: interrupted.\n")
        return 130
    except BrokenPipeError:
        # Whoever read standard output stopped (`| head`): no traceback, and
        # no second error when Python flushes it at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(args):
    files, problems = list_inputs(args.inputs)
    for given, message in problems:
        _report(f"{given}: {message}")
    if not files:
        _report("nothing to predict.")
        return 1
    try:
        classifier = load_classifier(args)
    except CommandError as error:
        _report(f"error: {error}")
        return 1
    count = len(classifier.classes)
    if args.top is not None and args.top > count:
        args.parser.error(f"--top={args.top} is more than the {count} classes of {classifier.described}.")
    top = args.top or min(DEFAULT_TOP, count)
    shown = args.progress if args.progress is not None else (
        sys.stderr.isatty() and any(os.path.isdir(p) or not os.path.exists(p) for p in args.inputs))
    progress = _Progress(len(files), shown)
    writer = WRITERS[args.format](sys.stdout, top)
    writer.begin(files)
    failed = predict_files(classifier, files, top, args.batch_size, writer, progress)
    writer.end()
    sys.stdout.flush()
    progress.finish()
    failed += len(problems)
    if failed:
        _report(f"{failed} of {len(files) + len(problems)} inputs could not be predicted.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
