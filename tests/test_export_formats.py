"""ONNX, LiteRT and OpenVINO exports, each run in its own runtime (fast).

Every file is run by its real runtime (onnxruntime, ai-edge-litert,
openvino) through keras_resnet.runtimes and compared with Keras. The
runtimes come from the deploy extra; without it these tests skip, except
under CI=true, where they fail.
"""

import os
import pathlib
import sys

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import formats
from keras_resnet import runtimes

from conftest import deploy_runtime
from helpers_export import RUNTIME_MODULES, export_each, pixels, randomize_batchnorm, tiny_model

FLOAT_FORMATS = {"onnx": "m.onnx", "litert": "m.tflite", "openvino": "m_openvino"}


def images_with_nan(count=4, seed=0):
    """Raw pixels; row 1 has one NaN pixel, row 2 one +inf pixel."""
    x = pixels((count, 32, 32, 3), seed).astype("float32")
    x[1, 5, 7, 2] = np.nan
    x[2, 3, 2, 0] = np.inf
    return x


@pytest.fixture(scope="module")
def net():
    """A CIFAR ResNet-8 (ResNet-20's layers, one block a stage) with
    trained-looking BN, 0..255 pixels in (Rescaling inside). Small, so that
    six exports cost ~15 s; ResNet-20, 56 and 110 are exported in
    test_export_formats_realdata.py and test_export_networks.py."""
    inner = randomize_batchnorm(keras_resnet.ResNet(8))
    inputs = keras.Input((32, 32, 3), name="pixels")
    model = keras.Model(inputs, inner(keras.layers.Rescaling(1 / 255.0)(inputs)))
    return model


@pytest.fixture(scope="module")
def exported(net, tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    paths = export_each(net, root, FLOAT_FORMATS)
    paths["dynamic"] = keras_resnet.export_tflite(net, root / "d.tflite", quantization="dynamic")
    calibration = pixels((64, 32, 32, 3), seed=5)
    calibration[0, 0, 0] = (0, 0, 0)  # the uint8 input needs the full 0..255 range
    calibration[1, 0, 0] = (255, 255, 255)
    for io in ("float32", "uint8"):
        paths[f"int8_{io}"] = keras_resnet.export_tflite(
            net, root / f"int8_{io}.tflite", quantization="int8",
            calibration_images=calibration, io_dtype=io)
    return paths


@pytest.mark.parametrize("fmt", list(FLOAT_FORMATS))
def test_float_formats_match_keras_and_keep_nan(net, exported, fmt):
    predict = runtimes.load(exported[fmt])
    x = images_with_nan(5)
    expected = net.predict(np.nan_to_num(x, nan=0.0, posinf=0.0), verbose=0)
    out = predict(x)
    assert out.shape == (5, 10) and out.dtype == np.float32
    assert np.isnan(out[1:3]).all(), out[1:3]
    clean = [0, 3, 4]
    np.testing.assert_allclose(out[clean], expected[clean], atol=1e-5, rtol=0)
    # The batch dimension is dynamic: one image alone gives the same answer.
    np.testing.assert_allclose(predict(x[:1]), expected[:1], atol=1e-5, rtol=0)


def test_onnx_names_and_shapes(exported):
    deploy_runtime("onnxruntime")
    import onnx

    proto = onnx.load(exported["onnx"])
    (value,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
    assert (value.name, dims) == ("images", ["batch", 32, 32, 3])
    (output,) = proto.graph.output
    dims = [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
    assert (output.name, dims) == ("probabilities", ["batch", 10])
    assert {o.domain: o.version for o in proto.opset_import}[""] == 15


def test_openvino_directory_and_precision(net, exported):
    path = pathlib.Path(exported["openvino"])
    assert sorted(p.name for p in path.iterdir()) == ["model.bin", "model.xml"]
    x = pixels((4, 32, 32, 3)).astype("float32")
    expected = net.predict(x, verbose=0)
    # bf16, OpenVINO's CPU default where the CPU has bf16 units: close, not equal.
    bf16 = runtimes.load(path, precision="bf16")(x)
    assert np.abs(bf16 - expected).max() < 0.05
    with pytest.raises(ValueError, match="precision='fp16'"):
        runtimes.load(path, precision="fp16")


def test_dynamic_range_is_smaller_and_close(net, exported):
    x = pixels((8, 32, 32, 3)).astype("float32")
    out = runtimes.load(exported["dynamic"])(x)
    assert np.abs(out - net.predict(x, verbose=0)).max() < 0.05
    assert os.path.getsize(exported["dynamic"]) < 0.5 * os.path.getsize(exported["litert"])


def test_int8_files_are_full_integer(net, exported):
    from tensorflow.lite.tools import flatbuffer_utils

    deploy_runtime("ai_edge_litert.interpreter")
    for io, in_dtype, out_quant in (("float32", "float32", None), ("uint8", "uint8", (1 / 256, 0))):
        path = exported[f"int8_{io}"]
        graph = flatbuffer_utils.read_model(path).subgraphs[0]
        types = {flatbuffer_utils.schema_fb.TensorType.INT8: "int8", 0: "float32", 3: "uint8"}
        conv_weights = [
            graph.tensors[op.inputs[1]] for op in graph.operators
            if len(op.inputs) > 1 and len(graph.tensors[op.inputs[1]].shape) == 4
        ]
        assert conv_weights and all(types.get(t.type) == "int8" for t in conv_weights)
        predict = runtimes.load(path)
        assert predict.input_dtype == np.dtype(in_dtype)
        if out_quant:
            quant = graph.tensors[graph.inputs[0]].quantization
            assert (float(quant.scale[0]), int(quant.zeroPoint[0])) == (1.0, 0)
            quant = graph.tensors[graph.outputs[0]].quantization
            assert (float(quant.scale[0]), int(quant.zeroPoint[0])) == out_quant
        x = pixels((8, 32, 32, 3), seed=9).astype("float32")
        out = predict(x)
        # A random net's probabilities, quantized in 1/256 steps: close, not equal.
        assert out.shape == (8, 10) and np.abs(out - net.predict(x, verbose=0)).max() < 0.1
        # Full-integer arithmetic has no NaN: an image with a NaN pixel would get an
        # ordinary answer, so it is refused (issue 29; it was answered).
        with pytest.raises(ValueError, match=r"(has|have) no NaN.*[Ii]mages \[1, 2\] have such pixels"):
            predict(images_with_nan(4))
    assert os.path.getsize(exported["int8_float32"]) < 0.4 * os.path.getsize(exported["litert"])


@pytest.mark.parametrize("fmt", list(FLOAT_FORMATS))
def test_features_model(fmt, tmp_path):
    deploy_runtime(RUNTIME_MODULES[fmt])
    model = randomize_batchnorm(keras_resnet.ResNet(8, include_top=False, pooling="avg"))
    path = keras_resnet.export(model, tmp_path / FLOAT_FORMATS[fmt], format=fmt)
    x = pixels((3, 32, 32, 3)).astype("float32") / 255
    out = runtimes.load(path)(x)
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=1e-4, rtol=1e-5)
    if fmt == "onnx":
        import onnx

        assert [o.name for o in onnx.load(path).graph.output] == ["features"]


@pytest.mark.parametrize("fmt", list(FLOAT_FORMATS) + ["int8"])
def test_existing_path_needs_overwrite(fmt, tmp_path):
    deploy_runtime(RUNTIME_MODULES.get(fmt, "ai_edge_litert.interpreter"))
    # The same nets whatever ran before: int8's error on this unnormalised net
    # is one output step (0.0039) for seeds 0-9 but seed 5 (0.082, a flipped
    # class); unseeded, the test failed about one run in ten, on main too.
    keras.utils.set_random_seed(0)
    kwargs = {"format": "litert", "quantization": "int8",
              "calibration_images": np.linspace(0, 255, 8 * 8 * 8 * 3).reshape(8, 8, 8, 3)} \
        if fmt == "int8" else {"format": fmt}
    path = tmp_path / FLOAT_FORMATS.get(fmt, "m.tflite")
    if fmt == "openvino":
        path.mkdir()
        (path / "model.xml").write_text("old")
    else:
        path.write_text("old")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        keras_resnet.export(tiny_model(), path, **kwargs)
    kept = path / "model.xml" if fmt == "openvino" else path
    assert kept.read_text() == "old"
    model = tiny_model()
    keras_resnet.export(model, path, overwrite=True, **kwargs)
    x = pixels((2, 8, 8, 3)).astype("float32")
    tolerance = 0.02 if fmt == "int8" else 1e-5
    np.testing.assert_allclose(runtimes.load(path)(x), model.predict(x, verbose=0), atol=tolerance)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no staging left


def without_weights():
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))


def with_nan_weights():
    model = tiny_model()
    model.layers[-1].kernel.assign(np.full((4, 3), np.nan, "float32"))
    return model


@pytest.mark.parametrize(
    "model, kwargs, message",
    [
        (without_weights, {"format": "onnx"}, "has no weights"),
        (with_nan_weights, {"format": "litert"}, r"NaN or infinite values \(.*kernel\)"),
        (with_nan_weights, {"format": "openvino"}, "nothing was exported"),
        (tiny_model, {"format": "litert", "quantization": "int8"},
         r"quantization='int8' needs calibration images.*calibration_images=.*zoo.export"),
        (tiny_model, {"format": "litert", "quantization": "int8", "calibration_images": np.zeros((4, 32, 32, 3))},
         r"images of shape \(8, 8, 3\).*Received an array of shape \(4, 32, 32, 3\)"),
        (tiny_model, {"format": "litert", "quantization": "int8", "calibration_images": [np.zeros((8, 8))]},
         r"Received an array of shape \(8, 8\)"),
        (tiny_model, {"format": "litert", "quantization": "int8",
                      "calibration_images": np.zeros((4, 8, 8, 3), bool)}, "Received dtype bool"),
        (tiny_model, {"format": "litert", "quantization": "int8", "calibration_images": []},
         "`calibration_images` is empty"),
        (tiny_model, {"format": "litert", "quantization": "int8",
                      "calibration_images": np.full((2, 8, 8, 3), np.nan)}, "NaN or infinite pixels"),
        (tiny_model, {"format": "litert", "quantization": "int8", "calibration_images": 5},
         "Received int: 5"),
        (tiny_model, {"format": "litert", "calibration_images": np.zeros((4, 8, 8, 3))},
         "only used by quantization='int8'"),
        (tiny_model, {"format": "litert", "io_dtype": "uint8"}, "io_dtype='uint8' needs quantization='int8'"),
        (tiny_model, {"format": "litert", "quantization": "int8", "io_dtype": "int16",
                      "calibration_images": np.zeros((4, 8, 8, 3))}, "io_dtype='int16'"),
        (tiny_model, {"format": "litert", "quantization": "float16"}, "quantization='float16'"),
        (tiny_model, {"format": "onnx", "quantization": "int8"}, "applies to format='litert' only"),
        (tiny_model, {"format": "onnx", "class_names": ["a", "b", "c"]}, "`class_names` applies to the SavedModel"),
        (tiny_model, {"format": "openvino", "endpoints": ["serve"]}, "`endpoints` applies to the SavedModel"),
        (tiny_model, {"quantization": "dynamic"}, "apply to format='litert' only"),
        (tiny_model, {"format": "tflite"}, r"`format` must be one of \('tf_saved_model', 'onnx', 'litert', 'openvino'\)"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_bad_input_is_refused_and_nothing_written(tmp_path, model, kwargs, message):
    deploy_runtime("onnxruntime")
    suffix = {"onnx": ".onnx", "litert": ".tflite"}.get(kwargs.get("format"), "")
    with pytest.raises(ValueError, match=message):
        keras_resnet.export(model(), tmp_path / f"out{suffix}", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "fmt, name, message",
    [
        ("onnx", "m.tflite", r"must end with '.onnx'. Received path='.*m.tflite'"),
        ("litert", "m.onnx", r"must end with '.tflite'"),
        ("openvino", "m.xml", "writes a directory holding model.xml and model.bin"),
    ],
)
def test_wrong_path_for_the_format(tmp_path, fmt, name, message):
    with pytest.raises(ValueError, match=message):
        keras_resnet.export(tiny_model(), tmp_path / name, format=fmt)


def test_uint8_io_refuses_calibration_that_misses_the_pixel_range(tmp_path):
    deploy_runtime("ai_edge_litert.interpreter")
    dark = pixels((8, 8, 8, 3)) // 4  # pixels 0..63
    with pytest.raises(ValueError, match=r"span 0..63, which gives input scale 0.247"):
        keras_resnet.export_tflite(tiny_model(), tmp_path / "m.tflite", quantization="int8",
                                   calibration_images=dark, io_dtype="uint8")
    assert list(tmp_path.iterdir()) == []


def test_missing_runtime_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx now fails
    with pytest.raises(ImportError, match=r"needs the tf2onnx package.*keras-resnet-zoo\[deploy\]"):
        keras_resnet.export(tiny_model(), tmp_path / "m.onnx", format="onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    (tmp_path / "x.onnx").write_bytes(b"")
    with pytest.raises(ImportError, match=r"needs the onnxruntime package.*keras-resnet-zoo\[deploy\]"):
        runtimes.load(tmp_path / "x.onnx")


def test_runtimes_load_refuses_what_is_not_an_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing exported at"):
        runtimes.load(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="is not an export of keras_resnet.export"):
        runtimes.load(tmp_path)


def test_formats_listed():
    assert formats.FORMATS == ("tf_saved_model", "onnx", "litert", "openvino")


# --- The zoo: python -m zoo.export's formats and its int8 calibration --------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A finished digits run as zoo.train leaves it (untrained weights)."""
    import dataclasses

    from zoo import files, run, train
    from zoo import model as model_lib

    recipe = dataclasses.replace(train.resolve("cifar10_resnet20"), depth=8, val_size=100)
    workdir = tmp_path_factory.mktemp("run")
    # The same net whatever ran before in this worker: int8's error depends
    # on the weights (0.004-0.009 over seeds 0-7; one unseeded draw, after
    # other tests, gave 0.137 against the test's 0.1).
    keras.utils.set_random_seed(0)
    model = model_lib.build(recipe, np.full((32, 32, 3), 40.0, np.float32))
    run.save_model(randomize_batchnorm(model), workdir / run.MODEL)
    files.write_json(workdir / run.CONFIG, {
        "recipe": recipe.to_dict(), "dataset": "digits", "data_dir": None, "mixed_precision": "float32"})
    files.write_json(workdir / run.CLASSES, [str(i) for i in range(10)])
    return workdir, recipe, model


def test_zoo_export_every_format(digits_run, tmp_path):
    from zoo import export

    deploy_runtime("onnxruntime")
    deploy_runtime("openvino")
    workdir, recipe, model = digits_run
    out = tmp_path / "out"
    written = export.export_run(
        workdir, onnx=out / "r8.onnx", openvino=out / "r8_openvino",
        tflite=out / "r8_int8.tflite", quantization="int8", calibration_images=40)
    # In the formats' table's order, the int8 record right after its file.
    assert written == [str(out / n) for n in ("r8.onnx", "r8_int8.tflite", "r8_int8.calibration.json", "r8_openvino")]
    from zoo import datasets

    # Test digits: images like the calibration ones, which set int8's ranges.
    x = datasets.load_test(datasets.parse("digits"), 32, seed=recipe.seed)[0][:16].astype("float32")
    expected = model.predict(x, verbose=0)
    for path in written[0], written[3]:
        np.testing.assert_allclose(runtimes.load(path)(x), expected, atol=1e-5, rtol=0)
    int8 = runtimes.load(written[1])(x)
    print(f"\nint8 of a random zoo ResNet-8: max |p - p_keras| {np.abs(int8 - expected).max():.3f}")
    assert np.abs(int8 - expected).max() < 0.1

    import json

    record = json.loads(pathlib.Path(written[2]).read_text())
    assert (record["images"], record["dataset"], record["split"]) == (40, "digits", "train")
    # The digits' train split is 1,438 images; the run holds out the last
    # val_size of its seeded permutation. No calibration image is a val image.
    order = np.random.default_rng(recipe.seed).permutation(1438)
    assert record["train_split_indices"] == order[:40].tolist()
    assert not set(record["train_split_indices"]) & set(order[-recipe.val_size:].tolist())


def test_zoo_calibration_images_are_the_recorded_training_files(tmp_path):
    from PIL import Image

    from zoo import calibration, train

    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("test", 3)):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(
                    tmp_path / split / name / f"{i}.png")
    import dataclasses

    recipe = dataclasses.replace(train.resolve("cifar10_resnet20"), val_size=4, classes=2)
    config = {"dataset": f"folder:{tmp_path}", "data_dir": None}
    images, record = calibration.draw(recipe, config, count=20)
    assert images.shape == (20, 32, 32, 3) and len(set(record["files"])) == 20
    assert all(f.startswith("train/") for f in record["files"])
    for image, name in zip(images, record["files"]):
        np.testing.assert_array_equal(image, np.asarray(Image.open(tmp_path / name)))
    with pytest.raises(ValueError, match="training part has 20 images"):
        calibration.draw(recipe, config, count=21)
    with pytest.raises(ValueError, match="must be an int >= 1.*Received 0"):
        calibration.draw(recipe, config, count=0)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, "Nothing to export: give at least one of --output"),
        ({"onnx": "m.tflite"}, ValueError, r"--onnx must end with '.onnx'"),
        ({"onnx": "a.onnx", "output": "a.onnx"}, ValueError, "overlap"),
        ({"openvino": "sm/ov", "output": "sm"}, ValueError, "overlap"),
        ({"tflite": "m.tflite", "io_dtype": "uint8"}, ValueError, "apply to --quantization=int8 only"),
        ({"quantization": "int8"}, ValueError, r"needs a .tflite path \(--tflite\)"),
        ({"onnx": "m.onnx", "top_k": 3}, ValueError, r"--top_k applies to the SavedModel \(--output\) only"),
        ({"tflite": "old.tflite", "quantization": "int8"}, FileExistsError,
         r"The int8 calibration record '.*old.calibration.json' exists; pass --overwrite"),
    ],
)
def test_zoo_export_refuses_before_writing(digits_run, tmp_path, monkeypatch, kwargs, error, message):
    from zoo import export

    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.calibration.json").write_text("{}")
    with pytest.raises(error, match=message):
        export.export_run(digits_run[0], **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.calibration.json"]


def test_zoo_export_refuses_an_onnx_path_inside_the_run(digits_run):
    from zoo import export

    with pytest.raises(ValueError, match=r"--onnx=.* is part of the training run .*\(checkpoints\)"):
        export.export_run(digits_run[0], onnx=digits_run[0] / "checkpoints" / "m.onnx")
