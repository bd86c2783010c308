"""NaN in, NaN out under JAX on CPUs: XLA's YNNPACK reduction fusions.

jaxlib 0.10's CPU compiler hands a reduction, together with the
element-wise ops that feed it, to YNNPACK (`__ynn_fusion`), whose maximum
and minimum return the non-NaN operand. So `sum(maximum(x, 0))` over an
array that holds a NaN is finite when jitted, though `maximum(x, 0)` alone
is NaN there, and eager calls and GPUs keep NaN. In a ResNet that is the
global average pool after the last ReLU: `predict` of an image with a NaN
pixel returned finite probabilities (a direct `model(x)` call returned
NaN), and the crossentropy's clip (a min and a max) before the batch mean
gave a finite loss while the weights filled with NaN.

`keep_nan()` turns those fusions off with XLA's own option,
`--xla_cpu_experimental_ynn_fusion_type=-reduce` in `XLA_FLAGS`, which XLA
reads when JAX starts its CPU backend (at the first computation, not at
import). The zoo's commands and `import keras_resnet` call it, and it imports
neither Keras nor JAX: where Keras is not imported yet it reads the backend
Keras will take from where Keras reads it (`KERAS_BACKEND`, then
`keras.json`), and it calls itself again once Keras is imported
(keras_resnet/_startup.py). It changes nothing where:

- the backend is not JAX;
- `XLA_FLAGS` already says something about `ynn_fusion_type` (yours wins);
- jaxlib is outside the versions checked to know the option
  (`CHECKED_JAXLIB`): XLA aborts the process on an option it does not
  know, so it is never passed blind;
- JAX has already started its backends (too late to take effect): then it
  warns, once, and says how to set the option yourself.

The cost on this project's CPU measurements is in BENCHMARKS.md.
"""

import importlib.metadata
import json
import os
import sys
import warnings

OPTION = "--xla_cpu_experimental_ynn_fusion_type=-reduce"
# jaxlib releases known to accept OPTION: [lowest, highest), by (major, minor).
CHECKED_JAXLIB = ((0, 10), (0, 11))


def keep_nan():
    """Adds `OPTION` to `XLA_FLAGS` if it can take effect; returns whether it is in force.

    Returns:
        True if XLA will run (or already runs) with YNN reduction fusions
        off, False where it will not (see the module docstring).
    """
    if keras_backend() != "jax":
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if "ynn_fusion_type" in flags:
        return OPTION in flags.split()
    if not _checked_jaxlib():
        return False
    if _backends_started():
        warnings.warn(
            "keras_resnet: JAX started before keras_resnet was imported, so XLA's CPU "
            "backend runs with YNNPACK reduction fusions, which drop NaN (a NaN pixel can "
            "give finite predictions and losses on CPU). Import keras_resnet before the "
            f"first JAX computation, or set XLA_FLAGS='{OPTION}' yourself.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {OPTION}".strip()
    return True


def keras_backend():
    """The backend Keras runs on, or will run on once imported; imports nothing.

    Returns:
        Keras's own answer where Keras is imported; else what Keras will read
        at import (keras/src/backend/config.py): a non-empty `KERAS_BACKEND`,
        else the "backend" of `keras.json` in `KERAS_HOME` (or `~/.keras`,
        or `/tmp/.keras` where the home folder is not writable), else
        "tensorflow".
    """
    keras = sys.modules.get("keras")
    try:
        return keras.config.backend()
    except AttributeError:  # not imported (None), or still importing
        pass
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME")
    if home is None:
        user = os.path.expanduser("~")
        home = os.path.join(user if os.access(user, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.expanduser(os.path.join(home, "keras.json"))) as config:
            return json.load(config).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _checked_jaxlib():
    # From jaxlib's metadata: importing jaxlib would load XLA.
    try:
        version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return False
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    low, high = CHECKED_JAXLIB
    return low <= major_minor < high


def _backends_started():
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else bool(getattr(xla_bridge, "_backends", {}))
