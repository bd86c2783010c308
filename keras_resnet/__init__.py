"""keras-resnet: the networks of He et al. (2015) as Keras 3 models.

    import keras_resnet
    model = keras_resnet.ResNet(50)            # ImageNet ResNet-50, option B
    model = keras_resnet.ResNet(110)           # CIFAR ResNet-110, option A
    model = keras_resnet.ResNet(34, plain=True)
"""

from keras_resnet import convert
from keras_resnet.architecture import Architecture, architecture_of
from keras_resnet.flops import count_flops
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
