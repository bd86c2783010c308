"""The library refuses what would give a silently wrong answer (issue 13).

Architecture mismatches in `.keras` files, damaged weights and registry
files, numpy scalars, `~` in paths, normalised images with a NaN, and
layers count_flops cannot count.
"""

import json
import re

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import architecture
from keras_resnet import registry as registry_lib


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A few models saved as .keras and .weights.h5, built once."""
    root = tmp_path_factory.mktemp("saved")
    paths = {}
    for name, kwargs in {
        "plain8": dict(depth=8, plain=True),
        "resnet8": dict(depth=8),
        "resnet50": dict(depth=50, input_shape=(64, 64, 3), classes=10),
    }.items():
        depth = kwargs.pop("depth")
        model = keras_resnet.ResNet(depth, **kwargs)
        paths[name] = root / f"{name}.keras"
        model.save(paths[name])
        paths[f"{name}_h5"] = root / f"{name}.weights.h5"
        model.save_weights(paths[f"{name}_h5"])
    return paths


@pytest.mark.parametrize("file, build, differs", [
    ("plain8", dict(depth=8), r"plain: file True, model False"),
    ("resnet8", dict(depth=8, plain=True), r"plain: file False, model True"),
    ("resnet8", dict(depth=8, shortcut="B"), r"shortcut: file 'A', model 'B'"),
    ("resnet50", dict(depth=50, variant="v1.5", input_shape=(64, 64, 3), classes=10),
     r"variant: file 'v1', model 'v1.5'"),
    ("resnet50", dict(depth=50, family="cifar", classes=10), r"family: file 'imagenet', model 'cifar'"),
])
def test_keras_file_of_another_architecture_is_refused(saved, file, build, differs):
    depth = build.pop("depth")
    with pytest.raises(ValueError, match=r"saved from a different network.*" + differs) as info:
        keras_resnet.ResNet(depth, weights=str(saved[file]), **build)
    assert "keras_resnet.ResNet(" in str(info.value)  # says how to build it


def test_keras_file_of_the_same_architecture_loads(saved):
    model = keras_resnet.ResNet(8, plain=True, weights=str(saved["plain8"]))
    reference = keras.saving.load_model(saved["plain8"])
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_architecture_reads_the_same_from_a_model_and_its_file(saved):
    model = keras_resnet.ResNet(50, input_shape=(64, 64, 3), classes=10, variant="v1.5")
    built = architecture.from_layers([(l.name, getattr(l, "strides", None)) for l in model.layers])
    assert {k: getattr(built, k) for k in ("family", "depth", "plain", "shortcut", "variant")} == {
        "family": "imagenet", "depth": 50, "plain": False, "shortcut": "B", "variant": "v1.5"}
    assert architecture.from_layers([(l.name, None) for l in model.layers]).depth == 50


def damaged(path, tmp_path, how):
    data = path.read_bytes()
    target = tmp_path / f"{how}_{path.name}"
    target.write_bytes({"empty": b"", "truncated": data[: len(data) // 3]}[how])
    return target


@pytest.mark.parametrize("how", ["empty", "truncated"])
@pytest.mark.parametrize("file", ["resnet8", "resnet8_h5"])
def test_damaged_weights_file_is_named(saved, tmp_path, file, how):
    path = damaged(saved[file], tmp_path, how)
    with pytest.raises(ValueError, match=re.escape(repr(str(path))) + r" (is empty|cannot be read).*(save|download) it again"):
        keras_resnet.ResNet(8, weights=str(path))


@pytest.mark.parametrize("content, says", [("", "is empty"), ("[{", "is not valid JSON"),
                                           ('{"name": "x"}', "must hold a JSON list")])
def test_damaged_preset_registry_is_named(tmp_path, content, says):
    path = tmp_path / "presets.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(repr(str(path))) + f" {says}"):
        registry_lib.load_registry(str(path))


def test_tilde_in_weights_paths(saved, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "r8.keras").write_bytes(saved["resnet8"].read_bytes())
    model = keras_resnet.ResNet(8, weights="~/r8.keras")
    assert model.count_params() > 0
    preset = keras_resnet.register_preset("tilde_test", "~/r8.keras", depth=8, overwrite=True)
    assert preset.path == str(tmp_path / "r8.keras")
    (tmp_path / "registry.json").write_text(json.dumps(
        [{"name": "tilde_test", "path": "r8.keras", "depth": 8}]))
    assert registry_lib.load_registry("~/registry.json")[0].path == str(tmp_path / "r8.keras")


def test_numpy_scalars_are_ints():
    model = keras_resnet.ResNet(
        np.int64(20), classes=np.int32(7), input_shape=(np.int64(32), np.int64(32), np.int64(3)))
    assert model.output_shape == (None, 7) and model.name == "resnet20"
    layer = keras_resnet.ZeroPadShortcut(np.int64(32), np.int64(2))
    assert (type(layer.filters), type(layer.strides)) == (int, int)
    keras.saving.serialize_keras_object(layer)  # JSON-serialisable config
    with pytest.raises(ValueError, match=r"Received depth=np.float64\(20.0\)"):
        keras_resnet.ResNet(np.float64(20))


@pytest.mark.parametrize("values", [[-100.0, np.nan, 3.0], [np.nan, -0.5]])
def test_preprocess_input_refuses_normalised_images_with_a_nan(values):
    x = np.zeros((1, 2, 2, 3), "float32")
    x.flat[: len(values)] = values
    with pytest.raises(ValueError, match="looks already normalised"):
        keras_resnet.preprocess_input(x, weights="imagenet")


def test_preprocess_input_passes_nan_through_raw_pixels():
    x = np.full((1, 2, 2, 3), 128.0, "float32")
    x[0, 0, 0, 0] = np.nan
    out = keras.ops.convert_to_numpy(keras_resnet.preprocess_input(x, weights="imagenet"))
    assert np.isnan(out).sum() == 1  # NaN in, NaN out; the check is for negatives


def test_count_flops_counts_depthwise_separable_and_transposed():
    inputs = keras.Input((16, 16, 4))
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(inputs)
    separable = keras.layers.SeparableConv2D(6, 3, padding="same")(depthwise)
    transposed = keras.layers.Conv2DTranspose(5, 2, strides=2)(separable)
    model = keras.Model(inputs, transposed)
    expected = (16 * 16 * 3 * 3 * 4 * 2            # depthwise
                + 16 * 16 * (3 * 3 * 8 + 8 * 6)  # separable: depthwise + pointwise
                + 16 * 16 * 2 * 2 * 6 * 5)       # transposed, per input pixel
    assert keras_resnet.count_flops(model) == expected


def test_count_flops_refuses_what_it_cannot_count():
    inputs = keras.Input((8, 16))
    attention = keras.layers.MultiHeadAttention(2, 4)(inputs, inputs)
    with pytest.raises(ValueError, match=r"does not know layer 'multi_head_attention' of type MultiHeadAttention"):
        keras_resnet.count_flops(keras.Model(inputs, attention))
    inputs = keras.Input((4,))
    product = keras.ops.matmul(inputs, keras.ops.ones((4, 3)))
    with pytest.raises(ValueError, match=r"does not count operation 'matmul'"):
        keras_resnet.count_flops(keras.Model(inputs, keras.layers.Dense(2)(product)))


def test_count_flops_of_resnets_is_unchanged():
    assert keras_resnet.count_flops(keras_resnet.ResNet(50)) == 3_857_973_248
    inputs = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    model = keras.Model(inputs, keras_resnet.ResNet(20)(scaled))
    assert keras_resnet.count_flops(model) == keras_resnet.count_flops(keras_resnet.ResNet(20))


def test_export_paths_expand_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    model = keras_resnet.ResNet(8)
    assert keras_resnet.export(model, "~/saved", endpoints=("serve",)) == str(tmp_path / "saved")
    assert keras_resnet.export_tflite(model, "~/m.tflite") == str(tmp_path / "m.tflite")
    assert (tmp_path / "saved" / "saved_model.pb").exists() and (tmp_path / "m.tflite").exists()


# Issue 19: booleans, numpy scalars.

@pytest.fixture
def registry_restored():
    saved = {name: dict(entries) for name, entries in registry_lib.PRESETS.items()}
    yield
    registry_lib.PRESETS.clear()
    registry_lib.PRESETS.update(saved)


@pytest.mark.parametrize("build", [
    lambda flag: keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=flag),
    lambda flag: keras_resnet.ResNet(8, plain=flag),
    lambda flag: keras_resnet.ResNet(8, include_top=flag),
], ids=["include_preprocessing", "plain", "include_top"])
def test_model_flags_must_be_booleans(build):
    # "no" is a truthy string: include_preprocessing="no" added the layer.
    with pytest.raises(ValueError, match=r"must be True or False\. Received \w+='no'"):
        build("no")
    with pytest.raises(ValueError, match=r"must be True or False\. Received \w+=1"):
        build(1)


def test_export_flags_must_be_booleans(tmp_path):
    model = keras_resnet.ResNet(8)
    existing = tmp_path / "m.tflite"
    existing.write_bytes(b"keep me")
    with pytest.raises(ValueError, match=r"`overwrite` must be True or False\. Received overwrite='no'"):
        keras_resnet.export_tflite(model, existing, overwrite="no")
    assert existing.read_bytes() == b"keep me"  # was replaced
    with pytest.raises(ValueError, match=r"`verbose` must be True or False\. Received verbose='no'"):
        keras_resnet.export(model, tmp_path / "saved", verbose="no")
    with pytest.raises(ValueError, match=r"`fold_batchnorm` must be True or False"):
        keras_resnet.export_tflite(model, tmp_path / "new.tflite", fold_batchnorm="no")
    assert not (tmp_path / "saved").exists() and not (tmp_path / "new.tflite").exists()


def test_registry_flags_must_be_booleans(saved, tmp_path, registry_restored):
    keras_resnet.register_preset("flag_test", saved["resnet8"], depth=8)
    with pytest.raises(ValueError, match=r"`overwrite` must be True or False\. Received overwrite='no'"):
        keras_resnet.register_preset("flag_test", saved["plain8"], depth=8, overwrite="no")
    assert registry_lib.get_preset("flag_test", 8).path == str(saved["resnet8"])  # was replaced
    with pytest.raises(ValueError, match=r"'bgr' must be True or False\. Received bgr='no'"):
        keras_resnet.register_preset(
            "flag_test2", saved["resnet8"], depth=8, preprocessing={"mean": (1, 2, 3), "bgr": "no"})
    registry = tmp_path / "presets.json"
    registry.write_text(json.dumps([{"name": "flag_test", "path": str(saved["resnet8"]), "depth": 8,
                                     "overwrite": "false"}]))
    with pytest.raises(ValueError, match=re.escape(repr(str(registry))) + r".*'flag_test'.*overwrite='false'"):
        registry_lib.load_registry(registry)


def test_numpy_scalars_where_python_numbers_are_accepted(tmp_path):
    model = keras_resnet.ResNet(8, weight_decay=np.float32(1e-4), plain=np.bool_(False),
                                include_top=np.bool_(True))
    regularizer = model.get_layer("conv1_conv").kernel_regularizer
    assert type(regularizer.l2) is float and regularizer.l2 == pytest.approx(5e-5)
    assert keras_resnet.ResNet(8, weight_decay=np.int64(0)).get_layer("conv1_conv").kernel_regularizer is None
    assert keras_resnet.ResNet(8, plain=np.bool_(True)).name == "plain8"
    keras_resnet.export(model, tmp_path / "saved", endpoints=("serve",), overwrite=np.bool_(False))
    for bad in (float("nan"), float("inf"), -1e-4, "1e-4", True):
        with pytest.raises(ValueError, match=r"`weight_decay` must be None or a finite float >= 0"):
            keras_resnet.ResNet(8, weight_decay=bad)


@pytest.mark.parametrize("names, why", [
    ("abcdefghij", "a str"),                        # served b'a', b'b', ...
    ({f"c{i}": i for i in range(10)}, "a dict"),    # served in key order
    ({f"c{i}" for i in range(10)}, "a set"),        # no order at all
    ([f"c{i % 5}" for i in range(10)], "names ['c0'"),  # two classes, one name
    (list(range(10)), "10 entries"),
])
def test_export_class_names_must_be_a_sequence_of_strings(names, why, tmp_path):
    model = keras_resnet.ResNet(8)
    with pytest.raises(ValueError, match=r"`class_names` must be a list of 10 strings") as error:
        keras_resnet.export(model, tmp_path / "out", class_names=names, endpoints=("serve",))
    assert why in str(error.value)
    assert not (tmp_path / "out").exists()


def test_export_class_names_as_a_tuple_or_numpy_array(tmp_path):
    import tensorflow as tf

    model = keras_resnet.ResNet(8)
    names = tuple(f"class {i}" for i in range(10))
    for i, given in enumerate((names, np.array(names))):
        path = keras_resnet.export(model, tmp_path / f"out{i}", class_names=given, endpoints=("serve",))
        loaded = tf.saved_model.load(path)  # kept alive while its function runs
        out = loaded.serve(tf.zeros((1, 32, 32, 3)))
        assert out["top_k_names"].numpy()[0, 0].decode() in names


# .weights.h5 files: a ResNet's records the weightless layers too (73 groups
# for ResNet-20, 62 for plain-20: the `add` and `zero_pad_shortcut` ones).

@pytest.mark.parametrize("file, build, says", [
    ("plain8_h5", dict(), r"saved from a plain net.*model 'resnet8' has 3 residual additions.*plain=True"),
    ("resnet8_h5", dict(plain=True), r"3 residual additions.*model 'plain8' is a plain net.*ResNet\(8\)"),
])
def test_weights_h5_of_a_plain_net_and_its_resnet_are_told_apart(saved, file, build, says):
    with pytest.raises(ValueError, match=says) as error:
        keras_resnet.ResNet(8, weights=str(saved[file]), **build)
    assert repr(str(saved[file])) in str(error.value)


def test_weights_h5_of_plain18_into_resnet18_option_a(tmp_path):
    kwargs = dict(input_shape=(64, 64, 3), classes=10)
    keras_resnet.ResNet(18, plain=True, **kwargs).save_weights(tmp_path / "plain18.weights.h5")
    with pytest.raises(ValueError, match=r"saved from a plain net.*8 residual additions, 3 option-A"):
        keras_resnet.ResNet(18, shortcut="A", weights=str(tmp_path / "plain18.weights.h5"), **kwargs)


def test_weights_h5_of_v1_and_v1_5_cannot_be_told_apart(saved):
    # Same layers, same shapes, only a stride differs, and a .weights.h5 has
    # no strides: this one still loads (documented: docs/pretrained-weights.md, "Local files").
    model = keras_resnet.ResNet(50, variant="v1.5", input_shape=(64, 64, 3), classes=10,
                                weights=str(saved["resnet50_h5"]))
    assert model.count_params() > 0


def test_weights_h5_still_loads_without_the_top_and_with_preprocessing(saved, tmp_path):
    keras_resnet.ResNet(8, include_top=False, weights=str(saved["resnet8_h5"]))
    keras_resnet.ResNet(8, pooling="max", weights=str(saved["resnet8_h5"]))
    path = tmp_path / "pre.weights.h5"
    keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True).save_weights(path)
    keras_resnet.ResNet(20, weights=str(path))


def test_h5_dataset_larger_than_the_file_is_refused(saved, tmp_path):
    # HDF5 datasets may be declared with any shape and never written (they
    # read as the fill value): a file under 1 MB declaring a 4 TB kernel.
    import h5py

    path = tmp_path / "bomb.weights.h5"
    path.write_bytes(saved["resnet8_h5"].read_bytes())
    with h5py.File(path, "r+") as f:
        del f["layers/conv2d/vars/0"]
        f["layers/conv2d/vars"].create_dataset("0", shape=(10**6, 10**6), dtype="f4", chunks=(1000, 1000))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ValueError, match=re.escape(repr(str(path))) + r".*4000000000000 bytes.*stores 0"):
        keras_resnet.ResNet(8, weights=str(path))


# predict checks what Keras does not (issue 19, "Weak").

@pytest.fixture(scope="module")
def resnet8():
    return keras_resnet.ResNet(8)


def test_predict_on_no_images_returns_no_predictions(resnet8):
    # Keras's predict loop raised UnboundLocalError ('batch_outputs').
    out = resnet8.predict(np.zeros((0, 32, 32, 3), "float32"), verbose=0)
    assert out.shape == (0, 10) and out.dtype == np.float32
    backbone = keras_resnet.ResNet(8, include_top=False, input_shape=(None, None, 3))
    assert backbone.predict(np.zeros((0, 40, 48, 3), "float32"), verbose=0).shape == (0, 10, 12, 64)


def test_predict_on_one_image_without_its_batch_axis(resnet8):
    resnet8.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)  # traced once before
    with pytest.raises(ValueError, match=r"batch of images.*shape \(32, 32, 3\).*x\[None\]"):
        resnet8.predict(np.zeros((32, 32, 3), "float32"), verbose=0)


def test_predict_on_another_image_size_after_a_first_call(resnet8):
    # After two sizes, Keras's predict function relaxes its shapes and ran a
    # 32x32 model on 64x64 images without a word.
    resnet8.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"takes 32x32x3 images.*\(2, 64, 64, 3\).*input_shape=\(None, None, 3\)"):
        resnet8.predict(np.zeros((2, 64, 64, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"takes 32x32x3 images.*\(2, 48, 48, 3\)"):
        resnet8.predict(np.zeros((2, 48, 48, 3), "float32"), verbose=0)
    assert resnet8.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0).shape == (1, 10)
    anywhere = keras_resnet.ResNet(8, input_shape=(None, None, 3))
    for size in (32, 64, 48):
        assert anywhere.predict(np.zeros((1, size, size, 3), "float32"), verbose=0).shape == (1, 10)


def test_predict_refuses_out_of_range_pixels_with_preprocessing_inside():
    model = keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True)
    raw = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    assert np.isfinite(model.predict(raw, verbose=0)).all()
    with pytest.raises(ValueError, match=r"values up to 6.*16-bit"):
        model.predict(raw * 257, verbose=0)
    raw[0, 0, 0, 0] = np.nan
    assert np.isnan(model.predict(raw, verbose=0)[0]).all()  # NaN in, NaN out


def test_resnet_models_save_and_load_as_before(tmp_path, resnet8):
    path = tmp_path / "r8.keras"
    resnet8.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_resnet.ResNetModel)
    with pytest.raises(ValueError, match="batch of images"):
        loaded.predict(np.zeros((32, 32, 3), "float32"), verbose=0)
    folded = keras_resnet.fold_batchnorm(resnet8)
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(x, verbose=0), resnet8.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("stages, says", [
    ("conv3", r"a list of stage names.*Received stages='conv3'.*\['conv3'\]"),   # split into letters
    ([], r"at least one stage.*Received stages=\[\]"),
    (["conv3", "conv3"], r"each stage once.*Received stages=\['conv3', 'conv3'\]"),
    (["conv9"], r"must be among \['conv2', 'conv3', 'conv4'\].*Received stages=\['conv9'\]"),
])
def test_feature_extractor_stages(resnet8, stages, says):
    with pytest.raises(ValueError, match=says):
        keras_resnet.feature_extractor(resnet8, stages)


def test_feature_extractor_keeps_the_order_asked(resnet8):
    features = keras_resnet.feature_extractor(resnet8, ("conv4", "conv2"))
    assert list(features.output) == ["conv4", "conv2"]


def _unbuilt():
    return keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.Dense(3)])


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(4, 3)

    def call(self, x):
        return self.conv(x)


@pytest.mark.parametrize("call", [
    keras_resnet.count_flops,
    keras_resnet.fold_batchnorm,
    keras_resnet.stage_output_names,
    keras_resnet.feature_extractor,
    keras_resnet.convert.from_keras_applications,
    keras_resnet.convert.from_keras_cv,
    lambda model: keras_resnet.export(model, "/nonexistent/never-written"),
    lambda model: keras_resnet.export_tflite(model, "/nonexistent/never-written.tflite"),
], ids=["count_flops", "fold_batchnorm", "stage_output_names", "feature_extractor",
        "from_keras_applications", "from_keras_cv", "export", "export_tflite"])
def test_functions_taking_a_model_refuse_a_string_and_a_model_without_a_graph(call):
    with pytest.raises(ValueError, match=r"`model` must be a keras\.Model\. Received model='resnet50' \(a str\)"):
        call("resnet50")
    with pytest.raises(ValueError, match=r"`model` must be a built functional.*'sequential\w*'.*no inputs yet"):
        call(_unbuilt())
    subclassed = _Subclassed()
    subclassed(np.zeros((1, 8, 8, 3), "float32"))  # built, but no graph of layers
    with pytest.raises(ValueError, match=r"`model` must be a built functional.*subclassed"):
        call(subclassed)


def test_count_flops_of_a_built_sequential():
    model = _unbuilt()
    model.build((None, 8, 8, 3))
    assert keras_resnet.count_flops(model) == 6 * 6 * 3 * 3 * 3 * 4 + 6 * 6 * 4 * 3


@pytest.mark.parametrize("state_dict, says", [
    ("resnet18.safetensors", r"a str.*load_safetensors\(path\)"),
    ([("conv1.weight", np.zeros(3))], r"a list"),
])
def test_from_torchvision_takes_a_mapping(state_dict, says):
    with pytest.raises(ValueError, match=r"`state_dict` must be a mapping.*" + says):
        keras_resnet.convert.from_torchvision(state_dict)


def test_from_cifar_option_a_keys_must_be_strings():
    with pytest.raises(ValueError, match=r"keys must be strings.*Received a key 3"):
        keras_resnet.convert.from_cifar_option_a({"state_dict": {3: np.zeros(3)}})


@pytest.mark.parametrize("statistics, says", [
    ({"mean": (1.0, 2.0, 3.0), "std": (0.0, 1.0, 1.0)}, r"'std' must be 3 finite values > 0.*0\.0"),
    ({"mean": (np.nan, 2.0, 3.0), "std": (1.0, 1.0, 1.0)}, r"'mean' must be finite values in 0\.\.255.*nan"),
    ({"mean": np.full((32, 32, 3), np.inf), "std": (1, 1, 1)}, r"'mean' must be finite values in 0\.\.255.*inf"),
    ({"mean": (1.0, 2.0, 3.0), "std": (-1.0, 1.0, 1.0)}, r"'std' must be 3 finite values > 0"),
    ({"mean": (1.0, 2.0, 3.0), "std": (1.0, 1.0)}, r"'std' must be 3 finite values > 0"),
    ({"mean": (300.0, 2.0, 3.0)}, r"'mean' must be finite values in 0\.\.255.*300"),
    ({"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}, r"0\.\.1 units.*multiply.*by 255"),
])
def test_preprocessing_statistics_must_be_pixel_statistics(saved, statistics, says, registry_restored):
    # std 0 or a NaN mean made every output NaN; 0..1 units every output wrong.
    with pytest.raises(ValueError, match=says):
        keras_resnet.register_preset("stats_test", saved["resnet8"], depth=8, preprocessing=statistics)
    with pytest.raises(ValueError, match=says):
        keras_resnet.Preprocessing(statistics)
    assert "stats_test" not in registry_lib.PRESETS
