"""What `import keras_resnet` does besides making its names reachable.

`import keras_resnet` imports neither Keras nor TensorFlow (the names load on
first use, keras_resnet/__init__.py). Two things still happen at once:

1. **The other `keras-resnet` is refused** (`refuse_other_distribution`).
   The name `keras-resnet` on the package index belongs to an unrelated
   Keras 2 project from 2019 that also imports as `keras_resnet`; installed
   beside this one (`keras-resnet-zoo`), its `keras_resnet/layers/` and
   `keras_resnet/models/` folders shadow our `layers.py` and `models.py`, or
   its `__init__.py` replaces ours, and imports fail deep inside with
   messages that do not say why. So the import fails first, naming it.
   Installed after ours, that package's `__init__.py` replaces ours and
   `import keras_resnet` is that package: then the `keras-resnet` command
   (zoo/command.py, which checks by itself) still refuses, and the fix is the
   same, `pip uninstall keras-resnet`, then `pip install --force-reinstall
   keras-resnet-zoo`.

2. **Saved models keep loading** (`register_with_keras`). A `.keras` file of
   ours names our classes (`keras_resnet>ZeroPadShortcut`, ...), which Keras
   finds only in its registry of serializable classes, filled when the
   modules that define them run: Keras itself imports modules only of its
   own packages when a class is missing. Before 1.0, `import keras_resnet`
   imported those modules, so `import keras_resnet; keras.saving.load_model(
   "m.keras")` worked; it must still work when importing keras_resnet no
   longer imports Keras. So each of our registered names gets a stand-in in
   Keras's registry (`_Deferred`): an object whose `from_config`, the one
   thing Keras asks of a registered class when it loads a file, imports the
   module that defines the class and hands over to it. The class's own
   registration then replaces the stand-in. The stand-ins go in

   - at once, if Keras is already imported;
   - else right after Keras's own `__init__` has run, before the `import
     keras` statement returns: a finder on `sys.meta_path` waits for that one
     import (it removes itself first), wraps the loader Python found for
     Keras for the duration of `exec_module`, and puts that loader back on
     Keras's spec afterwards, so nothing of Keras is changed.

   Putting stand-ins in a dict imports nothing of ours, so it cannot run into
   an import of ours that is under way (importing our modules there did,
   when Keras was first imported by one of them, e.g. `keras_resnet.specs`).
   We chose this over the alternatives: importing Keras in `import
   keras_resnet` is the cost the lazy package removes (seconds, TensorFlow
   included); registering only when one of our modules is used misses the
   plain `import keras_resnet; keras.saving.load_model(...)`; and a module
   `__getattr__` cannot see Keras's registry lookups.
"""

import importlib
import importlib.metadata
import sys
import warnings

# The distribution that must not be installed beside this one.
OTHER_DISTRIBUTION = "keras-resnet"
# Each class of keras_resnet registered with Keras
# (@keras.saving.register_keras_serializable(package="keras_resnet")) -> the
# module that defines it; a test keeps this complete.
SERIALIZABLE = {
    "ZeroPadShortcut": "layers",
    "FusedBatchNormalization": "layers",
    "NaNPropagatingMaxPooling2D": "layers",
    "FoldedConv2D": "layers",
    "ResNetModel": "model_classes",
    "DeepResNet": "model_classes",
    "Preprocessing": "preprocessing",
}
SERIALIZABLE_MODULES = tuple(sorted(set(SERIALIZABLE.values())))


def refuse_other_distribution():
    """Raises if the distribution named `keras-resnet` is installed.

    Raises:
        ImportError: naming the distribution, its version and where it is,
            and saying how to remove it.
    """
    try:
        other = importlib.metadata.distribution(OTHER_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return
    where = other.locate_file("")
    if _is_this_checkout(where):
        return
    raise ImportError(
        f"keras_resnet: the distribution {OTHER_DISTRIBUTION!r} {other.version} is installed in this "
        f"environment (in {where}). That name belongs to an unrelated Keras 2 project from 2019 (or to "
        "a pre-1.0 install of this one), which also imports as `keras_resnet` and shadows or overwrites "
        "this package's files. Remove it with `pip uninstall keras-resnet`, then reinstall this package "
        "with `pip install --force-reinstall keras-resnet-zoo` (the uninstall removes files the two "
        "share).",
        name="keras_resnet",
    )


def _is_this_checkout(folder):
    """Whether `folder` is the source checkout this package is imported from.

    A checkout where `pip install .` once ran under the old name keeps a
    `keras_resnet.egg-info` build folder beside `keras_resnet/`, which
    importlib.metadata reports as an installed `keras-resnet` when the
    checkout is on `sys.path`. That is a leftover of this very project, not
    the other package: the checkout's own `pyproject.toml` names
    `keras-resnet-zoo`.
    """
    import pathlib

    try:
        folder = pathlib.Path(folder).resolve()
        ours = pathlib.Path(__file__).resolve().parent.parent
        project = (folder / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return folder == ours and 'name = "keras-resnet-zoo"' in project


def register_with_keras():
    """Registers keras_resnet's serializable classes now, or when Keras is imported.

    See the module docstring for why and how. Calling it again does nothing
    more.
    """
    if sys.modules.get("keras") is not None:
        _register()
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())


def _register():
    from keras.saving import get_custom_objects

    from keras_resnet import xla_cpu

    registry = get_custom_objects()
    for name, module in SERIALIZABLE.items():
        registry.setdefault(f"keras_resnet>{name}", _Deferred(f"keras_resnet.{module}", name))
    # Keras now knows its backend for sure (before, it was read from Keras's config).
    xla_cpu.keep_nan()


def _register_after_keras():
    try:
        _register()
    except Exception as error:  # noqa: BLE001 (never break `import keras`; say what failed)
        warnings.warn(
            f"keras_resnet could not register its layers with Keras ({error!r}), so "
            "keras.saving.load_model cannot load files that hold them.",
            RuntimeWarning,
            stacklevel=2,
        )


class _Deferred:
    """Stands in Keras's registry for a class of ours until its module has run.

    Keras loads a registered class by calling its `from_config`; this one
    imports the module that defines the class (whose registration replaces
    this stand-in) and returns the class's own `from_config`. Anything else
    asked of it is asked of the class.
    """

    def __init__(self, module, name):
        self.module = module
        self.name = name

    def resolve(self):
        """The class itself, its module imported."""
        return getattr(importlib.import_module(self.module), self.name)

    def from_config(self, config, *args, **kwargs):
        return self.resolve().from_config(config, *args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(self.resolve(), attribute)

    def __repr__(self):
        return f"<keras_resnet: {self.module}.{self.name}, imported when first loaded>"


class _AfterKerasImport:
    """A `sys.meta_path` finder for the first `import keras`: runs `_register` right after it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenRegister(spec, spec.loader)
        return spec


class _ThenRegister:
    """Keras's own loader, then `_register`; Keras's spec gets its loader back."""

    def __init__(self, spec, loader):
        self.spec = spec
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.spec.loader = self.loader
        module.__loader__ = self.loader
        self.loader.exec_module(module)
        _register_after_keras()
