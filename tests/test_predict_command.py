"""`keras-resnet predict` (keras_resnet/predict.py) and the image views it feeds (keras_resnet/images.py).

In-process (`predict.main`) on a tiny ResNet-8 of 8x8 images, saved once per
module: every --weights kind, the three formats, what bad inputs get, and
that a large folder streams. The console command itself runs once (exit
statuses); on real data, ResNet-56's answers on the JPEG copy are those of
the model evaluated directly.
"""

import csv
import io
import json
import pathlib
import struct
import subprocess
import zlib

import keras
import numpy as np
import pytest
from PIL import Image

import keras_resnet
from keras_resnet import images
from keras_resnet import predict

from conftest import deploy_runtime, keras_resnet_command, python_env

SIZE = 8
CLASSES = ["cat", "dog", "emu"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A ResNet-8 of 8x8 images and 3 classes, saved as .keras, as a zoo run and as a SavedModel."""
    root = tmp_path_factory.mktemp("tiny")
    keras.utils.set_random_seed(0)
    model = keras_resnet.ResNet(8, input_shape=(SIZE, SIZE, 3), classes=3)
    model.save(root / "tiny.keras")
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "classes.json").write_text(json.dumps(CLASSES))
    keras_resnet.export(model, root / "saved", endpoints=["serve"])
    return model, root


def pixels(seed, size=SIZE):
    # Small values: raw pixels through random weights would saturate the softmax.
    return np.random.default_rng(seed).integers(0, 8, (size, size, 3)).astype(np.uint8)


def write_images(folder, count, suffix=".png", start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        Image.fromarray(pixels(i)).save(folder / f"{i:05d}{suffix}")
    return folder


def expected_top(model, arrays, top=3):
    """(names, probabilities) of the model evaluated directly on `arrays`."""
    probabilities = model.predict(np.stack(arrays).astype("float32"), verbose=0)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    return order, np.take_along_axis(probabilities, order, axis=1)


def run(capsys, *argv):
    status = predict.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def png16(path, array):
    """Writes a 16-bit RGB PNG (Pillow writes 16-bit grayscale only)."""
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- The evaluation view ------------------------------------------------------


def test_evaluation_view_resizes_the_shorter_side_then_crops_the_centre():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 200, 3)).astype(np.uint8))
    view = images.evaluation_view(image, 224, images.resize_for(224, "imagenet"))
    # 200x300 (width x height): shorter side 256, so 256x384, then rows 80..303.
    resized = np.asarray(image.resize((256, 384), Image.BILINEAR))
    np.testing.assert_array_equal(view, resized[80:304, 16:240])
    assert images.resize_for(224, "imagenet") == 256 and images.resize_for(32, "cifar") == 32
    assert images.resize_for(32) == 32 and images.resize_for(64) == 73  # unknown family: by size
    small = Image.fromarray(pixels(1, 32))
    np.testing.assert_array_equal(images.evaluation_view(small, 32), pixels(1, 32))  # taken as it is
    with pytest.raises(ValueError, match="Received size=32, resize=16"):
        images.evaluation_view(small, 32, 16)


def test_crop_fractions_name_every_family():
    from keras_resnet import specs

    assert set(images.CROP_FRACTION) == set(specs.DEFAULTS)
    assert images.CIFAR_SIZE == specs.DEFAULTS[specs.CIFAR].size


def test_sixteen_bit_and_cmyk_images_become_8_bit_rgb(tmp_path):
    deep = np.random.default_rng(0).integers(0, 65536, (SIZE, SIZE, 3)).astype(np.uint16)
    png16(tmp_path / "rgb16.png", deep)
    np.testing.assert_array_equal(np.asarray(images.open_rgb(tmp_path / "rgb16.png")), deep >> 8)
    Image.fromarray(deep[..., 0]).save(tmp_path / "gray16.png")
    gray = np.asarray(images.open_rgb(tmp_path / "gray16.png"))
    np.testing.assert_array_equal(gray, np.repeat((deep[..., :1] >> 8).astype(np.uint8), 3, axis=-1))
    Image.new("CMYK", (SIZE, SIZE), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red
    red = np.asarray(images.open_rgb(tmp_path / "cmyk.jpg"))
    assert red.shape == (SIZE, SIZE, 3) and (red[..., 0] > 240).all() and (red[..., 1:] < 15).all()


# --- The command ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["keras", "run", "saved_model"])
def test_every_kind_of_weights_gives_the_models_answers(tiny, tmp_path, capsys, kind):
    model, root = tiny
    folder = write_images(tmp_path / "photos", 5)
    weights = {"keras": root / "tiny.keras", "run": root / "run", "saved_model": root / "saved"}[kind]
    # An export does not record its size, nor its family: an 8x8 net of unknown
    # family would get the ImageNet view (shorter side 9, centre 8x8 crop).
    extra = ["--image_size", SIZE, "--resize", SIZE] if kind == "saved_model" else []
    status, out, err = run(capsys, "--weights", weights, folder, "--format=json", "--top=3", *extra)
    assert status == 0, err
    records = json.loads(out)
    assert [r["file"] for r in records] == [str(folder / f"{i:05d}.png") for i in range(5)]
    order, probabilities = expected_top(model, [pixels(i) for i in range(5)])
    names = CLASSES if kind == "run" else ["0", "1", "2"]
    for record, ids, scores in zip(records, order, probabilities):
        assert [p["class_id"] for p in record["predictions"]] == ids.tolist()
        assert [p["name"] for p in record["predictions"]] == [names[i] for i in ids]
        # float32 rounding of other batch shapes and runtimes: a few ulps of 1.
        np.testing.assert_allclose([p["probability"] for p in record["predictions"]], scores, rtol=0, atol=1e-6)
    numbered = "has 3 classes and no names for them: they are numbered 0..2"
    assert (numbered in err) == (kind != "run")


def test_an_onnx_export(tiny, tmp_path, capsys):
    deploy_runtime("onnxruntime")
    deploy_runtime("tf2onnx")
    model, _ = tiny
    path = keras_resnet.export(model, tmp_path / "tiny.onnx", format="onnx")
    write_images(tmp_path / "photos", 2)
    with pytest.raises(SystemExit) as exit:  # the names' file is not there yet
        predict.main([f"--weights={path}", "--image_size=8", "--classes", str(tmp_path / "names.txt"),
                      str(tmp_path / "photos")])
    assert exit.value.code == 2 and "names.txt', which is none of them" in capsys.readouterr().err
    (tmp_path / "names.txt").write_text("cat\ndog\nemu\n")
    status, out, err = run(capsys, f"--weights={path}", "--image_size=8", "--resize=8", "--classes",
                           tmp_path / "names.txt", tmp_path / "photos", "--format=csv")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    order, probabilities = expected_top(model, [pixels(0), pixels(1)])
    assert [r["name_1"] for r in rows] == [CLASSES[i] for i in order[:, 0]]
    np.testing.assert_allclose([float(r["probability_1"]) for r in rows], probabilities[:, 0], atol=1e-6)


def test_table_and_csv_layouts(tiny, tmp_path, capsys):
    _, root = tiny
    folder = write_images(tmp_path / "photos", 2)
    status, out, _ = run(capsys, f"--weights={root / 'run'}", folder, "--top=2")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["file", "rank", "probability", "class"] and len(lines) == 5
    assert lines[1].startswith(str(folder / "00000.png")) and lines[2].startswith(" ")
    assert [line.split()[-1] in CLASSES for line in lines[1:]] == [True] * 4
    assert lines[1].split()[1:3][0] == "1" and lines[2].split()[0] == "2" and lines[1].split()[2].endswith("%")
    status, out, _ = run(capsys, f"--weights={root / 'run'}", folder, "--format=csv", "--top=2")
    header = out.splitlines()[0].split(",")
    assert header == ["file", "class_id_1", "name_1", "probability_1", "class_id_2", "name_2", "probability_2",
                      "error"]


def test_bad_inputs_get_a_line_each_and_the_others_are_predicted(tiny, tmp_path, capsys):
    model, root = tiny
    good = write_images(tmp_path / "photos", 2)
    (good / "notes.txt").write_text("not an image, and not an image's suffix: skipped in a folder")
    (good / ".hidden.png").write_bytes(b"")
    jpeg = io.BytesIO()
    Image.fromarray(pixels(7)).save(jpeg, "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(jpeg.getvalue()[:len(jpeg.getvalue()) // 2])
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "empty").mkdir()
    deep = (pixels(3).astype(np.uint16) << 8) | 0xAB  # the high byte is pixels(3)
    png16(tmp_path / "deep.png", deep)
    Image.new("CMYK", (SIZE, SIZE), (200, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    inputs = [good, tmp_path / "truncated.jpg", tmp_path / "missing.jpg", tmp_path / "text.png",
              tmp_path / "empty", str(tmp_path / "nothing*.png"), tmp_path / "deep.png", tmp_path / "cmyk.jpg"]
    status, out, err = run(capsys, f"--weights={root / 'tiny.keras'}", *inputs, "--format=json", "--top=1")
    assert status == 1
    records = {pathlib.Path(r["file"]).name: r for r in json.loads(out)}
    assert set(records) == {"00000.png", "00001.png", "truncated.jpg", "text.png", "deep.png", "cmyk.jpg"}
    assert "truncated" in records["truncated.jpg"]["error"] and "cannot identify" in records["text.png"]["error"]
    cmyk_rgb = np.asarray(Image.open(tmp_path / "cmyk.jpg").convert("RGB"))
    order, scores = expected_top(model, [pixels(3), cmyk_rgb], top=1)
    for name, ids, score in zip(["deep.png", "cmyk.jpg"], order, scores):
        assert records[name]["predictions"][0]["class_id"] == ids[0]
        np.testing.assert_allclose(records[name]["predictions"][0]["probability"], score[0], atol=1e-6)
    lines = err.splitlines()
    for said in ("truncated.jpg", "missing.jpg: no such file or folder", "text.png",
                 "empty: no image files in this folder or below it", "nothing*.png: no file matches this pattern",
                 "5 of 9 inputs could not be predicted"):
        assert sum(said in line for line in lines) == 1, (said, err)


def test_nothing_to_predict_exits_1_before_loading_the_model(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status, out, err = run(capsys, "--weights=no_such_model.keras", tmp_path / "empty")
    assert (status, out) == (1, "") and "nothing to predict" in err and "no_such_model" not in err


@pytest.mark.parametrize("argv, said", [
    (["--weights=cifar10", "x.png", "--no_such_flag"], "unrecognized arguments: --no_such_flag"),
    (["x.png"], "the following arguments are required: --weights"),
    (["--weights=cifar10", "IMAGE"], "--weights=cifar10 needs --depth: one of 20, 32, 44, 56, 110, 1202"),
    (["--weights=cifar10", "--depth=21", "IMAGE"], "--weights=cifar10 has no depth 21"),
    (["--weights=nonesuch", "IMAGE"], "--weights='nonesuch' is neither a file or folder nor a preset. Presets:"),
    (["--weights=cifar10", "--depth=20", "--top=11", "IMAGE"], "--top=11 is more than the 10 classes"),
    (["--weights=cifar10", "--depth=20", "--batch_size=0", "IMAGE"], "--batch_size must be an int >= 1"),
    (["--weights=cifar10", "--depth=20", "--format=xml", "IMAGE"], "invalid choice: 'xml'"),
    (["--weights=cifar10", "--depth=20", "--classes=nonesuch", "IMAGE"], "--classes takes a class list"),
    (["--weights=cifar10", "--depth=20", "--preprocessing=torch", "IMAGE"], "--preprocessing is for model files"),
])
def test_bad_flags_exit_2_with_a_message(tmp_path, capsys, argv, said):
    write_images(tmp_path, 1)
    argv = [str(tmp_path / "00000.png") if a == "IMAGE" else a for a in argv]
    with pytest.raises(SystemExit) as exit:
        predict.main(argv)
    assert exit.value.code == 2
    assert said in capsys.readouterr().err


def test_a_preset_classifies_raw_images_with_its_names(tmp_path, capsys):
    folder = write_images(tmp_path / "photos", 0)
    arrays = [np.random.default_rng(i).integers(0, 256, (32, 32, 3)).astype(np.uint8) for i in range(3)]
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(folder / f"{i}.png")
    status, out, err = run(capsys, "--weights=cifar10", "--depth=20", folder, "--format=json", "--top=2")
    assert status == 0, err
    model = keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True)
    order, scores = expected_top(model, arrays, top=2)
    names = keras_resnet.class_lists.CIFAR10
    for record, ids, score in zip(json.loads(out), order, scores):
        assert [p["name"] for p in record["predictions"]] == [names[i] for i in ids]
        np.testing.assert_allclose([p["probability"] for p in record["predictions"]], score, atol=1e-6)


def test_a_preset_net_saved_without_its_preprocessing_gets_it_from_its_record(tmp_path, capsys):
    model = keras_resnet.ResNet(20, weights="cifar10")  # takes normalised pixels
    if getattr(model, "architecture_record", None) is None:
        pytest.skip("needs ResNetModel.architecture_record (issue 30's record of the input a preset expects)")
    model.save(tmp_path / "preset.keras")
    folder = write_images(tmp_path / "photos", 0)
    arrays = [np.random.default_rng(i).integers(0, 256, (32, 32, 3)).astype(np.uint8) for i in range(2)]
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(folder / f"{i}.png")
    status, out, err = run(capsys, f"--weights={tmp_path / 'preset.keras'}", folder, "--format=json", "--top=2")
    assert status == 0, err
    inside = keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True)
    order, scores = expected_top(inside, arrays, top=2)
    for record, ids, score in zip(json.loads(out), order, scores):
        assert [p["class_id"] for p in record["predictions"]] == ids.tolist()
        np.testing.assert_allclose([p["probability"] for p in record["predictions"]], score, atol=1e-6)


def test_logits_become_probabilities(tmp_path, capsys):
    model = keras_resnet.ResNet(8, input_shape=(SIZE, SIZE, 3), classes=3, classifier_activation=None)
    model.save(tmp_path / "logits.keras")
    write_images(tmp_path / "photos", 2)
    status, out, _ = run(capsys, f"--weights={tmp_path / 'logits.keras'}", tmp_path / "photos", "--format=json")
    logits = model.predict(np.stack([pixels(0), pixels(1)]).astype("float32"), verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    for record, expected in zip(json.loads(out), probabilities):
        got = {p["class_id"]: p["probability"] for p in record["predictions"]}
        np.testing.assert_allclose([got[i] for i in range(3)], expected, atol=1e-6)


def test_a_large_folder_streams_in_batches(tiny, tmp_path, capsys, monkeypatch):
    """Rows are written batch by batch, with at most the next batch decoded ahead."""
    _, root = tiny
    folder = write_images(tmp_path / "many", 150)
    decoded, seen = [0], []
    real_open = images.open_rgb

    def counting_open(path):
        decoded[0] += 1
        return real_open(path)

    class Out(io.StringIO):
        def write(self, text):
            seen.append((decoded[0], text.count("\n  {")))  # decoded so far, records in this write
            return super().write(text)

    monkeypatch.setattr(images, "open_rgb", counting_open)
    out = Out()
    monkeypatch.setattr("sys.stdout", out)
    assert predict.main([f"--weights={root / 'tiny.keras'}", str(folder), "--batch_size=16", "--format=json"]) == 0
    written = 0
    for decoded_then, records in seen:
        assert decoded_then - written <= 2 * 16, (decoded_then, written)
        written += records
    assert written == 150 and len(json.loads(out.getvalue())) == 150


def test_progress_bar_on_stderr_when_asked(tiny, tmp_path, capsys):
    _, root = tiny
    folder = write_images(tmp_path / "photos", 3)
    status, out, err = run(capsys, f"--weights={root / 'tiny.keras'}", folder, "--progress", "--batch_size=2")
    assert status == 0 and "3/3 images" in err and "images" not in out
    status, out, err = run(capsys, f"--weights={root / 'tiny.keras'}", folder, "--batch_size=2")
    assert "3/3 images" not in err  # not a terminal, not asked


@pytest.mark.multiprocess
def test_the_console_command(tiny, tmp_path):
    """One good image and a missing one: its row, the missing one's line, and exit status 1."""
    _, root = tiny
    write_images(tmp_path / "photos", 1)
    result = subprocess.run(
        keras_resnet_command("predict", f"--weights={root / 'run'}", str(tmp_path / "photos"),
                             str(tmp_path / "missing.png"), "--format=csv"),
        env=python_env(TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1 and rows[0]["name_1"] in CLASSES
    assert "missing.png: no such file or folder" in result.stderr


@pytest.mark.slow
@pytest.mark.realdata
def test_resnet56_on_the_jpeg_copy_answers_as_the_model_does(cifar_root, cifar_test_arrays, tmp_path):
    """The command's CSV on 1,000 test images (the first 100 of each class) gives the
    model's own answers on the same images, decoded as the registry measured them.

    (All 10,000 take about a minute here; the report gives that run: its error,
    16.79%, is the registry's JPEG figure.)"""
    from zoo import datasets

    classes = sorted(p.name for p in (cifar_root / "test").iterdir())
    subset = tmp_path / "test"
    for name in classes:
        (subset / name).mkdir(parents=True)
        for i in range(100):
            (subset / name / f"{i:04d}.jpg").symlink_to(cifar_root / "test" / name / f"{i:04d}.jpg")
    result = subprocess.run(
        keras_resnet_command("predict", "--weights=cifar10", "--depth=56", str(subset), "--format=csv",
                             "--batch_size=100"),
        env=python_env(TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1000
    paths, labels = datasets.list_folder(cifar_root / "test", classes)
    index = {(pathlib.Path(p).parent.name, pathlib.Path(p).name): i for i, p in enumerate(paths)}
    chosen = [index[(pathlib.Path(r["file"]).parent.name, pathlib.Path(r["file"]).name)] for r in rows]
    images_, truth = cifar_test_arrays[0][chosen], np.asarray(labels)[chosen]
    model = keras_resnet.ResNet(56, weights="cifar10", include_preprocessing=True)
    direct = model.predict(images_.astype("float32"), batch_size=100, verbose=0).argmax(axis=1)
    from_csv = np.array([int(r["class_id_1"]) for r in rows])
    np.testing.assert_array_equal(from_csv, direct)
    accuracy = float(np.mean(from_csv == truth))
    assert [r["name_1"] == pathlib.Path(r["file"]).parent.name for r in rows].count(True) == round(1000 * accuracy)
    assert 0.75 < accuracy < 0.9, accuracy  # the JPEG copy's 83.2% (16.79% error) over all 10,000
