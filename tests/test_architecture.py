"""`keras_resnet.architecture_of`: what ResNet a built model is, read back exactly."""

import json
import zipfile

import keras
import pytest

import keras_resnet
from keras_resnet import architecture


@pytest.mark.parametrize("kwargs, expected", [
    (dict(depth=8), dict(family="cifar", depth=8, plain=False, shortcut="A", variant=None,
                         classes=10, include_top=True)),
    (dict(depth=8, plain=True), dict(family="cifar", depth=8, plain=True, shortcut=None,
                                     variant=None, classes=10, include_top=True)),
    (dict(depth=14, shortcut="B", classes=7), dict(family="cifar", depth=14, plain=False,
                                                   shortcut="B", variant=None, classes=7,
                                                   include_top=True)),
    (dict(depth=8, shortcut="C", include_top=False), dict(family="cifar", depth=8, plain=False,
                                                          shortcut="C", variant=None,
                                                          classes=None, include_top=False)),
    (dict(depth=18, input_shape=(64, 64, 3)), dict(family="imagenet", depth=18, plain=False,
                                                  shortcut="B", variant=None, classes=1000,
                                                  include_top=True)),
    (dict(depth=50, variant="v1.5", input_shape=(64, 64, 3), classes=3),
     dict(family="imagenet", depth=50, plain=False, shortcut="B", variant="v1.5", classes=3,
          include_top=True)),
    (dict(depth=50, family="cifar"), dict(family="cifar", depth=50, plain=False, shortcut="A",
                                          variant=None, classes=10, include_top=True)),
])
def test_architecture_of_reads_back_how_the_net_was_built(kwargs, expected):
    depth = kwargs.pop("depth")
    model = keras_resnet.ResNet(depth, **kwargs)
    arch = keras_resnet.architecture_of(model)
    assert {field: getattr(arch, field) for field in expected} == expected
    assert arch.net is model
    convs = {layer.name: tuple(layer.strides) for layer in model.layers
             if isinstance(layer, keras.layers.Conv2D)}
    assert arch.strides == convs
    assert arch.stage_outputs() == keras_resnet.stage_output_names(model)
    # The constructor it names builds the same architecture.
    rebuilt = eval(arch.constructor(), {"keras_resnet": keras_resnet})  # noqa: S307
    assert keras_resnet.architecture_of(rebuilt).constructor() == arch.constructor()
    assert {f: getattr(keras_resnet.architecture_of(rebuilt), f)
            for f in ("family", "depth", "plain", "shortcut", "variant")} == {
        f: expected[f] for f in ("family", "depth", "plain", "shortcut", "variant")}


@pytest.mark.parametrize("depth, kwargs", [(8, {}), (20, {}), (18, {"input_shape": (32, 32, 3)}),
                                           (50, {"input_shape": (32, 32, 3)})])
def test_every_shortcut_option_reads_back(depth, kwargs):
    # ResNet-8 has one block per stage: option C shows only in conv2_block1's projection.
    for shortcut in ("A", "B", "C", None):
        options = dict(kwargs, plain=True) if shortcut is None else dict(kwargs, shortcut=shortcut)
        arch = keras_resnet.architecture_of(keras_resnet.ResNet(depth, **options))
        assert (arch.depth, arch.plain, arch.shortcut) == (depth, shortcut is None, shortcut)


def test_v1_and_v1_5_differ_only_in_the_stride_they_report():
    v1 = keras_resnet.architecture_of(keras_resnet.ResNet(50, input_shape=(64, 64, 3)))
    v15 = keras_resnet.architecture_of(keras_resnet.ResNet(50, input_shape=(64, 64, 3), variant="v1.5"))
    assert (v1.variant, v15.variant) == ("v1", "v1.5")
    assert v1.strides["conv3_block1_1_conv"] == (2, 2) and v1.strides["conv3_block1_2_conv"] == (1, 1)
    assert v15.strides["conv3_block1_1_conv"] == (1, 1) and v15.strides["conv3_block1_2_conv"] == (2, 2)
    assert v1 != v15


def test_a_net_nested_in_a_model_is_found():
    net = keras_resnet.ResNet(8)
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, net(keras.layers.Rescaling(1 / 255)(inputs)), name="outer")
    arch = keras_resnet.architecture_of(outer)
    assert arch.net is net and (arch.depth, arch.shortcut) == (8, "A")
    with pytest.raises(ValueError, match="'outer' holds the keras_resnet net .* nested"):
        keras_resnet.stage_output_names(outer)


def test_a_model_that_is_not_ours_is_refused_by_name():
    inputs = keras.Input((8, 8, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="stem")(inputs), name="other")
    with pytest.raises(ValueError, match=r"Model 'other' is not a keras_resnet net.*'conv1_conv'.*'stem'"):
        keras_resnet.architecture_of(other)
    with pytest.raises(ValueError, match=r"`model` must be a keras\.Model\. Received model='resnet8' \(a str\)"):
        keras_resnet.architecture_of("resnet8")


def test_a_saved_config_reads_as_the_built_model(tmp_path):
    model = keras_resnet.ResNet(14, shortcut="B", classes=5)
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    layers = [(c["config"]["name"], c["config"].get("strides")) for c in config["config"]["layers"]]
    saved, built = architecture.from_layers(layers, classes=5), keras_resnet.architecture_of(model)
    assert saved == built and saved.net is None
    assert architecture.from_layers([("dense", None)]) is None
