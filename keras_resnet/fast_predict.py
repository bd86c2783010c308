"""`ResNetModel.predict` on images held in memory, without Keras's per-call set-up.

Keras's `predict` makes a data adapter (a tf.data pipeline on TensorFlow),
an epoch iterator and a callback list on every call, whatever the input:
70-140 ms for one 32x32 image through ResNet-20 on a loaded 2-core CPU,
where the network itself takes 3-4 ms (`predict_on_batch`; BENCHMARKS.md,
`python -m benchmarks.predict_latency`). For images already in memory,
one numpy array or one tensor of the backend, the batches Keras would make
are slices of it: `predict_in_memory` hands each slice to the model's own
compiled predict function (Keras's `make_predict_function`, the function
`predict`'s loop calls, traced once per input signature and kept) through
`predict_on_batch`, and concatenates the outputs. What `predict` does
besides is done the same way:

- batches of `batch_size` images (32 by default) in order, the last one
  shorter, as Keras slices them;
- floats of another dtype than `keras.config.floatx()` (float64, float16)
  are cast to it, as Keras's array adapter casts them; integers go in as
  they are (the model casts them);
- `verbose` other than 0 shows the same progress bar (Keras's
  `ProgbarLogger`, through a `CallbackList` built as `predict` builds it,
  one step per batch);
- the outputs are numpy arrays in the model's output structure, and the
  same bits: the same compiled function runs on the same batches.

Keras's `predict` handles everything else, and so every call this module
does not take (it returns `NOT_HANDLED`): `steps` or `callbacks` given, a
`batch_size` that is not an int >= 1, anything other than one numpy array
or one dense tensor of the backend (a dataset, a generator, a list, a
dict, a ragged or sparse tensor, a symbolic tensor), a model with several
inputs, a distribution (a `tf.distribute` strategy, `keras.distribution`
on JAX), `steps_per_execution` above 1 with more than one batch, and
arguments `keras.Model.predict` does not take (Keras raises its own error).
"""

import sys

import keras
import numpy as np

# What `predict_one_batch` returns for a call it leaves to Keras's predict.
NOT_HANDLED = object()
# Keras's predict makes batches of 32 when not told.
DEFAULT_BATCH_SIZE = 32


def _predict_arguments(x, batch_size=None, verbose="auto", steps=None, callbacks=None):
    """The arguments of `keras.Model.predict` (Keras 3's signature, which a
    test compares with Keras's own), by name; a TypeError for others."""
    return {"x": x, "batch_size": batch_size, "verbose": verbose, "steps": steps, "callbacks": callbacks}


def predict_in_memory(model, x, *args, **kwargs):
    """`model.predict(x, *args, **kwargs)` for images held in memory.

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
        arguments = _predict_arguments(x, *args, **kwargs)
    except TypeError:
        return NOT_HANDLED  # Keras's predict raises its own error
    batch_size = DEFAULT_BATCH_SIZE if arguments["batch_size"] is None else arguments["batch_size"]
    if (arguments["steps"] is not None or arguments["callbacks"] is not None
            or type(batch_size) is not int or batch_size < 1
            or len(model.inputs) != 1 or _distributed(model)):
        return NOT_HANDLED
    images = _as_batchable(x)
    if images is None:
        return NOT_HANDLED
    count = images.shape[0]
    steps = -(-count // batch_size)
    if steps > 1 and getattr(model, "steps_per_execution", 1) != 1:
        return NOT_HANDLED  # Keras's loop runs several batches per call then
    verbose = arguments["verbose"]
    callbacks = None
    if verbose != 0:  # Keras adds no progress bar for 0 (`add_progbar=verbose != 0`)
        callbacks = keras.callbacks.CallbackList(
            None, add_progbar=True, verbose=verbose, epochs=1, steps=steps, model=model)
        model.stop_predicting = False
        callbacks.on_predict_begin()
    outputs = []
    for step in range(steps):
        if callbacks is not None:
            callbacks.on_predict_batch_begin(step)
        batch = images[step * batch_size:(step + 1) * batch_size] if steps > 1 else images
        outputs.append(model.predict_on_batch(batch))
        if callbacks is not None:
            callbacks.on_predict_batch_end(step, {"outputs": outputs[-1]})
    if callbacks is not None:
        callbacks.on_predict_end()
    if steps == 1:
        return outputs[0]
    return keras.tree.map_structure(lambda *parts: np.concatenate(parts), *outputs)


def _as_batchable(x):
    """`x` as Keras's array adapter would slice it into batches, if it is one
    dense array or tensor of 1 or more images; else None."""
    if not (isinstance(x, np.ndarray) or _dense_backend_tensor(x)):
        return None
    if len(x.shape) == 0 or x.shape[0] is None or x.shape[0] < 1:
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
