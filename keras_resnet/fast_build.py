"""Building a ResNet fast: where the build time goes, and what we do about it.

A functional ResNet creates one Keras layer per conv, BN, ReLU and addition,
and one backend variable per weight: about 6,000 variables for ResNet-1202.
On TensorFlow, profiling `ResNet(1202)` (benchmarks/build_time.py) showed
costs that are not the network's arithmetic:

1. TensorFlow's eager kernel cache is keyed on an op's attributes, and the
   `VarHandleOp` that creates each variable carries the variable's full
   name, layer name scope included, as its `debug_name`. Every variable of
   a ResNet has a unique scoped name, so every one misses the cache and
   instantiates a new kernel: ~0.5 ms instead of ~0.04 ms. `variable_scope()`
   creates the `tf.Variable` under an empty TF name scope, so its handle is
   named "kernel", "gamma", ... and the cache hits. Keras's own names are
   untouched: `variable.path` is still "conv2_block1_1_conv/kernel".
2. Keras's `Zeros`/`Ones` initializers run a backend op per BN variable
   (four per BN layer). A numpy fill converts for a fraction of that.
3. Keras's seeded Gaussian runs several backend ops per kernel (seed draw,
   key/counter, sampler). numpy's Ziggurat sampler draws the same
   distribution, N(0, 2 / fan_in) untruncated, at least as fast. The
   classifier's Glorot-uniform kernel is drawn with numpy too, so a seeded
   build gives the same weights on TensorFlow, JAX and PyTorch.
4. Python's cyclic garbage collector runs many times over the growing heap
   of layer objects while thousands of them are made (~7% of a ResNet-1202
   build). `gc_paused()` holds it off for the build and restores it after.

The stand-ins of (2) and (3) live only while the model is built:
`restore_initializers` then puts the equivalent Keras initializers back on
every layer, so `get_config()`, `.keras` files and `from_config` say
`VarianceScaling(2.0, "fan_in", "untruncated_normal")`, `"ones"`, `"zeros"`,
exactly as a model built with plain Keras initializers.

Randomness: each kernel draws its own numpy Generator seed from numpy's
global RandomState, which `keras.utils.set_random_seed` seeds, so a seeded
build is reproducible and unseeded builds differ. (Drawing the seed advances
numpy's global state, as Keras's initializers advance Keras's.)
"""

import contextlib
import gc

import keras
import numpy as np

_NUMPY_FLOATS = ("float16", "float32", "float64")


def _to_dtype(values, dtype):
    dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
    if dtype in _NUMPY_FLOATS:
        return values.astype(dtype, copy=False)
    # bfloat16 and other non-numpy dtypes: let the backend cast.
    return keras.ops.cast(keras.ops.convert_to_tensor(values), dtype)


class _BuildInitializer(keras.initializers.Initializer):
    """A numpy initializer that stands in for `standard` during the build."""

    def __init__(self, standard):
        self.standard = standard

    def get_config(self):
        # Never serialized: `restore_initializers` swaps it out first. Say
        # what it stands for if it ever is.
        return self.standard.get_config()


class HeNormal(_BuildInitializer):
    """N(0, 2 / fan_in), untruncated, fan_in = prod(shape[:-1]) (HWIO kernels)."""

    def __init__(self):
        super().__init__(
            keras.initializers.VarianceScaling(
                scale=2.0, mode="fan_in", distribution="untruncated_normal"
            )
        )

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else shape[0]
        seed = np.random.randint(0, 2**31 - 1, size=4)
        values = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
        values *= np.float32(np.sqrt(2.0 / max(1, fan_in)))
        return _to_dtype(values, dtype)


class GlorotUniform(_BuildInitializer):
    """U(-l, l), l = sqrt(6 / (fan_in + fan_out)): Keras's default for `Dense`.

    Drawn with numpy like `HeNormal`, so that a seeded build has the same
    classifier on every backend, not only the same convolutions.
    """

    def __init__(self):
        super().__init__(keras.initializers.GlorotUniform())

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        fan_in, fan_out = int(np.prod(shape[:-1])), shape[-1]
        limit = np.sqrt(6.0 / max(1, fan_in + fan_out))
        seed = np.random.randint(0, 2**31 - 1, size=4)
        values = np.random.default_rng(seed).uniform(-limit, limit, shape).astype(np.float32)
        return _to_dtype(values, dtype)


class Fill(_BuildInitializer):
    """A constant: 0 or 1, standing in for Keras's `Zeros` or `Ones`."""

    def __init__(self, value):
        if value not in (0, 1):
            raise ValueError(f"Fill stands in for Zeros or Ones only. Received value={value!r}.")
        self.value = value
        super().__init__(keras.initializers.Ones() if value else keras.initializers.Zeros())

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        return _to_dtype(np.full(shape, self.value, dtype=np.float32), dtype)


INITIALIZER_ATTRIBUTES = (
    "kernel_initializer",
    "gamma_initializer",
    "beta_initializer",
    "moving_mean_initializer",
    "moving_variance_initializer",
)


def restore_initializers(model):
    """Puts the Keras initializer each build-time stand-in stands for back."""
    for layer in model.layers:
        for attribute in INITIALIZER_ATTRIBUTES:
            value = getattr(layer, attribute, None)
            if isinstance(value, _BuildInitializer):
                setattr(layer, attribute, value.standard)


def _unscoped_variable(next_creator, **kwargs):
    import tensorflow as tf

    if not tf.executing_eagerly():
        return next_creator(**kwargs)
    with tf.name_scope(""):
        return next_creator(**kwargs)


@contextlib.contextmanager
def variable_scope():
    """On TensorFlow, creates eager variables without the TF name scope (1.)."""
    if keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    with tf.variable_creator_scope(_unscoped_variable):
        yield


@contextlib.contextmanager
def gc_paused():
    """Holds Python's cyclic GC off inside the block, if it was on (4.)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
