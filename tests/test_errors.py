"""Every bad argument raises a ValueError naming the value and what is valid."""

import re

import keras
import pytest

import keras_resnet


@pytest.mark.parametrize("depth", [19, 0, -6, "50", 1.5, True, 33, 2])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match=re.escape(f"Received depth={depth!r}")) as info:
        keras_resnet.ResNet(depth)
    assert "6n+2" in str(info.value)


def test_depth_does_not_fit_family():
    with pytest.raises(ValueError, match=r"family='imagenet' has depths \(18, 34, 50, 101, 152, 200\)\. Received depth=20"):
        keras_resnet.ResNet(20, family="imagenet")
    with pytest.raises(ValueError, match=r"family='cifar' needs a depth 6n\+2.*Received depth=18"):
        keras_resnet.ResNet(18, family="cifar")
    with pytest.raises(ValueError, match=r"`family` must be None, 'cifar' or 'imagenet'\. Received family='CIFAR'"):
        keras_resnet.ResNet(20, family="CIFAR")


@pytest.mark.parametrize("shortcut", ["D", "", 1])
def test_bad_shortcut(shortcut):
    with pytest.raises(ValueError, match=re.escape(f"Received shortcut={shortcut!r}")) as info:
        keras_resnet.ResNet(20, shortcut=shortcut)
    assert "('A', 'B', 'C')" in str(info.value)


def test_lowercase_shortcut_is_rejected_with_a_hint():
    with pytest.raises(ValueError, match=r"did you mean 'B'\?.*Received shortcut='b'"):
        keras_resnet.ResNet(20, shortcut="b")


def test_plain_contradicts_shortcut():
    with pytest.raises(ValueError, match=r"must be None when plain=True\. Received shortcut='C'"):
        keras_resnet.ResNet(20, shortcut="C", plain=True)
    with pytest.raises(ValueError, match=r"`plain` must be True or False\. Received plain='yes'"):
        keras_resnet.ResNet(20, plain="yes")


@pytest.mark.parametrize("classes", [0, -3, 2.5, True, "10"])
def test_bad_classes(classes):
    with pytest.raises(ValueError, match=re.escape(f"`classes` must be a positive int. Received classes={classes!r}")):
        keras_resnet.ResNet(20, classes=classes)


@pytest.mark.parametrize("pooling", ["average", "AVG", "mean", 1])
def test_bad_pooling(pooling):
    with pytest.raises(ValueError, match=re.escape(f"`pooling` must be one of (None, 'avg', 'max'). Received pooling={pooling!r}")):
        keras_resnet.ResNet(20, pooling=pooling)


@pytest.mark.parametrize(
    "depth, input_shape, minimum",
    [(20, (3, 3, 3), 4), (50, (31, 224, 3), 32), (18, (16, 16, 3), 32)],
)
def test_input_too_small_for_total_stride(depth, input_shape, minimum):
    with pytest.raises(ValueError, match=re.escape(f"downsample by {minimum}, so height and width must be ints >= {minimum}")) as info:
        keras_resnet.ResNet(depth, input_shape=input_shape)
    assert repr(input_shape) in str(info.value)


@pytest.mark.parametrize("input_shape", [(32, 32), (32, 32, 0), (32, 32, None), "32x32x3", (1, 32, 32, 3)])
def test_bad_input_shape(input_shape):
    with pytest.raises(ValueError, match="input_shape"):
        keras_resnet.ResNet(20, input_shape=input_shape)


def test_input_tensor_errors():
    with pytest.raises(ValueError, match="`input_tensor` must be a Keras tensor"):
        keras_resnet.ResNet(20, input_tensor=[1, 2, 3])
    with pytest.raises(ValueError, match=r"contradicts the shape of `input_tensor`"):
        keras_resnet.ResNet(20, input_tensor=keras.Input((32, 32, 3)), input_shape=(64, 64, 3))


def test_other_argument_errors():
    with pytest.raises(ValueError, match=r"`variant` must be one of \('v1', 'v1.5'\)\. Received variant='v2'"):
        keras_resnet.ResNet(50, variant="v2")
    with pytest.raises(ValueError, match=r"Received data_format='NHWC'"):
        keras_resnet.ResNet(20, data_format="NHWC")
    with pytest.raises(ValueError, match=r"Received weight_decay=-0.1"):
        keras_resnet.ResNet(20, weight_decay=-0.1)
    with pytest.raises(ValueError, match=r"Received classifier_activation='softmaxx'"):
        keras_resnet.ResNet(20, classifier_activation="softmaxx")
    with pytest.raises(ValueError, match=r"Received include_top=1"):
        keras_resnet.ResNet(20, include_top=1)


def test_bad_weights_argument(tmp_path):
    with pytest.raises(ValueError, match=r"preset name.*Received weights='imagenett'"):
        keras_resnet.ResNet(50, weights="imagenett")
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(ValueError, match=r"file not found.*nope\.weights\.h5"):
        keras_resnet.ResNet(20, weights=str(missing))
    with pytest.raises(ValueError, match=r"Received weights=3"):
        keras_resnet.ResNet(20, weights=3)


def test_zero_pad_shortcut_errors():
    with pytest.raises(ValueError, match=r"Received filters=0"):
        keras_resnet.ZeroPadShortcut(0)
    with pytest.raises(ValueError, match=r"needs a known channel count <= 8"):
        keras_resnet.ZeroPadShortcut(8)(keras.Input((4, 4, 16)))
