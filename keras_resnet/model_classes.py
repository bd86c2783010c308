"""The functional models `ResNet` returns: `ResNetModel` (whose `predict`
checks its images first) and `DeepResNet` (a graph too deep for Keras's
default recursion limit), and `recursion_headroom`, the limit raised."""

import contextlib
import dataclasses
import json
import sys

import keras
import numpy as np

from keras_resnet import fast_predict
from keras_resnet import preprocessing
from keras_resnet.architecture import Architecture

_RECURSION_LIMIT = 50_000


@contextlib.contextmanager
def recursion_headroom(limit=_RECURSION_LIMIT):
    """Raises Python's recursion limit to at least `limit` inside the block.

    Python 3.11+ keeps pure-Python frames off the C stack, so a deep but
    finite recursion such as Keras's graph walk is safe with a higher limit.
    The old limit is restored on exit.

    Args:
        limit: the lowest recursion limit inside the block.

    Returns:
        A context manager (`with keras_resnet.recursion_headroom(): ...`).
    """
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@keras.saving.register_keras_serializable(package="keras_resnet")
class ResNetModel(keras.Model):
    """The functional model `ResNet` returns; its `predict` checks arrays first.

    Identical to `keras.Model(inputs, outputs)` (same layers, weights,
    saving), except for its architecture record (below) and that `predict`
    on an array or tensor checks it before Keras sees it:

    - no images (a batch of 0) give no predictions, an empty array of the
      output's shape (Keras's predict loop raises UnboundLocalError);
    - one image without its batch axis, or images of another size than the
      model's fixed `input_shape`, are refused by name. (Once `predict` has
      run on two sizes, Keras's traced function relaxes its input shape:
      after that it ran a 32x32 model on 64x64 images without a word.)
    - with `include_preprocessing=True`, pixels outside 0..255 are refused
      as in an eager call (`keras_resnet.preprocessing.check_pixels`).
    - built with preset weights and without `include_preprocessing=True`,
      values that no preprocessed image can have (raw pixels 0..255 where
      the preset's normalised pixels stay within a few units) are refused,
      naming both fixes, in `predict` and in eager calls (`model(x)`);
      `keras_resnet.preprocessing.check_preprocessed` says how the bound is
      derived. NaN and infinities pass (NaN in, NaN out).

    Datasets and generators go to Keras unchecked, and so do values inside
    a compiled graph (`fit`, `evaluate`, exports). Wrap your own functional
    model in it (`ResNetModel(inputs, outputs)`) for the same checks.

    Its config is the functional graph's plus, for a model `ResNet` built,
    `"architecture"`: the record `keras_resnet.architecture_of` reads
    (`keras_resnet.architecture.Architecture.to_config`). `.keras` files
    keep it; a model made another way (`keras.models.clone_model`,
    `fold_batchnorm`, your own `ResNetModel(inputs, outputs)`) has none, and
    `architecture_of` reads its layer names instead.

    Args:
        inputs, outputs, name: as for `keras.Model(inputs, outputs, name)`.
        architecture: the architecture record, a dict; None for none.
    """

    # The positional arguments must be Functional's, (inputs, outputs,
    # name), for Keras to save and clone the graph rather than a subclassed
    # model; the record is keyword-only.
    def __init__(self, inputs, outputs, name=None, *, architecture=None, **kwargs):
        super().__init__(inputs, outputs, name=name, **kwargs)
        if architecture is not None:
            architecture = Architecture.from_config(architecture).to_config()  # checked
        # Kept as text: immutable, and out of Keras's attribute tracking
        # (which would wrap its dicts).
        self._architecture_json = None if architecture is None else json.dumps(architecture)
        self._expected_input = _expected_input(architecture)

    @property
    def architecture_record(self):
        """The architecture record (a dict; see `get_config`), or None."""
        return None if self._architecture_json is None else json.loads(self._architecture_json)

    def get_config(self):
        config = super().get_config()
        if self._architecture_json is None:
            return config
        # First, so that the start of a saved config (and of the error Keras
        # raises when it loads one without keras_resnet) says what the net is.
        return {"architecture": self.architecture_record, **config}

    def call(self, inputs, training=None, mask=None, **kwargs):
        _check_expected_input(self, inputs)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`, after the checks of the images (see the class).

        Images in memory (a numpy array or a tensor of the backend) skip
        Keras's per-call data adapter: each batch goes straight to the
        compiled function Keras's predict calls, with the same results,
        return types and progress bar (`keras_resnet.fast_predict`: one
        image through ResNet-20 takes about 4 ms, not 70-140). Datasets, generators,
        `callbacks` and `steps` go to Keras's predict.

        Args:
            x: images (batch, H, W, 3), or anything Keras's predict takes.
            *args: Keras's `batch_size`, `verbose`, `steps`, `callbacks`.
            **kwargs: the same, by name.

        Returns:
            The model's outputs for `x`, numpy arrays.

        Raises:
            ValueError: images of the wrong shape, or pixels out of range
                (see the class).
        """
        empty = _check_images(self, x)
        if empty is not None:
            return empty
        outputs = fast_predict.predict_in_memory(self, x, *args, **kwargs)
        if outputs is not fast_predict.NOT_HANDLED:
            return outputs
        return super().predict(x, *args, **kwargs)


@dataclasses.dataclass(frozen=True)
class _ExpectedInput:
    """What a record says a model's input must be: preprocessed with `mode`."""

    mode: object
    data_format: str
    weights: str
    depth: int


def _expected_input(record):
    if record is None or record.get("input_preprocessing") is None:
        return None
    return _ExpectedInput(
        record["input_preprocessing"], record["data_format"], record["weights"], record["depth"])


def _check_expected_input(model, x):
    """Refuses values that cannot be the preprocessed input a preset expects."""
    expected = getattr(model, "_expected_input", None)
    if expected is None:
        return
    preprocessing.check_preprocessed(
        x, expected.mode, data_format=expected.data_format, described=f"Model {model.name!r}",
        weights=expected.weights, depth=expected.depth)


def _check_images(model, x):
    """Checks images given to `predict`; returns the empty result for 0 images."""
    shape = getattr(x, "shape", None)
    if shape is None or len(model.inputs) != 1 or isinstance(x, keras.KerasTensor):
        return None  # a dataset, a generator, several inputs: Keras's to handle
    shape, expected = tuple(shape), tuple(model.inputs[0].shape)
    described = "x".join(str(d) for d in expected[1:])
    if len(shape) != len(expected):
        single = len(shape) == len(expected) - 1 and all(
            want is None or got == want for got, want in zip(shape, expected[1:]))
        hint = " One image without its batch axis? Pass x[None]." if single else ""
        raise ValueError(
            f"predict takes a batch of images, shape {expected} for model {model.name!r}; "
            f"received an array of shape {shape}.{hint}"
        )
    if any(want is not None and got != want for got, want in zip(shape[1:], expected[1:])):
        raise ValueError(
            f"Model {model.name!r} takes {described} images (batch, {', '.join(map(str, expected[1:]))}); "
            f"received shape {shape}. Resize them, or build the model with input_shape=(None, None, 3) "
            "(channels_last) to take any size."
        )
    if any(isinstance(layer, preprocessing.Preprocessing) for layer in model.layers):
        preprocessing.check_pixels(x, f"Model {model.name!r} (with its preprocessing inside)")
    _check_expected_input(model, x)
    if shape[0] != 0:
        return None
    with recursion_headroom():
        spec = model.compute_output_spec(keras.KerasTensor((1,) + shape[1:], dtype=model.inputs[0].dtype))
    return np.zeros((0,) + tuple(spec.shape[1:]), keras.backend.standardize_dtype(spec.dtype))


@keras.saving.register_keras_serializable(package="keras_resnet")
class DeepResNet(ResNetModel):
    """A functional model whose graph is too deep for Keras's default walk.

    Identical to `ResNetModel(inputs, outputs)` (same layers, config and
    weights), except that building it, which `keras.saving.load_model` also
    does, runs under `recursion_headroom()`. `ResNet` returns one for depths
    above `DEEP_GRAPH_DEPTH` (e.g. ResNet-1202), and a `ResNetModel`
    otherwise.

    New functional models made from one of its tensors, e.g.
    `keras.Model(model.input, model.get_layer(...).output)`, walk the same
    deep graph: make them inside `with keras_resnet.recursion_headroom():`
    (`feature_extractor` does).

    Args:
        inputs: the functional model's inputs.
        outputs: its outputs.
        name: its name.
        **kwargs: the other arguments of `keras.Model`.
    """

    # The signature must be Functional's, (inputs, outputs, name), for Keras
    # to save the graph's config rather than a subclassed model's.
    def __init__(self, inputs, outputs, name=None, **kwargs):
        with recursion_headroom():
            super().__init__(inputs, outputs, name=name, **kwargs)
