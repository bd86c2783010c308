"""Export of a ResNet-20 trained on real CIFAR-10 (the shipped zoo_cifar10
preset): TFLite quantisation, zoo CLI, example."""

import json
import os
import pathlib
import runpy
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_resnet
from keras_resnet import runtimes
from keras_resnet import serving

from conftest import deploy_runtime, python_env

REPO = pathlib.Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.realdata]

TEST_PER_CLASS = 200


# The example's own reader: the test reads the images the way users do.
read_split = runpy.run_path(
    str(pathlib.Path(__file__).resolve().parents[1] / "examples" / "export_savedmodel.py")
)["read_split"]


@pytest.fixture(scope="module")
def trained(cifar_root):
    """The shipped ResNet-20 trained by zoo.train on real CIFAR-10 (the
    zoo_cifar10 preset), mean subtraction inside: raw 0..255 pixels in, like
    a zoo run's model.keras. Shipped rather than trained here: 300 steps of
    training cost 90 s of CI and gave a weaker net (0.43 test accuracy)."""
    test_jpeg, test_x, test_y, classes = read_split(cifar_root, "test", TEST_PER_CLASS)
    model = keras_resnet.ResNet(20, weights="zoo_cifar10", include_preprocessing=True)
    probs = model.predict(test_x.astype("float32"), batch_size=250, verbose=0)
    accuracy = float(np.mean(probs.argmax(1) == test_y))
    print(f"\nshipped zoo_cifar10 ResNet-20: test accuracy {accuracy:.1%} on {len(test_y)} images")
    # A real classifier, well above chance (10%), or the agreement tests mean little.
    assert accuracy > 0.5, accuracy
    return {"model": model, "classes": classes, "test_x": test_x, "test_y": test_y,
            "test_jpeg": test_jpeg, "probs": probs}


def run_tflite(path, images):
    deploy_runtime("ai_edge_litert.interpreter")
    predict = runtimes.load(path)
    return np.concatenate([predict(images[i:i + 100]) for i in range(0, len(images), 100)])


def test_tflite_float_and_dynamic_range(trained, tmp_path):
    images = trained["test_x"].astype("float32")
    float_path = keras_resnet.export_tflite(trained["model"], tmp_path / "float.tflite")
    float_probs = run_tflite(float_path, images)
    np.testing.assert_allclose(float_probs, trained["probs"], atol=1e-4, rtol=0)

    quant_path = keras_resnet.export_tflite(trained["model"], tmp_path / "dynamic.tflite",
                                       quantization="dynamic")
    quant_probs = run_tflite(quant_path, images)
    agreement = np.mean(quant_probs.argmax(1) == trained["probs"].argmax(1))
    print(f"\ndynamic-range TFLite: top-1 agreement {agreement:.2%} on {len(images)} images, "
          f"{os.path.getsize(quant_path)} vs {os.path.getsize(float_path)} bytes")
    assert agreement >= 0.99
    assert os.path.getsize(quant_path) < 0.5 * os.path.getsize(float_path)


def test_bytes_signature_on_real_jpegs(trained, tmp_path):
    path = serving.export(trained["model"], tmp_path / "sm", class_names=trained["classes"])
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serve_bytes"](image_bytes=tf.constant(trained["test_jpeg"]))
    np.testing.assert_allclose(out["probabilities"].numpy(), trained["probs"], atol=1e-5, rtol=0)
    names = out["top_k_names"].numpy()[:, 0].astype(str)
    np.testing.assert_array_equal(names, np.array(trained["classes"])[trained["probs"].argmax(1)])


def test_zoo_export_command(trained, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    trained["model"].save(workdir / "model.keras")
    (workdir / "classes.json").write_text(json.dumps(trained["classes"]))
    output = tmp_path / "exported"
    command = [sys.executable, "-m", "zoo.export", f"--workdir={workdir}", f"--output={output}",
               "--fold_batchnorm"]
    env = python_env(TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Wrote {output}" in result.stdout
    loaded = tf.saved_model.load(str(output))
    images = trained["test_x"][:200]
    out = loaded.signatures["serve_uint8"](images=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), trained["probs"][:200], atol=1e-4, rtol=0)
    assert set(out["top_k_names"].numpy().ravel().astype(str)) <= set(trained["classes"])

    # Again without --overwrite: refused, the export is intact.
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert again.returncode != 0
    assert "pass --overwrite to replace it" in again.stderr
    assert (output / "saved_model.pb").is_file()


def test_example_script_short_mode(cifar_root, tmp_path):
    command = [sys.executable, str(REPO / "examples" / "export_savedmodel.py"),
               f"--data={cifar_root}", "--steps=15", "--train_per_class=40",
               "--test_per_class=20", f"--output={tmp_path / 'sm'}"]
    env = python_env(TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    agreements = re.findall(r"top-1 agreement with Keras ([\d.]+)%", result.stdout)
    assert len(agreements) == 2, result.stdout
    assert all(float(a) >= 99.0 for a in agreements), result.stdout
    assert (tmp_path / "sm" / "saved_model.pb").is_file()


def test_zoo_export_onnx_and_int8_command(trained, cifar_root, tmp_path):
    """python -m zoo.export --onnx and --quantization=int8 on a run of real
    CIFAR-10: the int8 file is calibrated on the run's training images, the
    record says which, and no val or test image is among them."""
    from zoo import files, recipes

    deploy_runtime("onnxruntime")
    workdir = tmp_path / "run"
    workdir.mkdir()
    trained["model"].save(workdir / "model.keras")
    recipe = recipes.get("cifar10_resnet20")
    files.write_json(workdir / "config.json", {
        "recipe": recipe.to_dict(), "dataset": f"folder:{cifar_root}", "data_dir": None,
        "mixed_precision": "float32"})
    onnx, tflite = tmp_path / "r20.onnx", tmp_path / "r20_int8.tflite"
    command = [sys.executable, "-m", "zoo.export", f"--workdir={workdir}", f"--onnx={onnx}",
               f"--tflite={tflite}", "--quantization=int8", "--calibration_images=100"]
    env = python_env(TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    record_path = tmp_path / "r20_int8.calibration.json"
    assert result.stdout.split() == ["Wrote", str(onnx), "Wrote", str(tflite), "Wrote", str(record_path)]

    images = trained["test_x"][:200].astype("float32")
    np.testing.assert_allclose(runtimes.load(onnx)(images), trained["probs"][:200], atol=1e-4, rtol=0)
    int8 = runtimes.load(tflite)(images)
    agreement = np.mean(int8.argmax(1) == trained["probs"][:200].argmax(1))
    print(f"\nint8 from zoo.export: top-1 agreement with Keras {agreement:.1%} on 200 images")
    assert agreement >= 0.9

    record = json.loads(record_path.read_text())
    assert (record["images"], record["split"], len(set(record["files"]))) == (100, "train", 100)
    assert all(f.startswith("train/") for f in record["files"])
    # The run's val split: the last val_size of its seeded permutation of
    # the training files (zoo.pipeline / zoo.datasets), never calibrated on.
    from zoo import datasets

    classes = datasets.check_folder(cifar_root)
    paths, _ = datasets.list_folder(cifar_root / "train", classes)
    order = np.random.default_rng(recipe.seed).permutation(len(paths))
    val = {str(pathlib.Path(paths[i]).relative_to(cifar_root)) for i in order[-recipe.val_size:]}
    assert not val & set(record["files"])
