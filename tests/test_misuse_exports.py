"""Exports and runtimes misused (issue 29 items 1-4) and the formats' one table (issue 30).

Every file is written by `keras_resnet.export` (and so checked in its
runtime before it is declared written) and run by `keras_resnet.runtimes`.
Small nets: ResNet-8 on 16x16 images. The runtimes come from the deploy
extra (tests/conftest.py: deploy_runtime).
"""

import ast
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import formats
from keras_resnet import runtimes

from conftest import REPO, deploy_runtime
from helpers_export import RUNTIME_MODULES, export_each, pixels, randomize_batchnorm

FILES = {"tf_saved_model": "sm", "onnx": "m.onnx", "litert": "m.tflite", "openvino": "m_openvino"}
SIZE = 16


def pixel_net():
    """ResNet-8 (16x16) behind a Rescaling: a model that takes raw 0..255 pixels."""
    keras.utils.set_random_seed(0)
    inner = randomize_batchnorm(keras_resnet.ResNet(8, input_shape=(SIZE, SIZE, 3)))
    inputs = keras.Input((SIZE, SIZE, 3), name="pixels")
    return keras.Model(inputs, inner(keras.layers.Rescaling(1 / 255.0)(inputs)))


def calibration_pixels(count=16):
    images = pixels((count, SIZE, SIZE, 3), seed=3)
    images[0, 0, 0], images[1, 0, 0] = 0, 255  # uint8 io needs the whole 0..255 range
    return images


@pytest.fixture(scope="module")
def net():
    return pixel_net()


@pytest.fixture(scope="module")
def exported(net, tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    paths = export_each(net, root, FILES)
    paths["int8_uint8"] = keras_resnet.export(
        net, root / "u.tflite", format="litert", quantization="int8",
        calibration_images=calibration_pixels(), io_dtype="uint8")
    return paths


# --- Item 2: images checked against the file's signature -------------------

@pytest.mark.parametrize("fmt", list(FILES))
def test_every_format_checks_images_against_its_signature(net, exported, fmt):
    predict = runtimes.load(exported[fmt])
    name = pathlib.Path(exported[fmt]).name
    x = pixels((2, SIZE, SIZE, 3)).astype("float32")
    cases = [
        (x[0], r"takes images of shape \(batch, 16, 16, 3\)\. Received an array of shape \(16, 16, 3\)\. "
               r"One image without its batch axis\? Pass images\[None\]"),
        (x.transpose(0, 3, 1, 2), r"Channels first\? Pass images.transpose\(0, 2, 3, 1\)"),
        (x[..., :1], r"Received an array of shape \(2, 16, 16, 1\)\. Grayscale\?"),
        (np.concatenate([x, x[..., :1]], -1), r"RGBA\? Drop the alpha channel"),
        (pixels((2, 20, 20, 3)).astype("float32"), r"Received an array of shape \(2, 20, 20, 3\)\. Resize them"),
        (x > 100, "takes float or integer pixels. Received an array of dtype bool"),
        (np.array([["a"]]), "Received an array of dtype <U1"),
        (x[None], r"Received an array of shape \(1, 2, 16, 16, 3\)"),
    ]
    for images, message in cases:
        with pytest.raises(ValueError, match=re.escape(name) + ".*" + message):
            predict(images)
    # 0 images: an empty result of the output's shape, as ResNetModel.predict gives
    # (was: the SavedModel's EnsureShape error, LiteRT's XNNPack error).
    empty = predict(np.zeros((0, SIZE, SIZE, 3), "float32"))
    assert empty.shape == (0, 10) and empty.dtype == np.float32
    # The file still answers, as Keras does (uint8 and float64 pixels too).
    expected = net.predict(x, verbose=0)
    for images in (x, x.astype("uint8"), x.astype("float64")):
        np.testing.assert_allclose(predict(images), expected, atol=1e-5, rtol=0)
    assert predict.input_shape == (None, SIZE, SIZE, 3)


@pytest.mark.multiprocess
def test_litert_bad_calls_never_crash_the_process(net, tmp_path):
    """The issue's sequence on a dynamic-range file (there ResNet-20, here ResNet-8):
    was "double free detected" (rc 134), SIGSEGV (rc 139) or a bus error (rc 135)
    after XNNPack errors, and answers for 1-channel and 20x20 images."""
    deploy_runtime("ai_edge_litert.interpreter")
    path = keras_resnet.export(net, tmp_path / "d.tflite", format="litert", quantization="dynamic")
    script = textwrap.dedent(f"""
        import numpy as np
        from keras_resnet import runtimes
        predict = runtimes.load({path!r})
        rng = np.random.default_rng(0)
        for shape in [(8, 16, 16, 1), (8, 20, 20, 3), (0, 16, 16, 3), (2, 3, 16, 16), (16, 16, 3),
                      (0, 16, 16, 3), (2, 3, 16, 16), (8, 16, 16, 1), (2, 16, 16, 3)]:
            try:
                out = predict(rng.integers(0, 256, shape).astype("float32"))
                print(shape, "answered", out.shape)
            except ValueError as error:
                print(shape, "refused")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.splitlines() == [
        "(8, 16, 16, 1) refused", "(8, 20, 20, 3) refused", "(0, 16, 16, 3) answered (0, 10)",
        "(2, 3, 16, 16) refused", "(16, 16, 3) refused", "(0, 16, 16, 3) answered (0, 10)",
        "(2, 3, 16, 16) refused", "(8, 16, 16, 1) refused", "(2, 16, 16, 3) answered (2, 10)",
    ], result.stdout


def test_runtime_arguments_are_checked(exported):
    for threads in ("2", 0, 2.0, True):
        with pytest.raises(ValueError, match=rf"`threads` must be an int >= 1 .* Received threads={threads!r}"):
            runtimes.load(exported["onnx"], threads=threads)
    assert runtimes.load(exported["onnx"], threads=np.int64(1)).runtime == "onnxruntime"
    with pytest.raises(ValueError, match="`precision` applies to OpenVINO files only.*precision='bf16'"):
        runtimes.load(exported["litert"], precision="bf16")


@pytest.mark.parametrize("fmt, damage", [
    ("litert", "truncate"), ("onnx", "truncate"), ("openvino", "model.bin"), ("openvino", "model.xml")])
def test_a_damaged_file_is_named(exported, tmp_path, fmt, damage):
    source = pathlib.Path(exported[fmt])
    path = tmp_path / source.name
    (shutil.copytree if source.is_dir() else shutil.copy)(source, path)
    victim = path / damage if source.is_dir() else path
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"'{re.escape(str(path))}' cannot be read by .*: the file is "
                                         r"damaged or truncated, or is no \w+ export .*Export it again"):
        runtimes.load(path)(pixels((1, SIZE, SIZE, 3)).astype("float32"))


# --- Item 3: the pixel contract through exported files ----------------------

@pytest.mark.parametrize("fmt", list(FILES))
def test_raw_pixel_files_refuse_values_outside_0_255(exported, fmt):
    predict = runtimes.load(exported[fmt])
    x = pixels((2, SIZE, SIZE, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"expects raw RGB pixels in 0..255, .* up to 65535: more than 8 bits"):
        predict(x * 257)
    with pytest.raises(ValueError, match=r"values down to -1.5: it looks already normalised"):
        predict(x / 127.5 - 1.5)
    with pytest.raises(ValueError, match=r"up to 300"):
        predict(np.full((1, SIZE, SIZE, 3), 300, np.int32))
    x[1, 3, 3, 0] = np.nan  # NaN passes, and gives NaN out
    out = predict(x)
    assert np.isnan(out[1]).all() and np.isfinite(out[0]).all()
    assert predict.metadata["raw_pixels"] is True and predict.metadata["nan_out"] is True


def small_net(dtype_policy="float32"):
    """Rescaling, a conv, BN, ReLU, pooling and a float32 softmax head on 8x8 pixels,
    built under `dtype_policy`."""
    keras.utils.set_random_seed(2)
    keras.config.set_dtype_policy(dtype_policy)
    try:
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Rescaling(1 / 255.0)(inputs)
        x = keras.layers.Conv2D(4, 3, use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
        x = keras.layers.GlobalAveragePooling2D()(x)
        return randomize_batchnorm(keras.Model(
            inputs, keras.layers.Dense(10, activation="softmax", dtype="float32")(x)))
    finally:
        keras.config.set_dtype_policy("float32")


def test_raw_pixels_false_takes_any_values(tmp_path):
    deploy_runtime("onnxruntime")
    path = keras_resnet.export(small_net(), tmp_path / "m.onnx", format="onnx", raw_pixels=False)
    predict = runtimes.load(path)
    assert predict(np.full((1, 8, 8, 3), -3.0, np.float32)).shape == (1, 10)
    assert predict.metadata["raw_pixels"] is False
    with pytest.raises(ValueError, match="expects raw RGB pixels"):  # without raw_pixels=False
        runtimes.load(keras_resnet.export(small_net(), tmp_path / "raw.onnx", format="onnx"))(
            np.full((1, 8, 8, 3), -3.0, np.float32))


@pytest.mark.parametrize("make, raw", [
    (lambda: keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True), True),
    (lambda: keras_resnet.ResNet(8), False),
    (pixel_net, True),
], ids=["include_preprocessing", "bare", "rescaling"])
def test_which_models_take_raw_pixels(make, raw):
    from keras_resnet import serving

    plan = serving._Plan(make(), None, None, None, None, False)
    assert plan.raw_pixels is raw
    assert serving._Plan(make(), None, keras.layers.Rescaling(1 / 255), None, None, False).raw_pixels is True


def test_int8_files_refuse_nan_rather_than_answer(exported):
    predict = runtimes.load(exported["int8_uint8"])
    x = calibration_pixels(3).astype("float32")
    x[2, 1, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"takes uint8 pixels, which have no NaN or infinity: images \[2\]"):
        predict(x)  # was: NaN cast to uint8 silently (a RuntimeWarning) and answered
    with pytest.raises(ValueError, match="up to 256"):
        predict(np.full((1, SIZE, SIZE, 3), 256.0))  # was: clipped to 255 silently


@pytest.mark.parametrize("images, message", [
    (lambda x: x.astype("float32") * 257, r"values up to 65535: more than 8 bits"),
    (lambda x: x.astype("float32") / 127.5 - 1, r"values down to -1: it looks already normalised"),
    (lambda x: x.astype("float32") / 255, r"every `calibration_images` value lies within 0..1: images scaled to 0..1\?"),
], ids=["16-bit", "normalised", "0..1"])
def test_int8_calibration_takes_raw_pixels_only(net, tmp_path, images, message):
    deploy_runtime("ai_edge_litert.interpreter")
    with pytest.raises(ValueError, match=message):
        keras_resnet.export(net, tmp_path / "m.tflite", format="litert", quantization="int8",
                            calibration_images=images(calibration_pixels()))
    assert list(tmp_path.iterdir()) == []


# --- Item 1: mixed precision; every export checked before it is written -----

@pytest.fixture(scope="module")
def mixed_net():
    """A small net built under mixed_bfloat16, and its float32 twin with the same weights."""
    mixed = small_net("mixed_bfloat16")
    assert mixed.layers[2].compute_dtype == "bfloat16"
    twin = small_net()
    twin.set_weights(mixed.get_weights())
    return mixed, twin


@pytest.mark.parametrize("fmt", list(FILES))
def test_a_mixed_precision_model_exports_its_float32_computation(mixed_net, tmp_path, fmt):
    """Was: ONNX written but refused by onnxruntime ("float16 and bfloat16"), LiteRT
    pages of MLIR, OpenVINO refused at compile time; the SavedModel worked."""
    deploy_runtime(RUNTIME_MODULES[fmt])
    mixed, twin = mixed_net
    path = keras_resnet.export(mixed, tmp_path / FILES[fmt], format=fmt)
    predict = runtimes.load(path)
    x = pixels((4, 8, 8, 3), seed=7).astype("float32")
    np.testing.assert_allclose(predict(x), twin.predict(x, verbose=0), atol=1e-6, rtol=0)
    assert mixed.layers[2].compute_dtype == "bfloat16"  # the model is left as it was
    assert predict.metadata["model_compute_dtypes"] == ["bfloat16"]


def test_zoo_export_of_a_bf16_run(tmp_path):
    """zoo.export --onnx of a ResNet-8 run trained in mixed_bfloat16 (was: a file
    onnxruntime refuses)."""
    import dataclasses

    from zoo import export, files, run, train
    from zoo import model as model_lib

    deploy_runtime("onnxruntime")
    recipe = dataclasses.replace(train.resolve("cifar10_resnet20"), depth=8, val_size=100)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = model_lib.build(recipe, np.full((32, 32, 3), 40.0, np.float32))
    finally:
        keras.config.set_dtype_policy("float32")
    workdir = tmp_path / "run"
    workdir.mkdir()
    run.save_model(randomize_batchnorm(model), workdir / run.MODEL)
    files.write_json(workdir / run.CONFIG, {
        "recipe": recipe.to_dict(), "dataset": "digits", "data_dir": None, "mixed_precision": "mixed_bfloat16"})
    (written,) = export.export_run(workdir, onnx=tmp_path / "r8.onnx")
    x = pixels((4, 32, 32, 3)).astype("float32")
    twin = model_lib.build(recipe, np.full((32, 32, 3), 40.0, np.float32))
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(runtimes.load(written)(x), twin.predict(x, verbose=0), atol=1e-5, rtol=0)


def scaled_onnx_save(factor):
    """onnx.save that scales the largest weight of the model by `factor` first."""
    import onnx
    from onnx import numpy_helper

    save = onnx.save

    def faulty(proto, path, *args, **kwargs):
        weight = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * factor, weight.name))
        return save(proto, path, *args, **kwargs)

    return faulty


def test_a_file_that_disagrees_with_keras_is_not_written(net, tmp_path, monkeypatch):
    deploy_runtime("onnxruntime")
    import onnx

    monkeypatch.setattr(onnx, "save", scaled_onnx_save(1.01))  # 1% off in one conv
    with pytest.raises(RuntimeError, match=(
            r"The ONNX export written for '.*m.onnx' disagrees with Keras on 3 images \(random pixels 0..255, "
            r"the last with a NaN pixel\): max \|out - out_keras\| = \S+ on image \d, above \S+, the most "
            r"that float32 rounding explains \(8 layers with weights, up to 576 products per output\)\. "
            r"Nothing was written")) as error:
        keras_resnet.export(net, tmp_path / "m.onnx", format="onnx")
    assert type(error.value).__name__ == "ExportCheckError"
    assert list(tmp_path.iterdir()) == []  # neither the file nor its staging directory


def test_a_file_that_does_not_load_is_not_written(net, tmp_path, monkeypatch):
    deploy_runtime("onnxruntime")
    import onnx

    def truncated(proto, path, *args, **kwargs):
        pathlib.Path(path).write_bytes(proto.SerializeToString()[:1000])

    monkeypatch.setattr(onnx, "save", truncated)
    with pytest.raises(RuntimeError, match=r"The ONNX export written for '.*m.onnx' does not load in "
                                           r"onnxruntime .*damaged or truncated.*Nothing was written"):
        keras_resnet.export(net, tmp_path / "m.onnx", format="onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_check_needs_its_runtime_or_verify_false(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # not installed
    with pytest.raises(ImportError, match=r"format='litert' \(to check the file it writes in its runtime\) "
                                          r"needs the ai_edge_litert.interpreter package.*or pass verify=False"):
        keras_resnet.export(small_net(), tmp_path / "m.tflite", format="litert")
    assert list(tmp_path.iterdir()) == []
    keras_resnet.export(small_net(), tmp_path / "m.tflite", format="litert", verify=False)
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]


def test_the_check_bounds_come_from_the_net(net):
    """D (layers with a kernel) and K (products per output) of ResNet-8: 7 convs
    and the classifier; the widest conv is 3x3 over 64 channels."""
    from keras_resnet import export_check

    assert export_check.layers_with_weights(net) == (8, 3 * 3 * 64)


# --- Item 4: a full disk; the default calibration count ---------------------

FULL_DISK_SCRIPT = """
import errno, json, pathlib, sys
import keras_resnet
from helpers_export import randomize_batchnorm
model = randomize_batchnorm(keras_resnet.ResNet(8))
full = pathlib.Path(sys.argv[1])
results = {}
for fmt, name in (("tf_saved_model", "sm"), ("openvino", "ov"), ("onnx", "m.onnx")):
    try:
        keras_resnet.export(model, full / name, format=fmt)
        results[fmt] = "written"
    except OSError as error:
        results[fmt] = [error.errno == errno.ENOSPC, error.filename, str(error)]
results["left"] = sorted(p.name for p in full.iterdir())
print(json.dumps(results))
"""


@pytest.mark.multiprocess
def test_a_full_disk_is_an_oserror_naming_the_path(tmp_path):
    """A 200 kB tmpfs in a private mount namespace (unshare: root, or user namespaces).
    Was: TensorFlow's ResourceExhaustedError (zoo.export: uncaught), OpenVINO's
    "basic_ios::clear: iostream error"."""
    deploy_runtime("openvino")
    deploy_runtime("onnxruntime")
    unshare = shutil.which("unshare")
    probe = unshare and subprocess.run([unshare, "-rm", "true"], capture_output=True)
    if not probe or probe.returncode != 0:
        pytest.skip("no unshare -rm here: a small tmpfs cannot be mounted without root tools")
    full = tmp_path / "full"
    full.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK_SCRIPT)
    command = (f"mount -t tmpfs -o size=200k tmpfs {full} && "
               f"{sys.executable} {script} {full}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    result = subprocess.run([unshare, "-rm", "sh", "-c", command], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    for fmt, name in (("tf_saved_model", "sm"), ("openvino", "ov"), ("onnx", "m.onnx")):
        enospc, filename, message = results[fmt]
        assert enospc and filename == str(full / name), results
        assert "No space left on device" in message and "Nothing was written" in message, message
    assert results["left"] == []


def test_the_default_calibration_count_takes_what_there_is(tmp_path):
    """A run with 20 training images: the default (300) was refused with
    "Asked for 300" although nobody asked; now all 20 are used, and the record says so."""
    import dataclasses

    from PIL import Image

    from zoo import calibration, train

    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("test", 2)):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(tmp_path / split / name / f"{i}.png")
    recipe = dataclasses.replace(train.resolve("cifar10_resnet20"), val_size=4, classes=2)
    config = {"dataset": f"folder:{tmp_path}", "data_dir": None}
    images, record = calibration.draw(recipe, config)
    assert images.shape == (20, 32, 32, 3) and record["images"] == 20
    assert record["note"] == ("The run's training part has 20 images, fewer than the default 300 "
                              "calibration images: calibrating on all 20.")
    with pytest.raises(ValueError, match="Asked for 21 calibration images, but the run's training part has 20"):
        calibration.draw(recipe, config, count=21)


# --- Issue 30: one table of export formats ----------------------------------

def deploy_extra():
    """The package names of the `deploy` extra, versions dropped: from
    pyproject.toml where it declares the extras, else from setup.py."""
    pyproject = REPO / "pyproject.toml"
    extras = {}
    if pyproject.is_file():
        import tomllib

        extras = tomllib.loads(pyproject.read_text()).get("project", {}).get("optional-dependencies", {})
    if "deploy" in extras:
        entries = extras["deploy"]
    else:
        tree = ast.parse((REPO / "setup.py").read_text())
        (found,) = [k.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                    for k in node.keywords if k.arg == "extras_require"]
        entries = [e.value for e in found.values[[key.value for key in found.keys].index("deploy")].elts]
    return sorted(re.split(r"[<>=!~\[ ;]", entry)[0] for entry in entries)


def test_the_deploy_extra_lists_exactly_what_the_formats_need():
    assert deploy_extra() == formats.deploy_packages() == [
        "ai-edge-litert", "onnx", "onnxruntime", "openvino", "tf2onnx"]


def test_a_format_is_one_table_entry(net, tmp_path, monkeypatch):
    """A new format, here ONNX under another name and suffix, is one entry:
    export, runtimes.load, zoo.export's flags and the deploy benchmark follow."""
    import dataclasses

    from benchmarks import deploy
    from zoo import export as zoo_export

    deploy_runtime("onnxruntime")
    twin = dataclasses.replace(formats.TABLE["onnx"], name="onnx_twin", title="ONNX twin",
                               row="ONNX twin", suffix=".onnx2", zoo_flag="onnx2")
    monkeypatch.setitem(formats.TABLE, "onnx_twin", twin)
    path = keras_resnet.export(net, tmp_path / "m.onnx2", format="onnx_twin")
    x = pixels((2, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(runtimes.load(path)(x), net.predict(x, verbose=0), atol=1e-5, rtol=0)
    assert runtimes.load(path).metadata["format"] == "onnx_twin"
    assert zoo_export.formats()["onnx2"] is twin
    assert "ONNX twin" in [name for name, _, _ in deploy.rows()]
    with pytest.raises(ValueError, match=r"format='onnx_twin' writes one .onnx2 file: `path` must end with '.onnx2'"):
        keras_resnet.export(net, tmp_path / "m.onnx", format="onnx_twin")
