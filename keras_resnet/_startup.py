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
   longer imports Keras. So:

   - if Keras is already imported, the modules in `SERIALIZABLE_MODULES`
     are imported at once (they need nothing but Keras);
   - else a finder on `sys.meta_path` waits for `import keras`, lets Keras
     import as usual, and imports them right after Keras's own `__init__`
     has run, before the `import keras` statement returns. It takes part in
     that one import only (it removes itself first), wraps the loader Python
     found for Keras for the duration of `exec_module`, and puts that loader
     back on Keras's spec afterwards, so nothing of Keras is changed.

   We chose this over the alternatives: importing Keras in
   `import keras_resnet` is the cost the lazy package removes (seconds,
   TensorFlow included); registering only when one of our modules is used
   misses the plain `import keras_resnet; keras.saving.load_model(...)`;
   and a module `__getattr__` cannot see Keras's registry lookups. If the
   modules fail to import there, Keras still imports and a `RuntimeWarning`
   names the error (loading our files will then fail on the missing class).
"""

import importlib
import importlib.metadata
import sys
import warnings

# The distribution that must not be installed beside this one.
OTHER_DISTRIBUTION = "keras-resnet"
# The modules of keras_resnet that register classes with Keras
# (@keras.saving.register_keras_serializable); a test keeps this complete.
SERIALIZABLE_MODULES = ("layers", "model_classes", "preprocessing")


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
    from keras_resnet import xla_cpu

    for name in SERIALIZABLE_MODULES:
        importlib.import_module(f"keras_resnet.{name}")
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
