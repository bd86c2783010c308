"""A model says what it is: its architecture record, and a decoder that refuses
rather than guess (issue 30 item 1, issue 29 item 5)."""

import json
import zipfile

import keras
import pytest

import keras_resnet
from keras_resnet import architecture, blocks, specs


def _save_without_record(model, path):
    """A .keras file as written before models carried a record."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    del config["config"]["architecture"]
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_the_record_is_saved_and_restored_in_safe_mode(tmp_path):
    model = keras_resnet.ResNet(8, shortcut="C", include_top=False, pooling="max", input_shape=(8, 8, 3))
    record = model.get_config()["architecture"]
    assert record["shortcut"] == "C" and record["pooling"] == "max" and record["include_top"] is False
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded, keras_resnet.ResNetModel)
    assert loaded.get_config()["architecture"] == record
    arch = keras_resnet.architecture_of(loaded)
    assert arch == keras_resnet.architecture_of(model) and arch.net is loaded
    # The constructor keeps the top, the pooling and the input shape.
    assert arch.constructor() == (
        "keras_resnet.ResNet(8, shortcut='C', include_top=False, pooling='max', input_shape=(8, 8, 3))")


def test_the_record_holds_what_names_cannot_say(tmp_path):
    model = keras_resnet.ResNet(20, weights="cifar10")  # shipped: no download
    arch = keras_resnet.architecture_of(model)
    assert (arch.weights, arch.input_preprocessing, arch.preprocessing) == ("cifar10", "torch", None)
    inside = keras_resnet.architecture_of(keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True))
    assert (inside.preprocessing, inside.input_preprocessing) == ("torch", None)
    assert inside.constructor() == "keras_resnet.ResNet(20, weights='cifar10', include_preprocessing=True)"
    # Nested in another model and saved, as the zoo saves its nets.
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, model(keras.layers.Rescaling(1.0)(inputs)), name="outer")
    outer.save(tmp_path / "outer.keras")
    loaded = keras_resnet.architecture_of(keras.saving.load_model(tmp_path / "outer.keras"))
    assert (loaded.weights, loaded.input_preprocessing, loaded.net.name) == ("cifar10", "torch", "resnet20")


def test_files_saved_before_the_record_load_and_decode(tmp_path):
    model = keras_resnet.ResNet(14, shortcut="B", classes=5)
    _save_without_record(model, tmp_path / "old.keras")
    loaded = keras.saving.load_model(tmp_path / "old.keras")
    assert "architecture" not in loaded.get_config()
    assert keras_resnet.architecture_of(loaded) == keras_resnet.architecture_of(model)
    # And they still check weights= by their names.
    with pytest.raises(ValueError, match="shortcut: file 'B', model 'A'"):
        keras_resnet.ResNet(14, classes=5, weights=str(tmp_path / "old.keras"))


def test_a_record_that_is_not_one_is_refused():
    model = keras_resnet.ResNet(8)
    record = dict(model.get_config()["architecture"], depth=21)
    with pytest.raises(ValueError, match="record's depth does not fit.*Received depth=21"):
        keras_resnet.ResNetModel(model.inputs, model.outputs, architecture=record)
    record = dict(model.get_config()["architecture"], shortcut="D")
    with pytest.raises(ValueError, match=r"record's 'shortcut' must be one of \('A', 'B', 'C'\)"):
        keras_resnet.ResNetModel(model.inputs, model.outputs, architecture=record)


# ---------------------------------------------------------------- the decoder refuses to guess


def test_a_truncated_net_is_not_a_shallower_one():
    features = keras_resnet.feature_extractor(keras_resnet.ResNet(20), ["conv3"])
    with pytest.raises(ValueError, match=r"'resnet20_features' is not a whole keras_resnet net.*"
                                         r"\(conv2: 3, conv3: 3\).*cut short"):
        keras_resnet.architecture_of(features)


def test_a_foreign_model_with_one_of_our_names_is_refused():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1_conv")(inputs)
    foreign = keras.Model(inputs, keras.layers.Dense(2, name="dense")(x), name="foreign")
    with pytest.raises(ValueError, match=r"'foreign' is not a whole keras_resnet net.*blocks per stage \(none\)"):
        keras_resnet.architecture_of(foreign)


def test_a_model_holding_two_nets_names_both():
    first, second = keras_resnet.ResNet(8, name="first"), keras_resnet.ResNet(8, plain=True, name="second")
    inputs = keras.Input((32, 32, 3))
    both = keras.Model(inputs, keras.layers.Average()([first(inputs), second(inputs)]), name="both")
    with pytest.raises(ValueError, match=r"'both' holds 2 keras_resnet nets, 'first', 'second'"):
        keras_resnet.architecture_of(both)


def test_extra_shortcut_layers_are_not_option_b():
    # A ResNet-50 layer list with four added pool layers (e.g. an option "D"
    # net read by a decoder that does not know D).
    model = keras_resnet.ResNet(50, input_shape=(32, 32, 3))
    layers = [(layer.name, getattr(layer, "strides", None)) for layer in model.layers]
    layers += [(f"conv{stage}_block1_0_pool", (2, 2)) for stage in (2, 3, 4, 5)]
    with pytest.raises(ValueError, match=r"no keras_resnet net.*option B \(v1\), has no layers "
                                         r"\['conv2_block1_0_pool', 'conv3_block1_0_pool'"):
        architecture.from_layers(layers)


def test_keras_applications_and_user_heads_still_decode():
    peer = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=3)
    arch = keras_resnet.architecture_of(peer)
    assert (arch.depth, arch.variant, arch.shortcut, arch.classes, arch.include_top) == (50, "v1", "B", 3, True)
    net = keras_resnet.ResNet(8, include_top=False)
    headed = keras.Model(net.input, keras.layers.Dense(3, name="head")(
        keras.layers.GlobalAveragePooling2D(name="gap")(net.output)))
    arch = keras_resnet.architecture_of(headed)
    assert (arch.depth, arch.include_top, arch.net) == (8, False, headed)


def test_a_folded_net_reads_as_its_net():
    model = keras_resnet.ResNet(8, shortcut="B")
    folded = keras_resnet.fold_batchnorm(model)  # a clone: no record, no BN layers
    assert "architecture" not in folded.get_config()
    assert keras_resnet.architecture_of(folded) == keras_resnet.architecture_of(model)


def test_a_new_shortcut_option_is_one_entry_in_blocks(monkeypatch):
    # Option "D" (avg-pool, then a 1x1 projection: He et al. 2019's ResNet-D),
    # added the way a developer would: one SHORTCUT_OPTIONS entry.
    def pooled_projection(x, out_channels, strides, name, options):
        if strides > 1:
            x = keras.layers.AveragePooling2D(strides, strides, padding="same", name=f"{name}_0_pool")(x)
        return blocks.conv_bn(x, out_channels, 1, 1, f"{name}_0", options)

    option_d = blocks.ShortcutOption(False, pooled_projection, ("0_pool", "0_conv", "0_bn"))
    model_d = None
    with monkeypatch.context() as patch:
        patch.setitem(blocks.SHORTCUT_OPTIONS, "D", option_d)
        patch.setattr(blocks, "SHORTCUTS", (*blocks.SHORTCUTS, "D"))
        model_d = keras_resnet.ResNet(18, shortcut="D", input_shape=(32, 32, 3))
        assert keras_resnet.architecture_of(model_d).shortcut == "D"  # the record
        assert architecture.decode({layer.name for layer in model_d.layers}).shortcut == "D"  # the names
    # A decoder without "D" refuses its names rather than call them "B".
    assert "conv3_block1_0_pool" in {layer.name for layer in model_d.layers}
    with pytest.raises(ValueError, match=r"option B, has no layers \['conv3_block1_0_pool'"):
        architecture.decode({layer.name for layer in model_d.layers})


def test_layer_names_are_the_names_resnet_gives():
    from keras_resnet import names

    # ResNet-50 option B (v1) is checked by test_extra_shortcut_layers_are_not_option_b.
    for depth, shortcut, variant in [(8, None, "v1"), (8, "A", "v1"), (8, "C", "v1"), (18, "B", "v1"),
                                     (50, "C", "v1.5")]:
        model = keras_resnet.ResNet(depth, shortcut=shortcut, plain=shortcut is None, variant=variant,
                                    include_top=False, input_shape=(32, 32, 3))
        built = {layer.name for layer in model.layers} - {names.INPUT}
        assert built == blocks.layer_names(specs.get_spec(depth), shortcut, variant)
