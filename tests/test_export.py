"""SavedModel/TFLite export: signatures, reload, bad input, BN folding (fast)."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnet
from keras_resnet import serving as export_lib
from keras_resnet.fold import fold_batchnorm

from conftest import deploy_runtime
from helpers_export import pixels, randomize_batchnorm, tiny_model

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A ResNet-20 exported with class names and a Rescaling preprocessing."""
    model = randomize_batchnorm(keras_resnet.resnet20())
    preprocessing = keras.layers.Rescaling(1 / 255.0)
    path = tmp_path_factory.mktemp("export") / "resnet20"
    returned = export_lib.export(
        model, path, class_names=CLASS_NAMES, preprocessing=preprocessing
    )
    images = pixels((6, 32, 32, 3))
    reference = model.predict(images.astype("float32") / 255.0, verbose=0)
    return {
        "model": model, "path": pathlib.Path(returned), "images": images,
        "reference": reference, "loaded": tf.saved_model.load(returned),
    }


def test_signatures_are_listed(exported):
    loaded = exported["loaded"]
    assert set(loaded.signatures) == {"serving_default", "serve", "serve_uint8", "serve_bytes"}
    outputs = loaded.signatures["serving_default"].structured_outputs
    assert set(outputs) == {"probabilities", "top_k_ids", "top_k_scores", "top_k_names"}
    inputs = loaded.signatures["serve_bytes"].structured_input_signature[1]
    assert inputs["image_bytes"].dtype == tf.string


def test_reload_matches_keras(exported):
    loaded, images, ref = exported["loaded"], exported["images"], exported["reference"]
    floats = images.astype("float32")
    by_endpoint = loaded.serve(floats)["probabilities"].numpy()
    by_signature = loaded.signatures["serving_default"](images=tf.constant(floats))
    by_uint8 = loaded.signatures["serve_uint8"](images=tf.constant(images))
    np.testing.assert_allclose(by_endpoint, ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(by_signature["probabilities"].numpy(), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(by_uint8["probabilities"].numpy(), ref, atol=1e-5, rtol=0)


def test_tfsm_layer_matches_keras(exported):
    layer = keras.layers.TFSMLayer(str(exported["path"]), call_endpoint="serve")
    out = layer(exported["images"].astype("float32"))
    np.testing.assert_allclose(out["probabilities"].numpy(), exported["reference"], atol=1e-5, rtol=0)


def test_top_k_ids_and_names(exported):
    out = exported["loaded"].serve(exported["images"].astype("float32"))
    expected = np.argsort(-exported["reference"], axis=1)[:, :5]
    np.testing.assert_array_equal(out["top_k_ids"].numpy(), expected)
    names = out["top_k_names"].numpy().astype(str)
    np.testing.assert_array_equal(names, np.array(CLASS_NAMES)[expected])
    np.testing.assert_allclose(
        out["top_k_scores"].numpy(), np.take_along_axis(exported["reference"], expected, 1),
        atol=1e-5,
    )


def test_bytes_signature_decodes_png_and_jpeg(exported):
    images, loaded = exported["images"], exported["loaded"]
    png = [tf.io.encode_png(image).numpy() for image in images]
    out = loaded.signatures["serve_bytes"](image_bytes=tf.constant(png))
    np.testing.assert_allclose(out["probabilities"].numpy(), exported["reference"], atol=1e-5, rtol=0)
    jpeg = [tf.io.encode_jpeg(image, quality=95).numpy() for image in images]
    decoded = np.stack([tf.io.decode_jpeg(data).numpy() for data in jpeg]).astype("float32")
    expected = exported["model"].predict(decoded / 255.0, verbose=0)
    out = loaded.serve_bytes(tf.constant(jpeg))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5, rtol=0)


def test_bytes_signature_resizes(exported):
    big = pixels((1, 64, 48, 3), seed=1)[0]
    out = exported["loaded"].serve_bytes(tf.constant([tf.io.encode_png(big).numpy()]))
    resized = tf.image.resize(big.astype("float32")[None], (32, 32)).numpy()
    expected = exported["model"].predict(resized / 255.0, verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5, rtol=0)


def test_wrong_dtype_gets_signature_error(exported):
    signature = exported["loaded"].signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor but is a uint8"):
        signature(images=tf.constant(exported["images"]))
    with pytest.raises(TypeError, match="Can not cast TensorSpec"):
        exported["loaded"].serve(exported["images"][0].astype("float32"))


def test_wrong_rank_gets_signature_error(exported):
    signature = exported["loaded"].signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"is not compatible with expected shape \[\?,32,32,3\]"):
        signature(images=tf.constant(exported["images"][0].astype("float32")))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not an image at all", "Unknown image file format"),
        ("truncated_jpeg", "Invalid JPEG data"),
        ("truncated_png", "Invalid PNG"),
    ],
)
def test_corrupt_image_bytes_give_clear_error(exported, data, message):
    image = exported["images"][0]
    if data == "truncated_jpeg":
        data = tf.io.encode_jpeg(image).numpy()[:200]
    elif data == "truncated_png":
        data = tf.io.encode_png(image).numpy()[:40]
    loaded = exported["loaded"]
    good = tf.io.encode_png(image).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serve_bytes"](image_bytes=tf.constant([good, data]))
    # The process and the loaded model keep serving.
    out = loaded.signatures["serve_bytes"](image_bytes=tf.constant([good]))
    assert out["probabilities"].shape == (1, 10)


@pytest.mark.slow  # Starts TF in a new process: ~15 s on 2 cores.
def test_saved_model_cli_lists_signatures(exported):
    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    command = [str(cli)] if cli.exists() else [
        sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(
        command + ["show", "--dir", str(exported["path"]), "--all"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    for name in ("serving_default", "serve", "serve_uint8", "serve_bytes"):
        assert f"signature_def['{name}']" in result.stdout
    for expected in ("inputs['images'] tensor_info", "inputs['image_bytes'] tensor_info",
                     "dtype: DT_UINT8", "dtype: DT_STRING", "outputs['top_k_names']",
                     "outputs['probabilities']", "shape: (-1, 32, 32, 3)"):
        assert expected in result.stdout, expected


def test_existing_path_needs_overwrite_and_stays_intact(tmp_path):
    old = tmp_path / "export"
    old.mkdir()
    (old / "saved_model.pb").write_bytes(b"old export")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_lib.export(tiny_model(), old)
    assert (old / "saved_model.pb").read_bytes() == b"old export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]

    model = tiny_model()
    export_lib.export(model, old, overwrite=True)
    loaded = tf.saved_model.load(str(old))
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded.serve(x)["probabilities"].numpy(), model.predict(x, verbose=0), atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_chosen_endpoints(tmp_path):
    path = export_lib.export(tiny_model(), tmp_path / "x", endpoints=["serve_uint8"])
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serve_uint8", "serving_default"}
    x = pixels((2, 8, 8, 3))
    out = loaded.signatures["serving_default"](images=tf.constant(x))
    assert out["probabilities"].shape == (2, 3)


def test_empty_directory_is_not_occupied(tmp_path):
    export_lib.export(tiny_model(), tmp_path)
    assert (tmp_path / "saved_model.pb").is_file()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"class_names": ["a", "b"]}, "must be a list of 3 strings"),
        ({"top_k": 4}, r"`top_k` must be an int in \[1, 3\].*top_k=4"),
        ({"top_k": 0}, "top_k=0"),
        ({"preprocessing": "caffe"}, "preprocessing='caffe'"),
        ({"image_size": (16, 16)}, r"contradicts the model's fixed input size \(8, 8\)"),
        ({"image_size": 8}, "image_size=8"),
        ({"fold_batchnorm": "yes"}, "fold_batchnorm='yes'"),
        ({"overwrite": 1}, "overwrite=1"),
        ({"endpoints": "serve"}, "endpoints='serve'"),
        ({"endpoints": ["serve", "predict"]}, r"endpoints=\['serve', 'predict'\]"),
        ({"endpoints": []}, r"endpoints=\[\]"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_lib.export(tiny_model(), tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_bad_model():
    with pytest.raises(ValueError, match="must be a keras.Model"):
        export_lib.export("resnet20", "/tmp/unused")
    inputs = keras.Input((10,))
    dense = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match=r"must take images .* Received a model with input shape \(None, 10\)"):
        export_lib.export(dense, "/tmp/unused")


def test_any_size_model_exports_with_image_size(tmp_path):
    model = randomize_batchnorm(keras_resnet.resnet20(input_shape=(None, None, 3)))
    with pytest.raises(ValueError, match=r"pass image_size=\(height, width\)"):
        export_lib.export(model, tmp_path / "no_size")
    assert not (tmp_path / "no_size").exists()
    path = export_lib.export(model, tmp_path / "any", image_size=(32, 32))
    loaded = tf.saved_model.load(path)
    for shape in [(2, 32, 32, 3), (1, 40, 56, 3)]:
        x = pixels(shape).astype("float32")
        np.testing.assert_allclose(
            loaded.serve(x)["probabilities"].numpy(), model.predict(x, verbose=0), atol=1e-5, rtol=0)
    assert loaded.signatures["serve_bytes"].structured_input_signature[1]["image_bytes"].shape == [None]


def test_logits_get_softmax_and_features_pass_through(tmp_path):
    logits_model = keras_resnet.resnet20(classifier_activation=None)
    path = export_lib.export(logits_model, tmp_path / "logits", top_k=3)
    x = pixels((2, 32, 32, 3)).astype("float32")
    loaded = tf.saved_model.load(path)  # Keep a reference: it owns the variables.
    out = loaded.serve(x)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(logits_model.predict(x, verbose=0)))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5, rtol=0)
    assert out["top_k_ids"].shape == (2, 3)

    features_model = keras_resnet.resnet20(include_top=False, pooling="avg")
    with pytest.raises(ValueError, match="needs a classifier"):
        export_lib.export(features_model, tmp_path / "f", class_names=CLASS_NAMES)
    path = export_lib.export(features_model, tmp_path / "features")
    loaded = tf.saved_model.load(path)
    out = loaded.serve(x)
    assert set(out) == {"features"}
    np.testing.assert_allclose(out["features"].numpy(), features_model.predict(x, verbose=0), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "args",
    [
        dict(depth=20),
        dict(depth=20, shortcut="B"),
        dict(depth=20, shortcut="C"),
        dict(depth=20, plain=True),
        dict(depth=18, input_shape=(64, 64, 3), classes=7),
        dict(depth=50, input_shape=(64, 64, 3), classes=7),
    ],
    ids=["cifar_A", "cifar_B", "cifar_C", "plain20", "resnet18", "resnet50"],
)
def test_fold_batchnorm_removes_every_bn(args):
    model = randomize_batchnorm(keras_resnet.ResNet(**args))
    folded = fold_batchnorm(model)
    layers = folded._flatten_layers(include_self=False, recursive=True)
    assert not [l.name for l in layers if isinstance(l, keras.layers.BatchNormalization)]
    convs = [l for l in folded.layers if isinstance(l, keras.layers.Conv2D)]
    assert convs and all(conv.use_bias for conv in convs)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(convs) == len(bns)
    x = np.random.default_rng(1).uniform(0, 1, (3,) + model.input_shape[1:]).astype("float32")
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4, rtol=0)
    # The original is unchanged.
    assert any(isinstance(l, keras.layers.BatchNormalization) for l in model.layers)


def test_fold_batchnorm_inside_nested_model():
    inner = randomize_batchnorm(keras_resnet.resnet20())
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, inner(keras.layers.Rescaling(1 / 255.0)(inputs)))
    folded = fold_batchnorm(outer)
    layers = folded._flatten_layers(include_self=False, recursive=True)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in layers)
    x = pixels((2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(x, verbose=0), outer.predict(x, verbose=0), atol=1e-4, rtol=0)


def test_export_folded_matches_keras(tmp_path):
    model = randomize_batchnorm(keras_resnet.resnet20(shortcut="B"))
    path = export_lib.export(model, tmp_path / "folded", fold_batchnorm=True)
    loaded = tf.saved_model.load(path)
    assert not any("_bn" in v.name for v in loaded.variables)
    x = pixels((4, 32, 32, 3)).astype("float32") / 255.0
    np.testing.assert_allclose(
        loaded.serve(x)["probabilities"].numpy(), model.predict(x, verbose=0), atol=1e-4, rtol=0)


def test_tflite_float_matches_keras(tmp_path):
    litert = deploy_runtime("ai_edge_litert.interpreter")
    model = randomize_batchnorm(keras_resnet.resnet20())
    path = keras_resnet.export_tflite(model, tmp_path / "resnet20.tflite")
    interpreter = litert.Interpreter(model_path=path)
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["images"], "outputs": ["probabilities"]}}
    runner = interpreter.get_signature_runner()
    x = pixels((1, 32, 32, 3)).astype("float32") / 255.0
    out = runner(images=x)["probabilities"]
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=1e-4, rtol=0)
    with pytest.raises(FileExistsError):
        keras_resnet.export_tflite(model, path)


def test_tflite_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="quantization='int4'"):
        keras_resnet.export_tflite(tiny_model(), tmp_path / "m.tflite", quantization="int4")
    with pytest.raises(ValueError, match=r"must end with '.tflite'"):
        keras_resnet.export_tflite(tiny_model(), tmp_path / "m.tfl")


def test_zoo_export_missing_model(tmp_path):
    from zoo import export as zoo_export

    with pytest.raises(FileNotFoundError, match="No model.keras in --workdir="):
        zoo_export.export_run(tmp_path, tmp_path / "out")
