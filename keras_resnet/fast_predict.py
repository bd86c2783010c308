"""`ResNetModel.predict` on images that fit in one batch, without Keras's per-call set-up.

Keras's `predict` makes a data adapter (a tf.data pipeline on TensorFlow),
an epoch iterator and a callback list on every call, whatever the input:
about 55 ms for one 32x32 image through ResNet-20 on a 2-core CPU, where
the network itself takes 4.4 ms (`predict_on_batch`; BENCHMARKS.md,
`python -m benchmarks.predict_latency`). For an array that fits in one
batch, the one batch Keras would make is the array itself, so
`predict_one_batch` hands it to the model's own compiled predict function
(Keras's `make_predict_function`, the function `predict`'s loop calls,
traced once per input signature and kept) through `predict_on_batch`.
What `predict` would do besides is done the same way:

- floats of another dtype than `keras.config.floatx()` (float64, float16)
  are cast to it, as Keras's array adapter casts them; integers go in as
  they are (the model casts them);
- `verbose` other than 0 shows the same progress bar (Keras's
  `ProgbarLogger`, through a `CallbackList` built as `predict` builds it,
  one step);
- the outputs are numpy arrays in the model's output structure, and the
  same bits: the same compiled function runs on the same batch.

Keras's `predict` handles everything else, and so every call this module
does not take (it returns `NOT_HANDLED`): more images than `batch_size`
(32 by default), `steps` or `callbacks` given, a `batch_size` that is not
an int >= 1, anything other than one numpy array or one dense tensor of
the backend (a dataset, a generator, a list, a dict, a ragged or sparse
tensor, a symbolic tensor), a model with several inputs, a distribution (a
`tf.distribute` strategy, `keras.distribution` on JAX) and arguments
`keras.Model.predict` does not take (Keras raises its own error).
"""

import inspect
import sys

import keras
import numpy as np

# What `predict_one_batch` returns for a call it leaves to Keras's predict.
NOT_HANDLED = object()
# Keras's predict makes batches of 32 when not told.
DEFAULT_BATCH_SIZE = 32
_PREDICT = inspect.signature(keras.Model.predict)


def predict_one_batch(model, x, *args, **kwargs):
    """`model.predict(x, *args, **kwargs)` for images that fit in one batch.

    Call it after the checks of the images (`ResNetModel.predict` does).

    Args:
        model: a built `keras.Model` with one input.
        x: the images.
        *args: the other arguments of `keras.Model.predict`, positionally.
        **kwargs: ... and by name: `batch_size`, `verbose`, `steps`,
            `callbacks`.

    Returns:
        What `keras.Model.predict` returns (numpy arrays, in the structure
        of the model's outputs), or `NOT_HANDLED` for a call this function
        leaves to Keras (see the module docstring).
    """
    try:
        bound = _PREDICT.bind(model, x, *args, **kwargs)
    except TypeError:
        return NOT_HANDLED  # Keras's predict raises its own error
    arguments = {**{name: p.default for name, p in _PREDICT.parameters.items()}, **bound.arguments}
    batch_size = DEFAULT_BATCH_SIZE if arguments["batch_size"] is None else arguments["batch_size"]
    if (arguments["steps"] is not None or arguments["callbacks"] is not None
            or type(batch_size) is not int or batch_size < 1
            or len(model.inputs) != 1 or _distributed(model)):
        return NOT_HANDLED
    batch = _one_batch(x, batch_size)
    if batch is None:
        return NOT_HANDLED
    verbose = arguments["verbose"]
    if verbose == 0:  # Keras adds no progress bar then (`add_progbar=verbose != 0`).
        return model.predict_on_batch(batch)
    callbacks = keras.callbacks.CallbackList(
        None, add_progbar=True, verbose=verbose, epochs=1, steps=1, model=model)
    model.stop_predicting = False
    callbacks.on_predict_begin()
    callbacks.on_predict_batch_begin(0)
    outputs = model.predict_on_batch(batch)
    callbacks.on_predict_batch_end(0, {"outputs": outputs})
    callbacks.on_predict_end()
    return outputs


def _one_batch(x, batch_size):
    """`x` as Keras's array adapter would batch it, if it is one dense batch; else None."""
    if not (isinstance(x, np.ndarray) or _dense_backend_tensor(x)):
        return None
    if len(x.shape) == 0 or x.shape[0] is None or x.shape[0] > batch_size:
        return None
    dtype = keras.backend.standardize_dtype(x.dtype)
    if keras.backend.is_float_dtype(dtype):
        floatx = keras.config.floatx()
        if dtype == floatx:
            return x
        return x.astype(floatx) if isinstance(x, np.ndarray) else keras.ops.cast(x, floatx)
    if keras.backend.is_int_dtype(dtype):
        return x
    return None  # bool, complex, strings: Keras's to handle


def _dense_backend_tensor(x):
    """Whether `x` is a dense tensor of the backend holding values (not symbolic)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return isinstance(x, tf.Tensor) and tf.executing_eagerly() and hasattr(x, "numpy")
    if backend == "jax":
        import jax

        return isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer)
    if backend == "torch":
        torch = sys.modules.get("torch")  # Keras imported it; the library never does
        return (torch is not None and isinstance(x, torch.Tensor) and x.layout == torch.strided
                and x.device.type != "meta")
    return False


def _distributed(model):
    """Whether predict would spread batches over devices (it then needs Keras's loop)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.has_strategy() or getattr(model, "_distribute_strategy", None) is not None
    if backend == "jax":
        return keras.distribution.distribution() is not None
    return False
