"""keras-hub both ways: `convert.from_keras_hub` and `convert.to_keras_hub`.

keras-hub's ResNetBackbone (v1.5) is built from arguments, never from a
preset (nothing is downloaded), given random weights and BN statistics
(with the default moving mean 0 and variance 1 a port that dropped them
would still pass), and compared with ours on real images: the first
lossless CIFAR-10 test images, upscaled to 224 and to 72 (a side that is
no multiple of 32, so every strided layer's padding is exercised).

Tolerance: both nets compute the same sums of float32 products in their own
orders (Keras's BN and ours fused, oneDNN's convs): a conv output of K <= 4608
terms differs by about sqrt(K) * 6e-8 (float32's unit roundoff) of its
terms' size, ~4e-6, per layer, growing as the square root of the depth
(BN keeps activations O(1)). 1e-4 of the output's largest value bounds that
at depth 50; a weight put in the wrong place changes outputs by O(1).
"""

import os
import pathlib

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import convert

from conftest import CIFAR_ORIGINAL_HEAD

keras_hub = pytest.importorskip("keras_hub")

# Set CIFAR10_ORIGINAL_HEAD where ../shared/data is elsewhere (a worktree).
HEAD = pathlib.Path(os.environ.get("CIFAR10_ORIGINAL_HEAD", CIFAR_ORIGINAL_HEAD))
RELATIVE = 1e-4
BLOCK_TYPES = {18: "basic_block", 34: "basic_block", 50: "bottleneck_block"}
LAYOUTS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}


def backbone(depth=18, **overrides):
    arguments = dict(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=LAYOUTS[depth], stackwise_num_strides=[1, 2, 2, 2],
        block_type=BLOCK_TYPES[depth], image_shape=(None, None, 3))
    arguments.update(overrides)
    return keras_hub.models.ResNetBackbone(**arguments)


def randomise(model, seed=0):
    """Random BN statistics and affines, and classifier, keeping activations O(1)."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            scale = 0.3 if layer.name.endswith(("_2_bn", "_3_bn")) else 1.0
            layer.set_weights([rng.uniform(0.5, 1.5, n) * scale, rng.normal(0, 0.1, n),
                               rng.normal(0, 0.5, n), rng.uniform(0.5, 2.0, n)])
        elif isinstance(layer, keras.layers.Dense):
            layer.set_weights([rng.normal(0, 0.05, w.shape) for w in layer.get_weights()])
    return model


def real_images(size, n=2):
    """n real CIFAR-10 test images (lossless), upscaled to size x size, preprocessed
    as keras-hub's ImageNet ResNets expect (torchvision's normalisation)."""
    raw = np.load(HEAD)["x"][:n].astype("float32")
    raw = np.clip(keras.ops.convert_to_numpy(keras.ops.image.resize(raw, (size, size))), 0, 255)
    return keras_resnet.preprocess_input(raw, weights="torchvision_imagenet")


def run(model, x):
    """`model(x)` as numpy: an eager call, no function traced per model and size."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def assert_same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=RELATIVE * float(np.max(np.abs(b))))


@pytest.fixture(scope="module")
def hub18():
    classifier = keras_hub.models.ResNetImageClassifier(
        backbone=backbone(18), num_classes=7, activation="softmax", pooling="max")
    return randomise(classifier)


@pytest.mark.realdata  # real test images, from ../shared/data
def test_from_keras_hub_classifier_and_backbone_compute_the_same(hub18):
    ours = convert.from_keras_hub(hub18)
    arch = keras_resnet.architecture_of(ours)
    assert (arch.depth, arch.shortcut, arch.classes, arch.pooling) == (18, "B", 7, "max")
    features = convert.from_keras_hub(hub18.backbone)
    assert not keras_resnet.architecture_of(features).include_top
    for size in (224, 72):
        x = real_images(size)
        assert_same(run(ours, x), run(hub18, x))
        assert_same(run(features, x), run(hub18.backbone, x))


@pytest.mark.realdata  # real test images, from ../shared/data
def test_to_keras_hub_computes_the_same_and_round_trips(hub18):
    ours = convert.from_keras_hub(hub18)
    back = convert.to_keras_hub(ours)
    assert type(back).__name__ == "ResNetImageClassifier" and back.pooling == "max"
    x = real_images(72)
    assert_same(run(back, x), run(ours, x))
    for theirs, mine in zip(back.get_weights(), hub18.get_weights()):
        np.testing.assert_array_equal(theirs, mine)  # the same arrays, both ways
    headless = convert.to_keras_hub(keras_resnet.ResNet(18, include_top=False, input_shape=(72, 72, 3)))
    assert type(headless).__name__ == "ResNetBackbone" and headless.image_shape == (72, 72, 3)


@pytest.mark.slow
@pytest.mark.realdata
def test_resnet50_v1_5_both_ways_at_224():
    hub = randomise(backbone(50), seed=1)
    ours = convert.from_keras_hub(hub)
    assert keras_resnet.architecture_of(ours).variant == "v1.5"
    x = real_images(224)
    expected = run(hub, x)
    assert_same(run(ours, x), expected)
    assert_same(run(convert.to_keras_hub(ours), x), expected)


@pytest.mark.parametrize("overrides, message", [
    (dict(block_type="basic_block_vd"), "block_type='basic_block_vd'.*'_vd' ones.*no keras_resnet counterpart"),
    (dict(use_pre_activation=True), "ResNetV2"),
    (dict(input_conv_filters=[32, 32, 64], input_conv_kernel_sizes=[3, 3, 3]),
     r"input_conv_filters=\[32, 32, 64\].*\[64\]"),
    (dict(stackwise_num_blocks=[2, 2, 2, 3]), r"basic blocks per stage \[2, 2, 2, 3\]"),
])
def test_from_keras_hub_refuses_what_does_not_map(overrides, message):
    with pytest.raises(ValueError, match=message):
        convert.from_keras_hub(backbone(18, **overrides))


def test_to_keras_hub_refuses_nets_keras_hub_lacks():
    checks = [
        (keras_resnet.ResNet(8), "CIFAR net"),
        (keras_resnet.ResNet(18, shortcut="C", input_shape=(32, 32, 3)), "shortcut 'C'"),
        (keras_resnet.ResNet(50, input_shape=(32, 32, 3)), "variant='v1'"),
        (keras_resnet.ResNet(18, include_top=False, pooling="avg", input_shape=(32, 32, 3)), "pooling='avg'"),
    ]
    for model, message in checks:
        with pytest.raises(ValueError, match=f"has no keras-hub counterpart.*{message}"):
            convert.to_keras_hub(model)


def test_other_converters_and_architecture_of_point_keras_hub_models_to_from_keras_hub(hub18):
    for function in (convert.from_keras_cv, convert.from_keras_applications, keras_resnet.architecture_of):
        with pytest.raises(ValueError, match=r"keras-hub ResNetImageClassifier.*convert\.from_keras_hub"):
            function(hub18)
    with pytest.raises(ValueError, match=r"keras-hub ResNetBackbone.*convert\.from_keras_hub"):
        keras_resnet.architecture_of(hub18.backbone)
    with pytest.raises(ValueError, match="takes a keras_hub.models.ResNetBackbone.*'resnet8'"):
        convert.from_keras_hub(keras_resnet.ResNet(8))
