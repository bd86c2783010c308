"""keras-resnet: the networks of He et al. (2015) as Keras 3 models.

    import keras_resnet
    model = keras_resnet.ResNet(50)            # ImageNet ResNet-50, option B
    model = keras_resnet.ResNet(110)           # CIFAR ResNet-110, option A
    model = keras_resnet.ResNet(34, plain=True)
    keras_resnet.architecture_of(model)        # family, depth, shortcut, plain, ...

`import keras_resnet` imports neither Keras nor TensorFlow: each name of
`__all__` and each module below is loaded on first use (`keras_resnet.ResNet`,
`keras_resnet.runtimes.load`, `from keras_resnet import export`). It still
lets Keras load saved models that hold our layers, and refuses to run beside
the unrelated `keras-resnet` distribution (keras_resnet/_startup.py).

Where things live (one owner per idea; the others call it):

    specs           depth -> stage tables, family defaults (shortcut, classes, size), argument coercion
    names           how layer names are spelled: blocks/models write them, architecture reads them
    blocks          stem, basic / bottleneck blocks; SHORTCUT_OPTIONS, the one place for each shortcut (A/B/C/none)
    layers          ZeroPadShortcut (option A), FusedBatchNormalization, NaNPropagatingMaxPooling2D
    fast_build      why and how ResNet(...) builds fast
    models          ResNet(...), its argument checks, the named constructors (resnet50, plain20, ...)
    model_classes   ResNetModel (predict checks its images), DeepResNet, recursion_headroom
    architecture    architecture_of(model): what ResNet a model is (its record; else its layer names)
    features        stage_output_names, feature_extractor: the stages' feature maps
    weights         what `weights=` means: resolve before the build, load_into after; download settings
    registry        the preset registry: register_preset, load_registry, get_preset, aliases, pin_hash
    presets         the built-in presets, as data, and their preprocessing modes
    downloads       fetch: a preset's file from the Keras cache or downloaded there, hash pinned
    weight_files    reading .keras / .weights.h5 files without building them, and their preprocessing
    weight_checks   checking a weights file against a model, then assigning its weights
    porting         other projects' weights as arrays for our layers
    convert         from_keras_applications / from_torchvision / from_keras_cv / from_keras_hub /
                    to_keras_hub / from_cifar_option_a
    torch_checkpoint  torch.save files read into numpy, without torch or pickled code
    preprocessing   preprocess_input and the Preprocessing layer
    fast_predict    ResNetModel.predict on arrays, without Keras's per-call data adapter
    images          image files decoded to 8-bit RGB, and the evaluation view (shorter side, centre crop)
    predict         `keras-resnet predict`: the top classes of image files, folders or globs
    flops           count_flops
    class_lists     the class names presets carry: CIFAR-10's, ImageNet-1k's (package data)
    labels          decode_predictions; which preset (so which classes) a model was built with
    model_cards     the model cards of every preset, and `python -m keras_resnet.model_cards`
    fold            fold_batchnorm
    atomic          write-then-rename (every export and download), occupied(path)
    serving         export: SavedModel with serving signatures; the graph every format serves, float32
    export_formats  export(format=...), export_tflite: the entry point of every format
    formats         the one table of export formats: name, suffix, writer, runtime loader, packages, zoo flag
    export_check    every export written at a staging path, checked in its runtime, renamed into place
    quantization    LiteRT float / dynamic / int8 options, int8 calibration
    runtimes        load(path): an exported file in its own runtime, every call's images checked first
    xla_cpu         keeps NaN under JAX on CPUs
"""

import importlib

from keras_resnet import _startup
from keras_resnet import xla_cpu

__version__ = "1.0.0"

_startup.refuse_other_distribution()

# Each public name -> the module that defines it (its one import path besides
# this one). Loaded on first use by __getattr__.
_PUBLIC = {
    "Architecture": "architecture",
    "DeepResNet": "model_classes",
    "FusedBatchNormalization": "layers",
    "NaNPropagatingMaxPooling2D": "layers",
    "Preprocessing": "preprocessing",
    "ResNet": "models",
    "ResNetModel": "model_classes",
    "ZeroPadShortcut": "layers",
    "architecture_of": "architecture",
    "count_flops": "flops",
    "decode_predictions": "labels",
    "export": "export_formats",
    "export_tflite": "export_formats",
    "feature_extractor": "features",
    "fold_batchnorm": "fold",
    "plain18": "models",
    "plain20": "models",
    "plain32": "models",
    "plain34": "models",
    "plain44": "models",
    "plain56": "models",
    "plain110": "models",
    "preprocess_input": "preprocessing",
    "preprocessing_layer": "preprocessing",
    "recursion_headroom": "model_classes",
    "register_preset": "registry",
    "resnet18": "models",
    "resnet20": "models",
    "resnet32": "models",
    "resnet34": "models",
    "resnet44": "models",
    "resnet50": "models",
    "resnet56": "models",
    "resnet101": "models",
    "resnet110": "models",
    "resnet152": "models",
    "resnet200": "models",
    "resnet1202": "models",
    "stage_output_names": "features",
}
__all__ = sorted(_PUBLIC)


def _submodules():
    """The public modules of keras_resnet (those listed above), by name.

    Returns:
        A sorted list of names; each is reachable as `keras_resnet.NAME`.
    """
    import pkgutil

    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def __getattr__(name):
    # PEP 562: called only for names not set yet; each is set on first use.
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    elif not name.startswith("_") and name in _submodules():
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_submodules()))


_startup.register_with_keras()
# A model built later starts XLA's CPU backend, which must keep NaN
# (keras_resnet/xla_cpu.py); this reads the backend without importing Keras.
xla_cpu.keep_nan()
