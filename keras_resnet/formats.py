"""The export formats: one table that `keras_resnet.export`,
`keras_resnet.runtimes.load`, `zoo.export`, the deploy benchmark and the
`deploy` extra all read.

    TABLE["onnx"]      Format(name="onnx", suffix=".onnx", zoo_flag="onnx",
                              export_needs=(tf2onnx, onnx),
                              runtime_needs=(onnxruntime,),
                              write=_write_onnx, load=_load_onnx, ...)

**Adding a format** is one `Format` entry in `TABLE` plus its two
functions, `write(job, target)` (the file or directory at `target`, for an
`ExportJob`) and `load(path, threads, **load_options)` (a `Runner`), and
its packages in the `deploy` extra (a test checks that the extra lists
exactly what the table needs). `keras_resnet.export` (its `format=`, path,
options and packages), `runtimes.load` (which format a path is, its
runtime), `zoo.export` (a flag per format) and `benchmarks/deploy.py` (a
row per variant) follow from the table.

Every file records what it takes in its metadata (`METADATA_KEY`: raw
pixels or not, NaN out or not, ...), where each runtime keeps such things:
an ONNX `metadata_props` entry, a LiteRT metadata buffer, an OpenVINO
`<rt_info>` entry, a SavedModel's `assets.extra/keras_resnet.json`.

This module imports neither Keras nor TensorFlow until it exports or
loads, and none of the modules that read it (`runtimes`, `export_check`,
`serving`, `export_formats`): the writers reach the serving graph through
the `ExportJob`'s plan (`keras_resnet.serving._Plan`).
"""

import dataclasses
import json
import os
import pathlib
import warnings
from typing import Callable

import numpy as np

from keras_resnet import atomic

SAVED_MODEL = "tf_saved_model"
# The SavedModel's endpoints (its `endpoints=` option).
ENDPOINTS = ("serve", "serve_uint8", "serve_bytes")
ONNX = "onnx"
LITERT = "litert"
OPENVINO = "openvino"
OPENVINO_XML = "model.xml"
DEPLOY_EXTRA = 'pip install "keras-resnet-zoo[deploy]" (from a clone: pip install ".[deploy]")'
# The name under which every file records what it takes (`metadata`).
METADATA_KEY = "keras_resnet"


@dataclasses.dataclass(frozen=True)
class Package:
    """A package a format needs: its name on PyPI (as the `deploy` extra
    lists it) and the module imported."""

    pip: str
    module: str


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way to export and run a format: a row of the deploy benchmark."""

    label: str
    export_options: dict = dataclasses.field(default_factory=dict)
    load_options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Format:
    """One export format and everything that goes with it.

    Attributes:
        name: `format=` of `keras_resnet.export` (Keras's `model.export` names).
        title: its name in messages.
        row: its rows' name in the deploy benchmark (plus a variant's label).
        suffix: the file's suffix, or None for a directory.
        members: for a directory, the files it holds, the first one saying
            that it is this format; () for a file.
        write: `write(job, target)`: writes the export of `job` (an
            `ExportJob`) at `target`, a path with nothing there yet.
        load: `load(path, threads, **load_options)`: a `Runner` of the file.
        runtime: the runtime's name (what `Runner.runtime` reports).
        zoo_flag: `python -m zoo.export`'s flag for a path of this format.
        zoo_help: that flag's help.
        export_needs: the packages that write the file (TensorFlow aside).
        runtime_needs: the packages that run it.
        options: the `export` arguments that apply to this format only.
        check_options: `check_options(options, plan)`: those arguments
            checked (and calibration images read); None: nothing to check.
        load_options: the `runtimes.load` arguments that apply to it only.
        variants: the ways worth comparing (`benchmarks/deploy.py`'s rows).
    """

    name: str
    title: str
    row: str
    suffix: str | None
    members: tuple
    write: Callable
    load: Callable
    runtime: str
    zoo_flag: str
    zoo_help: str
    export_needs: tuple = ()
    runtime_needs: tuple = ()
    options: tuple = ()
    check_options: Callable | None = None
    load_options: tuple = ()
    variants: tuple = (Variant(""),)

    def describe_path(self):
        """What `path` must be, for messages."""
        return f"one {self.suffix} file" if self.suffix else f"a directory holding {' and '.join(self.members)}"


@dataclasses.dataclass
class Runner:
    """An exported file opened in its runtime; `runtimes.load` checks the
    images before calling `run`.

    Attributes:
        run: images (`input_dtype`, `input_shape`) -> float32 outputs.
        input_shape: the signature's shape, None for a dynamic dimension.
        input_dtype: the dtype `run` takes (a numpy dtype).
        output_shape: the output's shape, None for a dynamic dimension.
        metadata: what `export` recorded in the file (`METADATA_KEY`); {}
            for files written before it did, or by something else.
        runtime: the runtime's name.
        keep: whatever must stay alive while `run` is used.
    """

    run: Callable
    input_shape: tuple
    input_dtype: np.dtype
    output_shape: tuple
    metadata: dict
    runtime: str
    keep: object = None


@dataclasses.dataclass
class ExportJob:
    """What a format's `write` gets: the checked export."""

    plan: object  # keras_resnet.serving._Plan
    options: dict  # the format's own options, checked
    metadata: dict  # what the file records (`METADATA_KEY`)
    path: pathlib.Path  # where the export will be, once checked

    def image_spec(self, tf):
        return tf.TensorSpec((None, self.plan.height, self.plan.width, 3), tf.float32, name="images")

    def serving_model(self):
        """The serving graph as a Keras model, for Keras's exporters."""
        return self.plan.serving_model(keep_nan=self.metadata["nan_out"])


# --- SavedModel ----------------------------------------------------------

SAVED_MODEL_METADATA = pathlib.Path("assets.extra") / f"{METADATA_KEY}.json"


def _write_saved_model(job, target):
    job.plan.write_saved_model(target, **job.options)
    # assets.extra/ is where TF Serving looks for extra files (warm-up
    # requests); loaders ignore it.
    (pathlib.Path(target) / SAVED_MODEL_METADATA).parent.mkdir()
    (pathlib.Path(target) / SAVED_MODEL_METADATA).write_text(json.dumps(job.metadata))


def _check_saved_model_options(options, plan):
    from keras_resnet import specs

    checked = {"endpoints": ENDPOINTS if options.get("endpoints") is None
               else check_endpoints(options["endpoints"]),
               "verbose": specs.check_bool("verbose", options.get("verbose", False))}
    if "serve_bytes" in checked["endpoints"] and plan.image_size is None:
        raise ValueError(
            "The model takes images of any size, so the bytes signature "
            "needs a size to resize to: pass image_size=(height, width)."
        )
    return checked


def check_endpoints(endpoints):
    """The SavedModel's `endpoints` argument, checked.

    Args:
        endpoints: a non-empty list or tuple of distinct names from `ENDPOINTS`.

    Returns:
        The endpoints as a tuple.

    Raises:
        ValueError: anything else, naming what was received.
    """
    if isinstance(endpoints, str) or not isinstance(endpoints, (tuple, list)):
        endpoints_ok = False
    else:
        endpoints_ok = (
            len(endpoints) > 0
            and all(e in ENDPOINTS for e in endpoints)
            and len(set(endpoints)) == len(endpoints)
        )
    if not endpoints_ok:
        raise ValueError(
            f"`endpoints` must be a non-empty list of distinct names from {ENDPOINTS}. "
            f"Received endpoints={endpoints!r}."
        )
    return tuple(endpoints)


def _load_saved_model(path, threads):
    """The SavedModel's `serve` endpoint (else `serve_uint8`, else
    `serve_bytes`, fed PNG-encoded images). `threads` is TensorFlow's own
    setting (tf.config.threading), not one of the load."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    name = next(n for n in ("serve", "serve_uint8", "serve_bytes", "serving_default") if n in loaded.signatures)
    signature = loaded.signatures[name]
    (spec,) = signature.structured_input_signature[1].values()
    (key,) = [k for k in ("probabilities", "features") if k in signature.structured_outputs]
    output = signature.structured_outputs[key]
    if spec.dtype == tf.string:
        size = _saved_model_image_size(path)

        def run(images):
            encoded = [tf.io.encode_png(image).numpy() for image in images]
            return signature(image_bytes=tf.constant(encoded))[key].numpy()

        shape, dtype = (None, *size, 3), np.uint8
    else:
        def run(images):
            return signature(**{spec.name: tf.constant(images)})[key].numpy()

        shape, dtype = tuple(spec.shape), spec.dtype.as_numpy_dtype
    metadata = path / SAVED_MODEL_METADATA
    return Runner(run, shape, np.dtype(dtype), tuple(output.shape),
                  json.loads(metadata.read_text()) if metadata.is_file() else {},
                  "tensorflow (SavedModel)", keep=loaded)


def _saved_model_image_size(path):
    metadata = path / SAVED_MODEL_METADATA
    size = json.loads(metadata.read_text()).get("image_size") if metadata.is_file() else None
    if not size:
        raise ValueError(f"{str(path)!r} serves encoded images only, at a size it does not record.")
    return tuple(size)


# --- ONNX ----------------------------------------------------------------

def _write_onnx(job, target):
    import tensorflow as tf

    wrapper = job.serving_model()
    spec = job.image_spec(tf)
    wrapper.freeze(tf, spec)
    with warnings.catch_warnings():
        # Keras's numpy-2 patch of tf2onnx touches np.object.
        warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
        wrapper.export(target, format=ONNX, input_signature=[spec], verbose=False)
    _finish_onnx(target, job.metadata)


def _finish_onnx(path, metadata):
    """Names the dynamic dimensions tf2onnx calls unk__N (batch, height,
    width) and records `metadata`."""
    import onnx

    proto = onnx.load(path)
    for values, names in ((proto.graph.input, ("batch", "height", "width")), (proto.graph.output, ("batch",))):
        for value in values:
            for dim, name in zip(value.type.tensor_type.shape.dim, names):
                if not dim.HasField("dim_value"):
                    dim.dim_param = name
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
               "tensor(double)": np.float64, "tensor(float16)": np.float16}


def _load_onnx(path, threads):
    ort = require("onnxruntime", "Running ONNX files")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (value,), (output,) = session.get_inputs(), session.get_outputs()

    def run(images):
        return session.run(None, {value.name: images})[0]

    metadata = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    return Runner(run, _dims(value.shape), np.dtype(ONNX_DTYPES.get(value.type, np.float32)),
                  _dims(output.shape), json.loads(metadata) if metadata else {}, "onnxruntime",
                  keep=session)


def _dims(shape):
    """A runtime's shape as a tuple of ints, None for a dynamic dimension
    (ONNX names them, LiteRT says -1)."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in shape)


# --- LiteRT --------------------------------------------------------------

def _write_litert(job, target):
    import tensorflow as tf

    from keras_resnet import quantization

    quantization_ = job.options.get("quantization")
    calibration = job.options.get("calibration_images")
    io_dtype = job.options.get("io_dtype", "float32")
    job.serving_model().export(
        target, format=LITERT, input_signature=[job.image_spec(tf)], verbose=False,
        **quantization.converter_options(tf, quantization_, calibration, io_dtype),
    )
    if io_dtype == "uint8":
        quantization.check_uint8_input(target, calibration)
    quantization.add_metadata(target, METADATA_KEY, json.dumps(job.metadata).encode())


def _check_litert_options(options, plan):
    from keras_resnet import quantization

    return quantization.check_options(plan, **options)


def _load_litert(path, threads):
    litert = require("ai_edge_litert.interpreter", "Running LiteRT files")
    interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)
    runner = interpreter.get_signature_runner()
    ((name, value),) = runner.get_input_details().items()
    ((_, output),) = runner.get_output_details().items()
    scale, zero_point = output["quantization"]

    def run(images):
        (result,) = runner(**{name: images}).values()
        if output["dtype"] != np.float32:
            result = (result.astype(np.float32) - zero_point) * scale
        return result

    metadata = _litert_metadata(path)
    return Runner(run, _dims(value["shape_signature"]), np.dtype(value["dtype"]),
                  _dims(output["shape_signature"]), metadata, "ai-edge-litert", keep=interpreter)


def _litert_metadata(path):
    """The file's `METADATA_KEY` entry, read with the runtime's own schema."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(pathlib.Path(path).read_bytes(), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_KEY.encode():
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return {}


# --- OpenVINO ------------------------------------------------------------

def _write_openvino(job, target):
    import tensorflow as tf

    pathlib.Path(target).mkdir()
    xml = pathlib.Path(target) / OPENVINO_XML
    job.serving_model().export(str(xml), format=OPENVINO, input_signature=[job.image_spec(tf)], verbose=False)
    _add_openvino_metadata(xml, json.dumps(job.metadata))


def _add_openvino_metadata(xml, value):
    """Records `value` in the IR's <rt_info> (OpenVINO's `get_rt_info`)."""
    import xml.etree.ElementTree as ElementTree

    tree = ElementTree.parse(xml)
    info = tree.getroot().find("rt_info")
    if info is None:
        info = ElementTree.SubElement(tree.getroot(), "rt_info")
    ElementTree.SubElement(info, METADATA_KEY, value=value)
    tree.write(xml, encoding="utf-8", xml_declaration=True)


def _load_openvino(path, threads, precision="f32"):
    ov = require("openvino", "Running OpenVINO files")
    core = ov.Core()
    model = core.read_model(str(path / OPENVINO_XML))
    metadata = model.get_rt_info(METADATA_KEY).astype(str) if model.has_rt_info(METADATA_KEY) else None
    compiled = core.compile_model(
        model, "CPU", {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()

    def run(images):
        return request.infer({0: images})[compiled.output(0)].copy()

    def dims(port):
        return tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())

    return Runner(run, dims(compiled.input(0)), np.dtype(compiled.input(0).get_element_type().to_dtype()),
                  dims(compiled.output(0)), json.loads(metadata) if metadata else {},
                  f"openvino ({precision})", keep=compiled)


# --- The table -----------------------------------------------------------

ONNX_PACKAGE = Package("onnx", "onnx")
TF2ONNX = Package("tf2onnx", "tf2onnx")
ONNXRUNTIME = Package("onnxruntime", "onnxruntime")
AI_EDGE_LITERT = Package("ai-edge-litert", "ai_edge_litert.interpreter")
OPENVINO_PACKAGE = Package("openvino", "openvino")

TABLE = {fmt.name: fmt for fmt in (
    Format(
        name=SAVED_MODEL, title="SavedModel", row="SavedModel (TF)", suffix=None,
        members=("saved_model.pb",), write=_write_saved_model, load=_load_saved_model,
        runtime="tensorflow", zoo_flag="output", zoo_help="SavedModel directory to write.",
        options=("class_names", "top_k", "image_size", "endpoints", "verbose"),
        check_options=_check_saved_model_options,
        # The benchmark times `serve`; the other endpoints only cost export time.
        variants=(Variant("", {"endpoints": ("serve",)}),),
    ),
    Format(
        name=ONNX, title="ONNX", row="ONNX Runtime", suffix=".onnx", members=(),
        write=_write_onnx, load=_load_onnx, runtime="onnxruntime",
        zoo_flag="onnx", zoo_help="Write a .onnx file here (needs the deploy extra).",
        export_needs=(TF2ONNX, ONNX_PACKAGE), runtime_needs=(ONNXRUNTIME,),
    ),
    Format(
        name=LITERT, title="LiteRT", row="LiteRT", suffix=".tflite", members=(),
        write=_write_litert, load=_load_litert, runtime="ai-edge-litert",
        zoo_flag="tflite", zoo_help="Write a LiteRT .tflite file here (needs the deploy extra).",
        runtime_needs=(AI_EDGE_LITERT,),
        options=("quantization", "calibration_images", "io_dtype"),
        check_options=_check_litert_options,
        variants=(Variant("float32"), Variant("dynamic", {"quantization": "dynamic"}),
                  Variant("int8", {"quantization": "int8"})),
    ),
    Format(
        name=OPENVINO, title="OpenVINO", row="OpenVINO", suffix=None, members=(OPENVINO_XML, "model.bin"),
        write=_write_openvino, load=_load_openvino, runtime="openvino",
        zoo_flag="openvino",
        zoo_help="Write an OpenVINO IR directory (model.xml, model.bin) here (needs the deploy extra).",
        export_needs=(OPENVINO_PACKAGE,), runtime_needs=(OPENVINO_PACKAGE,),
        load_options=("precision",),
        variants=(Variant("f32"), Variant("bf16", load_options={"precision": "bf16"})),
    ),
)}
FORMATS = tuple(TABLE)


def deploy_packages():
    """What the `deploy` extra must list.

    Returns:
        The sorted PyPI names of every package the formats need to export
        or run their files, beyond the core dependencies.
    """
    return sorted({p.pip for fmt in TABLE.values() for p in fmt.export_needs + fmt.runtime_needs})


def format_named(format):
    """The table's entry for a format's name.

    Args:
        format: a name of `FORMATS`, e.g. "onnx".

    Returns:
        Its `Format`.

    Raises:
        ValueError: no format has that name; the message lists them.
    """
    if not isinstance(format, str) or format not in TABLE:
        raise ValueError(f"`format` must be one of {FORMATS}. Received format={format!r}.")
    return TABLE[format]


def format_of(path):
    """Which format an export at `path` is.

    Args:
        path: a file (known by its suffix) or a directory (known by its
            first member, e.g. model.xml).

    Returns:
        Its `Format`, or None.
    """
    path = pathlib.Path(path)
    for fmt in TABLE.values():
        if fmt.suffix is not None and path.suffix == fmt.suffix:
            return fmt
        if fmt.members and (path / fmt.members[0]).is_file():
            return fmt
    return None


def require(module, needed_by, alternative=""):
    """Imports a package of the `deploy` extra.

    Args:
        module: the module to import.
        needed_by: what needs it, for the message.
        alternative: another way out, for the message (e.g. "; or ...").

    Returns:
        The module.

    Raises:
        ImportError: it is not installed; the message names the extra.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{needed_by} needs the {module} package, which is not installed "
            f"({error}). Install the deploy extra: {DEPLOY_EXTRA}{alternative}."
        ) from error


# --- The arguments of an export ---------------------------------------

# Each format's own `export` arguments, and their defaults (not given).
OPTION_DEFAULTS = {"class_names": None, "top_k": None, "image_size": None, "endpoints": None,
                   "verbose": False, "quantization": None, "calibration_images": None,
                   "io_dtype": "float32"}


def format_options(fmt, options):
    """The format-specific arguments of an export that were given.

    Args:
        fmt: the `Format` exported.
        options: {name: value} of every name of `OPTION_DEFAULTS`.

    Returns:
        {name: value} of those given (not their default) that belong to `fmt`.

    Raises:
        ValueError: one that belongs to another format, naming it and its format.
    """
    given = {name: value for name, value in options.items() if _given(name, value)}
    for owner in TABLE.values():
        foreign = [f"`{name}`" for name in owner.options if name in given and owner is not fmt]
        if foreign:
            where = ("the SavedModel (format='tf_saved_model')" if owner.name == SAVED_MODEL
                     else f"format={owner.name!r}")
            raise ValueError(
                f"{', '.join(foreign)} {'applies' if len(foreign) == 1 else 'apply'} to {where} "
                f"only (the options that apply to {where} only: "
                f"{', '.join(f'`{o}`' for o in owner.options)}). Received "
                f"{'it' if len(foreign) == 1 else 'them'} with format={fmt.name!r}."
            )
    return {name: value for name, value in given.items() if name in fmt.options}


def _given(name, value):
    default = OPTION_DEFAULTS[name]
    if default is None or default is False:
        return value is not default
    return not (isinstance(value, str) and value == default)


def check_path(path, fmt, overwrite):
    """Where an export of format `fmt` goes, checked before anything is written.

    Args:
        path: a str or os.PathLike; `~` is expanded.
        fmt: the `Format`: a file format wants its suffix, a directory
            format no file suffix.
        overwrite: whether an occupied `path` may be replaced.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ValueError: a path of the wrong kind, naming it (and the format its
            suffix suggests).
        FileExistsError: `path` is occupied and `overwrite` is False.
    """
    from keras_resnet import specs

    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"`path` must be a str or os.PathLike. Received path={path!r}.")
    path = pathlib.Path(path).expanduser()
    if fmt.suffix is not None and path.suffix != fmt.suffix:
        raise ValueError(
            f"format={fmt.name!r} writes {fmt.describe_path()}: `path` must end with "
            f"'{fmt.suffix}'. Received path={str(path)!r}.{_other_format_hint(path)}"
        )
    file_suffixes = {other.suffix for other in TABLE.values()} | {
        pathlib.Path(member).suffix for other in TABLE.values() for member in other.members}
    if fmt.suffix is None and path.suffix in file_suffixes - {None}:
        raise ValueError(
            f"format={fmt.name!r} writes {fmt.describe_path()}: pass the directory. "
            f"Received path={str(path)!r}.{_other_format_hint(path)}"
        )
    overwrite = specs.check_bool("overwrite", overwrite)
    if atomic.occupied(path) and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} exists and is not an empty directory; pass "
            "overwrite=True to replace it. Nothing was written."
        )
    return path


def _other_format_hint(path):
    fmt = format_of(path) if pathlib.Path(path).suffix else None
    return f" For {fmt.describe_path()}, pass format={fmt.name!r}." if fmt is not None else ""


def require_packages(fmt, verify):
    """Imports what `fmt` needs to export its files (and, with `verify`, to
    run them).

    Args:
        fmt: the `Format`.
        verify: whether the file will be checked in its runtime.

    Raises:
        ImportError: a package is missing, naming the deploy extra (and
            verify=False, for the runtime).
    """
    for package in fmt.export_needs:
        require(package.module, f"format={fmt.name!r}")
    for package in fmt.runtime_needs if verify else ():
        if package not in fmt.export_needs:
            require(package.module, f"format={fmt.name!r} (to check the file it writes in its runtime)",
                    "; or pass verify=False to write it unchecked")


def metadata(fmt, plan, options):
    """What a file records under `METADATA_KEY`: what it takes and gives.

    Args:
        fmt: its `Format`.
        plan: the checked export (`keras_resnet.serving._Plan`).
        options: the format's checked options.

    Returns:
        A JSON-able dict: keras_resnet's version, format, quantization,
        raw_pixels (takes raw 0..255 pixels), nan_out (NaN in gives NaN
        out), image_size, output, and the model's compute dtypes.
    """
    from keras_resnet import __version__

    quantization = options.get("quantization")
    return {
        "keras_resnet": __version__, "format": fmt.name, "quantization": quantization,
        # uint8 inputs are the raw pixel (LiteRT: scale 1, zero point 0,
        # checked), and so are a SavedModel's without the float `serve`.
        "raw_pixels": bool(plan.raw_pixels or options.get("io_dtype") == "uint8"
                           or "serve" not in options.get("endpoints", ("serve",))),
        "nan_out": quantization != "int8",
        "image_size": list(plan.image_size) if plan.image_size else None,
        "output": "features" if plan.head == "features" else "probabilities",
        "computed_in": "float32",
        "model_compute_dtypes": plan.half_precision or ["float32"],
    }
