"""SavedModel export with serving signatures, and the graph every export serves.

`keras_resnet.export` and `keras_resnet.export_tflite` live in
`keras_resnet.export_formats`; every format (`keras_resnet.formats`) is
written by `write_export` here, from the checked arguments of an export
(`_Plan`) and the graph they serve (`serve_outputs`), and checked in its
runtime before it is declared written (`keras_resnet.export_check`). This
module is named `serving` so that no function shadows a module of the
same name.

`export(model, path)` writes a TF SavedModel, ready for TF Serving, through
Keras 3's `keras.export.ExportArchive`. It has three endpoints, each one a
signature of the SavedModel:

    serve / serving_default   images, float32 (batch, H, W, 3)
    serve_uint8               images, uint8   (batch, H, W, 3)
    serve_bytes               image_bytes, string (batch,): encoded JPEG,
                              PNG, GIF or BMP files, decoded, resized to the
                              model's H x W (aspect not kept) and fed in

Images are RGB, channels last, with the pixel values the model was trained
on (0..255 for zoo models, which carry their preprocessing inside). Each
endpoint of a classifier returns

    probabilities   float32 (batch, classes)
    top_k_ids       int32   (batch, k)   class ids, most probable first
    top_k_scores    float32 (batch, k)   their probabilities
    top_k_names     string  (batch, k)   their names, when `class_names`
                                         is given or the model was built
                                         with a preset

and a model without a classifier (`include_top=False`) returns `features`.
A classifier with `classifier_activation=None` (logits) gets a softmax, so
`probabilities` are always probabilities.

An image with a NaN or infinite pixel gets NaN outputs (probabilities,
scores, features) from every endpoint, and a model whose weights are not all
finite (or a model with no weights) is refused. All endpoints share one
traced function of the model, so a deep model is traced once.

The ONNX, LiteRT and OpenVINO exports (`keras_resnet.export_formats`) are
the `serve` graph alone (`serve_outputs`: probabilities only). A model
built under a mixed-precision policy is exported as its float32
computation (`float32_computation`).

This module needs the TensorFlow backend and imports TensorFlow only when
called, so `import keras_resnet` works without TensorFlow.
"""

import collections
import collections.abc

import keras
import numpy as np

from keras_resnet import export_check
from keras_resnet import formats
from keras_resnet import labels
from keras_resnet import specs
from keras_resnet.formats import ENDPOINTS
from keras_resnet.fold import fold_batchnorm as fold_batchnorm_fn
from keras_resnet.architecture import check_graph_model
from keras_resnet.model_classes import recursion_headroom

DEFAULT_TOP_K = 5
HALF_PRECISION = {"bfloat16", "float16"}


def export(
    model,
    path,
    *,
    class_names=None,
    preprocessing=None,
    top_k=None,
    image_size=None,
    fold_batchnorm=False,
    endpoints=ENDPOINTS,
    overwrite=False,
    verbose=False,
    raw_pixels=None,
    verify=True,
):
    """Writes `model` as a TF SavedModel with serving signatures.

    `keras_resnet.export(model, path)` (format="tf_saved_model", its
    default) writes the same. Reload it with
    `tf.saved_model.load(path)` (call `.serve(images)` or
    `.signatures["serving_default"](images=...)`) or with
    `keras.layers.TFSMLayer(path, call_endpoint="serve")`.

    Args:
        model: a `keras.Model` with one image input, e.g. from
            `keras_resnet.ResNet` or a zoo run's `model.keras`.
        path: the SavedModel directory to write. It is written to a
            temporary directory next to it and renamed into place, so an
            interrupted export leaves no half-written SavedModel.
        class_names: optional list (or tuple, or 1-d numpy array) of
            `classes` distinct strings, index = class id; adds the
            `top_k_names` output. A str, dict or set is refused: it has
            characters or no order, not names by class id. None (the
            default): the names of the preset the model was built with
            (`keras_resnet.labels.export_class_names`: ImageNet-1k's two
            names that two classes share get their WordNet ids), or no
            names for any other model.
        preprocessing: what turns the served images into the model's input,
            baked into every endpoint: None (the identity: the model already
            takes raw images, as zoo models do), or a callable on a float32
            (batch, H, W, 3) tensor, e.g. a Keras layer such as
            `keras.layers.Normalization(mean=[125.3, 123.0, 113.9],
            variance=[63.0**2, 62.1**2, 66.7**2])` or
            `keras.layers.Rescaling(1 / 255)`.
        top_k: how many class ids to return; default `min(5, classes)`.
        image_size: (height, width) that `serve_bytes` resizes to. Defaults
            to the model's input size; required when the model takes any
            size (input_shape with None height or width).
        fold_batchnorm: export the inference graph with every BN folded
            into its conv (see `keras_resnet.fold.fold_batchnorm`).
        endpoints: which of "serve", "serve_uint8" and "serve_bytes" to
            write (all by default). The first one is also `serving_default`.
            Each endpoint captures every variable, so on a very deep model
            (ResNet-1202) each one adds noticeably to export and load time.
        overwrite: replace an existing non-empty `path`.
        verbose: print the endpoints Keras wrote.
        raw_pixels, verify: as in `keras_resnet.export`: whether the
            SavedModel takes raw 0..255 pixels, and the check of the
            SavedModel against Keras before it is declared written.

    Returns:
        The path written, as a string.

    Raises:
        FileExistsError: `path` exists, is not an empty directory, and
            `overwrite` is False. The existing export is left intact.
        ValueError: for a bad argument, naming the value received.
    """
    options = {"class_names": class_names, "top_k": top_k, "image_size": image_size,
               "endpoints": endpoints, "verbose": verbose}
    return write_export(formats.TABLE[formats.SAVED_MODEL], model, path, options,
                        preprocessing=preprocessing, fold_batchnorm=fold_batchnorm,
                        overwrite=overwrite, raw_pixels=raw_pixels, verify=verify)


def write_export(fmt, model, path, options, *, preprocessing=None, fold_batchnorm=False,
                 overwrite=False, raw_pixels=None, verify=True):
    """Writes `model` in format `fmt` at `path`, checked in its runtime.

    What `keras_resnet.export` and `export` here do once they know the
    format.

    Args:
        fmt: the `formats.Format`.
        model: a `keras.Model` with one image input.
        path: where the export goes.
        options: the format's own arguments given (`formats.format_options`:
            another format's refused already).
        preprocessing, fold_batchnorm, overwrite, raw_pixels, verify: as in
            `keras_resnet.export`.

    Returns:
        The path written, as a string.

    Raises:
        FileExistsError, ValueError, ImportError, ExportCheckError, OSError:
            as `keras_resnet.export` raises them.
    """
    path = formats.check_path(path, fmt, overwrite)
    verify = specs.check_bool("verify", verify)
    formats.require_packages(fmt, verify)
    _tensorflow()
    options = dict(options)
    class_names = options.pop("class_names", None)
    if class_names is None and "class_names" in fmt.options:
        class_names = labels.export_class_names(model)  # a preset model's, by default
    plan = _Plan(model, class_names, preprocessing, options.pop("top_k", None),
                 options.pop("image_size", None), fold_batchnorm, raw_pixels)
    if fmt.check_options is not None:
        options = fmt.check_options(options, plan)
    export_check.write(fmt, plan, options, path, overwrite, verify)
    return str(path)


class _Plan:
    """The checked arguments of an export, and what the model looks like."""

    def __init__(self, model, class_names, preprocessing, top_k, image_size, fold, raw_pixels=None):
        check_graph_model(model)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(
                "`model` must have one image input and one output. Received a model "
                f"with {len(model.inputs)} inputs and {len(model.outputs)} outputs."
            )
        fold = specs.check_bool("fold_batchnorm", fold)
        if preprocessing is not None and not callable(preprocessing):
            raise ValueError(
                "`preprocessing` must be None or a callable on float32 images "
                f"(e.g. a Keras layer). Received preprocessing={preprocessing!r}."
            )
        if raw_pixels is not None:
            raw_pixels = specs.check_bool("raw_pixels", raw_pixels)

        shape = tuple(model.inputs[0].shape)
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise ValueError(
                "`model` must take images (batch, H, W, 3) or (batch, 3, H, W). "
                f"Received a model with input shape {shape}."
            )
        self.channels_first = shape[3] != 3
        self.height, self.width = (shape[2], shape[3]) if self.channels_first else shape[1:3]
        self.input_dtype = model.inputs[0].dtype
        self.image_size = self._check_image_size(image_size)

        # Every exporter and runtime gets the float32 computation: a
        # mixed-precision graph (bfloat16 or float16 inside) gives files that
        # do not load (ONNX), do not convert (LiteRT) or do not compile
        # (OpenVINO).
        self.half_precision = sorted(_compute_dtypes(model) & HALF_PRECISION)
        self.preprocessing = float32_computation(preprocessing, (None, self.height, self.width, 3))
        model = float32_computation(model)
        self.model = fold_batchnorm_fn(model) if fold else model
        _check_finite_weights(self.model)
        self.raw_pixels = raw_pixels if raw_pixels is not None else (
            preprocessing is not None or _begins_with_pixel_preprocessing(model))

        self.head = _head(model)
        self.classes = model.outputs[0].shape[-1] if self.head != "features" else None
        self.class_names = self._check_class_names(class_names)
        self.top_k = self._check_top_k(top_k)

    def serving_model(self, keep_nan=True):
        """The serving graph (`serve_outputs`) as a Keras model, for Keras's
        exporters."""
        return ServingModel(self, keep_nan=keep_nan)

    def write_saved_model(self, target, endpoints=ENDPOINTS, verbose=False):
        """Writes the SavedModel into directory `target`, with `endpoints`
        (checked: `formats.check_endpoints`)."""
        archive = _archive(_tensorflow(), self, endpoints=endpoints)
        archive.write_out(target, verbose=verbose)

    def keras_reference(self, images):
        """(served outputs, logits or None) of float32 `images`, from one
        eager pass of Keras (TensorFlow): what every export is checked
        against, and a classifier's logits, the scale of its rounding errors.

        The probabilities are the softmax of the logits (in float64), and
        an image with a NaN or infinite pixel gets NaN outputs, as served.
        A softmax layer of its own (no logits at hand) gives the served
        graph's outputs and None.
        """
        tf = _tensorflow()
        last = _last_layer(self.model)
        softmax_inside = getattr(last, "activation", None) is keras.activations.softmax
        if self.head == "probabilities" and not softmax_inside:
            (output,) = serve_outputs(tf, self, tf.constant(images)).values()
            return output.numpy(), None
        x = _model_input(tf, self, tf.constant(images))
        if self.head == "probabilities":
            last.activation = keras.activations.linear  # for this one eager call
        try:
            y = self.model(x, training=False).numpy()
        finally:
            if self.head == "probabilities":
                last.activation = keras.activations.softmax
        nan_images = ~np.isfinite(images).reshape(len(images), -1).all(axis=1)
        if self.head == "features":
            outputs, logits = y.astype(np.float32), None
        else:
            logits = y.astype(np.float64)
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            outputs = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        outputs[nan_images] = np.nan
        return outputs, logits

    def _check_image_size(self, image_size):
        fixed = (self.height, self.width)
        if image_size is None:
            return fixed if None not in fixed else None
        if isinstance(image_size, (tuple, list)):  # numpy ints are ints too.
            image_size = type(image_size)(specs.integer_or_same(d) for d in image_size)
        if (
            not isinstance(image_size, (tuple, list))
            or len(image_size) != 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in image_size)
        ):
            raise ValueError(
                "`image_size` must be (height, width), two positive ints. "
                f"Received image_size={image_size!r}."
            )
        for got, want in zip(image_size, fixed):
            if want is not None and got != want:
                raise ValueError(
                    f"`image_size`={tuple(image_size)} contradicts the model's fixed "
                    f"input size {fixed}. Leave it None, or export a model built "
                    "with input_shape=(None, None, 3)."
                )
        return tuple(image_size)

    def _check_class_names(self, class_names):
        if class_names is None:
            return None
        if self.head == "features":
            raise ValueError(
                "`class_names` needs a classifier, but the model has no "
                "softmax or logits output (was it built with include_top=False?)."
            )
        expected = (
            f"`class_names` must be a list of {self.classes} strings (distinct, one per "
            "class, in class-id order)"
        )
        # A str or bytes is a sequence of characters, and a dict or set has
        # no class order: each would be served as names, silently wrong.
        if isinstance(class_names, (str, bytes)) or not isinstance(
            class_names, (collections.abc.Sequence, np.ndarray)
        ):
            raise ValueError(f"{expected}. Received {_kind(class_names)}: {class_names!r:.200}.")
        names = list(np.asarray(class_names).tolist() if isinstance(class_names, np.ndarray) else class_names)
        if len(names) != self.classes or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{expected}. Received {len(names)} entries: {names[:12]!r}.")
        counts = collections.Counter(names)
        repeated = sorted({n for n in names if counts[n] > 1})
        if repeated:
            raise ValueError(f"{expected}. Received names {repeated[:5]!r} for more than one class.")
        return names

    def _check_top_k(self, top_k):
        if self.head == "features":
            return None
        if top_k is None:
            return min(DEFAULT_TOP_K, self.classes)
        top_k = specs.integer_or_same(top_k)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= self.classes:
            raise ValueError(
                f"`top_k` must be an int in [1, {self.classes}] (the model's classes). "
                f"Received top_k={top_k!r}."
            )
        return top_k


def float32_computation(layer, input_shape=None):
    """`layer` (a model, or a layer given its `input_shape`) computing in
    float32: itself if it does, else a copy with every bfloat16 or float16
    layer made float32, and the same weights.

    Under `mixed_bfloat16` / `mixed_float16` the variables are float32
    already, so the copy computes what the model computes, without the
    rounding to 16 bits between layers. A layer quantized by Keras
    (`model.quantize(...)`) is refused: its integer kernels have no float32
    computation to export; export the float model and quantize the file
    (format="litert", quantization="int8").
    """
    if not isinstance(layer, keras.layers.Layer):
        return layer  # None, or a plain callable: it runs on float32 tensors.
    layers = [layer, *layer._flatten_layers(include_self=False, recursive=True)]
    quantized = sorted({l.dtype_policy.name for l in layers if l.dtype_policy.quantization_mode})
    if quantized:
        raise ValueError(
            f"`model` has layers quantized by Keras (dtype policies {quantized}), which have "
            "no float32 computation to export. Export the float model, and quantize the "
            "file instead: format='litert', quantization='int8' (or 'dynamic')."
        )
    if not _compute_dtypes(layer) & HALF_PRECISION:
        return layer

    def as_float32(original):
        config = original.get_config()
        if original.dtype_policy.compute_dtype in HALF_PRECISION:
            config["dtype"] = "float32"
        return original.__class__.from_config(config)

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # for the models clone_model makes
    try:
        with recursion_headroom():
            if isinstance(layer, keras.Model):
                copy = keras.models.clone_model(layer, clone_function=as_float32, recursive=True)
            else:
                copy = as_float32(layer)
                copy.build(input_shape)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights([np.asarray(keras.ops.convert_to_numpy(w), np.float32) for w in layer.weights])
    return copy


def _compute_dtypes(layer):
    """The compute dtypes of `layer` and every layer inside it."""
    if not isinstance(layer, keras.layers.Layer):
        return set()
    layers = [layer, *layer._flatten_layers(include_self=False, recursive=True)]
    return {l.dtype_policy.compute_dtype for l in layers if not isinstance(l, keras.layers.InputLayer)}


# The layers that turn raw pixels into a net's input, when they come first.
def _pixel_preprocessing_layers():
    from keras_resnet.preprocessing import Preprocessing

    return (Preprocessing, keras.layers.Rescaling, keras.layers.Normalization)


def _begins_with_pixel_preprocessing(model):
    """Whether the layer reading `model`'s input (inside nested models too)
    turns raw pixels into the net's input: keras_resnet's `Preprocessing`
    (`include_preprocessing=True`), or Keras's `Rescaling` or
    `Normalization` (a zoo model's per-pixel mean)."""
    while isinstance(model, keras.Model):
        if isinstance(model, keras.Sequential):
            model = model.layers[0] if model.layers else None
            continue
        first = model.layers[0] if model.layers else None
        if not isinstance(first, keras.layers.InputLayer):
            return False
        readers = [node.operation for node in first._outbound_nodes
                   if isinstance(node.operation, keras.layers.Layer)]
        if len(readers) != 1:
            return False
        model = readers[0]
    return isinstance(model, _pixel_preprocessing_layers())


def _kind(value):
    return {str: "a str", bytes: "a bytes"}.get(type(value)) or (
        "a dict" if isinstance(value, collections.abc.Mapping) else
        "a set" if isinstance(value, collections.abc.Set) else f"a {type(value).__name__}")


def nonfinite_weights(model):
    """The paths of `model`'s weight tensors that hold NaN or infinite values
    (e.g. ["conv1_conv/kernel"]); empty if all are finite."""
    return [w.path for w in model.weights if not np.isfinite(keras.ops.convert_to_numpy(w)).all()]


def _check_finite_weights(model):
    """Refuses a model with no weights, or NaN or infinite ones: its answers
    would be noise."""
    if not model.weights:
        raise ValueError(
            f"`model` {model.name!r} has no weights (no layer with parameters, or never "
            "built), so there is nothing trained to export. Export the trained model, "
            "e.g. a zoo run's model.keras."
        )
    bad = nonfinite_weights(model)
    if bad:
        raise ValueError(
            f"`model` has {len(bad)} weight tensors with NaN or infinite values "
            f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}), so its outputs "
            "would be meaningless; nothing was exported. Did training diverge? "
            "Export a checkpoint from before the divergence."
        )


def _last_layer(model):
    """The layer that computes `model`'s output (inside nested models too)."""
    layer = model
    while isinstance(layer, keras.Model):
        layer = layer.outputs[0]._keras_history.operation
    return layer


def _head(model):
    """"probabilities", "logits" or "features": what the model outputs."""
    if len(model.outputs[0].shape) != 2:
        return "features"
    layer = _last_layer(model)
    if isinstance(layer, keras.layers.Softmax):
        return "probabilities"
    activation = getattr(layer, "activation", None)
    if activation is keras.activations.softmax:
        return "probabilities"
    if isinstance(layer, keras.layers.Dense) and activation is keras.activations.linear:
        return "logits"
    return "features"


def _archive(tf, plan, endpoints):
    """An ExportArchive whose endpoints share one traced model call."""
    archive = keras.export.ExportArchive()
    # The endpoints' variables are saved without `track()`: add_endpoint
    # collects every variable they use. `track()` is only needed for lookup
    # tables, and on a deep model its walk of every layer's trackables costs
    # more than tracing the model, so only the (small) preprocessing layer,
    # which could hold such a table, is tracked.
    if isinstance(plan.preprocessing, keras.layers.Layer):
        if not plan.preprocessing.built:
            plan.preprocessing.build((None, plan.height, plan.width, 3))
        archive.track(plan.preprocessing)
    image_spec = tf.TensorSpec((None, plan.height, plan.width, 3), tf.float32, name="images")

    with recursion_headroom():

        @tf.function(input_signature=[image_spec], autograph=False)
        def classify(images):
            outputs = serve_outputs(tf, plan, images)
            if plan.head != "features":
                scores, ids = tf.math.top_k(outputs["probabilities"], k=plan.top_k)
                outputs["top_k_ids"] = ids
                outputs["top_k_scores"] = scores
                if plan.class_names is not None:
                    outputs["top_k_names"] = tf.gather(tf.constant(plan.class_names), ids)
            return outputs

        def serve(images):
            return classify(images)

        def serve_uint8(images):
            return classify(tf.cast(images, tf.float32))

        def serve_bytes(image_bytes):
            return classify(_decode_images(tf, image_bytes, plan.image_size))

        signatures = {
            "serve": (serve, image_spec),
            "serve_uint8": (serve_uint8, tf.TensorSpec(image_spec.shape, tf.uint8, name="images")),
            "serve_bytes": (serve_bytes, tf.TensorSpec((None,), tf.string, name="image_bytes")),
        }
        for name in endpoints:
            fn, spec = signatures[name]
            # Traced here, once: given an input_signature, ExportArchive
            # would trace each endpoint again when it writes the signatures.
            endpoint = tf.function(fn, input_signature=[spec], autograph=False)
            endpoint.get_concrete_function()
            archive.add_endpoint(name, endpoint)
    return archive


def serve_outputs(tf, plan, images, keep_nan=True):
    """The graph every export serves: float32 images in, a dict out.

    {"probabilities": float32 (batch, classes)} for a classifier (a softmax
    added to logits), {"features": ...} for a model without one. The
    SavedModel endpoints add top-k to it; the ONNX, LiteRT and OpenVINO
    exports (keras_resnet.export_formats) are this graph alone.

    Args:
        tf: the tensorflow module.
        plan: the checked export arguments (`_Plan`).
        images: float32 (batch, H, W, 3), channels last.
        keep_nan: give every output of an image with a NaN or infinite
            pixel NaN. False only for full-integer graphs, which have no NaN.
    """
    y = plan.model(_model_input(tf, plan, images), training=False)
    if keep_nan:
        # NaN for every output of an image with a NaN or infinite pixel,
        # 0 otherwise. A folded conv+bias+ReLU (and any other kernel
        # TensorFlow fuses with a ReLU on oneDNN CPUs) maps NaN to 0, so
        # without this such an image could get a confident answer.
        poison = tf.reduce_sum(images - images, axis=[1, 2, 3])
        y = y + tf.reshape(tf.cast(poison, y.dtype), [-1] + [1] * (len(y.shape) - 1))
    if plan.head == "features":
        return {"features": y}
    probabilities = tf.nn.softmax(y) if plan.head == "logits" else y
    return {"probabilities": tf.cast(probabilities, tf.float32)}


def _model_input(tf, plan, images):
    """The served float32 images as the model's input: shape checked,
    preprocessed, channels first if the model wants them so, its dtype."""
    # A SavedModel signature call does not check shapes, so a wrong rank
    # would fail deep in the first conv; fail here, by name.
    shape = (None, plan.height, plan.width, 3)
    x = tf.ensure_shape(images, shape, name="check_images_shape")
    if plan.preprocessing is not None:
        x = plan.preprocessing(x)
    if plan.channels_first:
        x = tf.transpose(x, [0, 3, 1, 2])
    if x.dtype != plan.input_dtype:
        x = tf.cast(x, plan.input_dtype)
    return x


class ServingModel(keras.Model):
    """`serve_outputs` of a plan as a Keras model, for Keras's exporters
    (ONNX, LiteRT, OpenVINO), which export a model's `call()`."""

    def __init__(self, plan, keep_nan=True):
        # float32 whatever the global policy: under mixed precision Keras
        # would cast the images to bfloat16 on their way into call().
        super().__init__(name=f"{plan.model.name}_serving", dtype="float32")
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

        return serve_outputs(tf, self.plan, images, keep_nan=self.keep_nan)

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


def _decode_images(tf, image_bytes, image_size):
    """Decodes a batch of encoded images to float32 (batch, H, W, 3)."""
    height, width = image_size

    def decode(data):
        # decode_image raises InvalidArgumentError on data it cannot decode
        # (unknown format, truncated or corrupt JPEG/PNG); the request fails,
        # the server does not.
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width))
        return tf.ensure_shape(image, (height, width, 3))

    return tf.map_fn(
        decode,
        image_bytes,
        fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
    )


def _tensorflow():
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "keras_resnet.export writes TF SavedModels and needs the TensorFlow "
            f"backend (KERAS_BACKEND=tensorflow). Current backend: "
            f"{keras.backend.backend()!r}."
        )
    import tensorflow as tf

    return tf
