"""keras-resnet: the networks of He et al. (2015) as Keras 3 models.

    import keras_resnet
    model = keras_resnet.ResNet(50)            # ImageNet ResNet-50, option B
    model = keras_resnet.ResNet(110)           # CIFAR ResNet-110, option A
    model = keras_resnet.ResNet(34, plain=True)
    keras_resnet.architecture_of(model)        # family, depth, shortcut, plain, ...

Where things live (one owner per idea; the others call it):

    specs           depth -> stage tables, family defaults (shortcut, classes, size), argument coercion
    blocks          basic / bottleneck blocks, the one place that decides each shortcut (A/B/C/none)
    layers          ZeroPadShortcut (option A), FusedBatchNormalization, NaNPropagatingMaxPooling2D
    fast_build      why and how ResNet(...) builds fast
    models          ResNet(...), its argument checks, the named constructors (resnet50, plain20, ...)
    model_classes   ResNetModel (predict checks its images), DeepResNet, recursion_headroom
    architecture    architecture_of(model): what ResNet a built model is, the one decoder of layer names
    features        stage_output_names, feature_extractor: the stages' feature maps
    weights         what `weights=` means: resolve before the build, load_into after; download settings
    registry        the preset registry: register_preset, load_registry, get_preset, aliases, pin_hash
    presets         the built-in presets, as data, and their preprocessing modes
    downloads       fetch: a preset's file from the Keras cache or downloaded there, hash pinned
    weight_files    reading .keras / .weights.h5 files without building them, and their preprocessing
    weight_checks   checking a weights file against a model, then assigning its weights
    porting         other projects' weights as arrays for our layers
    convert         from_keras_applications / from_torchvision / from_keras_cv / from_cifar_option_a
    torch_checkpoint  torch.save files read into numpy, without torch or pickled code
    preprocessing   preprocess_input and the Preprocessing layer
    flops           count_flops
    class_lists     the class names presets carry: CIFAR-10's, ImageNet-1k's (package data)
    labels          decode_predictions; which preset (so which classes) a model was built with
    model_cards     the model cards of every preset, and `python -m keras_resnet.model_cards`
    fold            fold_batchnorm
    atomic          write-then-rename (every export and download), occupied(path)
    serving         export: SavedModel with serving signatures, the graph every format serves
    export_formats  export(format=...): ONNX, LiteRT, OpenVINO; export_tflite
    quantization    LiteRT float / dynamic / int8 options, int8 calibration
    runtimes        load(path): an exported file in its own runtime
    xla_cpu         keeps NaN under JAX on CPUs
"""

from keras_resnet import convert
from keras_resnet.architecture import Architecture, architecture_of
from keras_resnet.flops import count_flops
from keras_resnet.labels import decode_predictions
from keras_resnet.fold import fold_batchnorm
from keras_resnet.layers import FusedBatchNormalization, NaNPropagatingMaxPooling2D, ZeroPadShortcut
from keras_resnet.models import (
    DeepResNet,
    ResNet,
    ResNetModel,
    feature_extractor,
    plain18,
    plain20,
    plain32,
    plain34,
    plain44,
    plain56,
    plain110,
    recursion_headroom,
    resnet18,
    resnet20,
    resnet32,
    resnet34,
    resnet44,
    resnet50,
    resnet56,
    resnet101,
    resnet110,
    resnet152,
    resnet200,
    resnet1202,
    stage_output_names,
)
from keras_resnet.preprocessing import Preprocessing, preprocess_input, preprocessing_layer
from keras_resnet.export_formats import export, export_tflite
from keras_resnet.weights import register_preset
from keras_resnet import xla_cpu

__version__ = "0.1.0"

# Importing the modules above runs no JAX computation; a model built next
# would start XLA's CPU backend, which must keep NaN (keras_resnet/xla_cpu.py).
xla_cpu.keep_nan()
