"""The CIFAR-10 presets: akamaster's ResNets, shipped, aliased and measured.

Fast: the registry (an alias per depth, pins, figures, the licence notice),
loading offline from the package data, preprocessing, and the errors.

Real data (../shared/data, see its README):
- the converted nets compute akamaster's function: the logits of a PyTorch
  reference of that architecture (test-only, tests/test_convert.py) loaded
  with the same checkpoint agree on real JPEG test images, and so does the
  top-1 of every image;
- a `.th` download preset, end to end on a loopback server with the 20/32
  files;
- every figure the registry measured is measured again (slow).
"""

import dataclasses
import pathlib

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import convert
from keras_resnet import presets
from keras_resnet import preprocessing
from keras_resnet import downloads
from keras_resnet import registry

from conftest import CIFAR_ORIGINAL_HEAD, akamaster_checkpoint
from helpers_presets import isolated, server  # noqa: F401 (fixtures; isolated is autouse)
from helpers_torch import akamaster_logits, akamaster_reference

SHIPPED = (20, 32, 44, 56)
ZOO = (20,)  # zoo_cifar10: trained here (RESULTS.md)
DOWNLOADED = {110: "resnet110-1d1ed7c2.th", 1202: "resnet1202-f3b1deed.th"}
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _no_download(*args, **kwargs):
    raise AssertionError("tried to download")


def test_registry():
    family = presets.BUILTIN["akamaster_cifar10"]
    assert sorted(family) == [*SHIPPED, *DOWNLOADED]
    assert registry.ALIASES["cifar10"] == {d: "akamaster_cifar10" for d in family}
    total = 0
    for depth in SHIPPED:
        preset = family[depth]
        assert (preset.family, preset.shortcut, preset.classes, preset.preprocessing) == (
            "cifar", "A", 10, "torch")
        assert preset.source_format == presets.KERAS_RESNET and preset.url is None
        assert pathlib.Path(preset.path).parent == pathlib.Path(presets.WEIGHTS_DATA)
        assert downloads.file_sha256(preset.path) == preset.file_hash
        assert set(preset.test_error) == set(presets.TEST_SETS)
        assert all(0 < e < 30 for e in preset.test_error.values())
        total += pathlib.Path(preset.path).stat().st_size
    assert total < 6e6, total
    for depth, name in DOWNLOADED.items():
        preset = family[depth]
        assert preset.source_format == presets.TORCH_CIFAR_OPTION_A
        assert preset.url == presets.AKAMASTER_URL + name
        assert preset.file_hash == name[-11:-3] and len(preset.file_hash) == 8
        assert preset.test_error[presets.PUBLISHED] in (6.32, 6.18)
    notice = (pathlib.Path(presets.WEIGHTS_DATA) / "NOTICE").read_text()
    assert "Copyright (c) 2018, Yerlan Idelbayev" in notice
    assert "THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS" in notice


def test_zoo_cifar10_registry():
    family = presets.BUILTIN["zoo_cifar10"]
    assert sorted(family) == list(ZOO)
    for depth, preset in family.items():
        assert (preset.family, preset.shortcut, preset.classes) == ("cifar", "A", 10)
        assert downloads.file_sha256(preset.path) == preset.file_hash
        mean_file = pathlib.Path(presets.WEIGHTS_DATA) / preset.preprocessing["mean_file"]
        assert downloads.file_sha256(mean_file) == preset.preprocessing["mean_sha256"]
        mean, std, bgr = presets.preprocessing_parameters(preset.preprocessing)
        assert mean.shape == (32, 32, 3) and std == (1.0, 1.0, 1.0) and not bgr
        # A per-pixel mean of raw CIFAR pixels: ~120 on average, varying by position.
        assert 100 < mean.mean() < 140 and np.ptp(mean) > 5
        errors = preset.test_error
        assert errors[presets.PUBLISHED] is None and 5 < errors[presets.ORIGINAL_HEAD] < 20
        # The alias takes whichever family is lower on the 846 originals.
        best = min(("akamaster_cifar10", "zoo_cifar10"),
                   key=lambda f: presets.BUILTIN[f][depth].test_error[presets.ORIGINAL_HEAD])
        assert registry.ALIASES["cifar10"][depth] == best


def test_per_pixel_mean_preprocessing(monkeypatch, tmp_path):
    monkeypatch.setattr(keras.utils, "get_file", _no_download)
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    preset = presets.BUILTIN["zoo_cifar10"][20]
    mean = np.load(pathlib.Path(presets.WEIGHTS_DATA) / preset.preprocessing["mean_file"])
    got = keras.ops.convert_to_numpy(preprocessing.preprocess_input(raw, weights="zoo_cifar10"))
    np.testing.assert_allclose(got, raw - mean, rtol=1e-6, atol=1e-4)
    layer = keras_resnet.Preprocessing({"mean": mean}, data_format="channels_first")
    first = keras.ops.convert_to_numpy(layer(np.transpose(raw, (0, 3, 1, 2))))
    np.testing.assert_allclose(first, np.transpose(raw - mean, (0, 3, 1, 2)), rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match=r"per-pixel mean of 32x32 images; received input of shape \(1, 40, 40, 3\)"):
        preprocessing.preprocess_input(np.zeros((1, 40, 40, 3), "float32"), weights="zoo_cifar10")
    with pytest.raises(ValueError, match=r"per channel \(3 values\) or per pixel \(H, W, 3\). Received shape \(4,\)"):
        keras_resnet.Preprocessing({"mean": [1, 2, 3, 4]})

    # The model keeps the mean in its config: it loads without the file.
    model = keras_resnet.ResNet(20, weights="zoo_cifar10", include_preprocessing=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(raw, verbose=0), model.predict(raw, verbose=0))

    # A changed or missing mean file is refused, naming it.
    bad = tmp_path / "mean.npy"
    np.save(bad, mean + 1)
    tampered = dataclasses.replace(preset, preprocessing={**preset.preprocessing, "mean_file": str(bad)})
    monkeypatch.setitem(registry.PRESETS["zoo_cifar10"], 20, tampered)
    with pytest.raises(ValueError, match=f"mean file '{bad}' has sha256 .*not the pinned"):
        preprocessing.preprocess_input(raw, weights="zoo_cifar10")
    gone = dataclasses.replace(preset, preprocessing={**preset.preprocessing, "mean_file": str(tmp_path / "no.npy")})
    monkeypatch.setitem(registry.PRESETS["zoo_cifar10"], 20, gone)
    with pytest.raises(ValueError, match="Cannot read the preprocessing mean file .*no.npy"):
        keras_resnet.ResNet(20, weights="zoo_cifar10", include_preprocessing=True)


def test_alias_picks_the_lowest_error_per_depth(monkeypatch):
    # How a second family (e.g. our own zoo_cifar10) joins the alias.
    ours = {
        20: dataclasses.replace(presets.BUILTIN["akamaster_cifar10"][20], name="ours",
                                test_error={presets.ORIGINAL_HEAD: 5.0}),
        32: dataclasses.replace(presets.BUILTIN["akamaster_cifar10"][32], name="ours",
                                test_error={presets.ORIGINAL_HEAD: 9.0}),
        8: dataclasses.replace(presets.BUILTIN["akamaster_cifar10"][20], name="ours", depth=8,
                               test_error=None),
    }
    monkeypatch.setitem(presets.BUILTIN, "ours", ours)
    table = presets.lowest_error(["akamaster_cifar10", "ours"], presets.ORIGINAL_HEAD)
    assert table == {20: "ours", 32: "akamaster_cifar10", 44: "akamaster_cifar10",
                     56: "akamaster_cifar10", 110: "akamaster_cifar10",
                     1202: "akamaster_cifar10", 8: "ours"}

    # Families with different preprocessing under one alias: preprocessing
    # then needs the depth.
    monkeypatch.setitem(registry.PRESETS, "ours", {
        20: dataclasses.replace(ours[20], preprocessing="rescale")})
    monkeypatch.setitem(registry.ALIASES, "mixed", {20: "ours", 32: "akamaster_cifar10"})
    with pytest.raises(ValueError, match="different preprocessing.*pass `depth`"):
        preprocessing.mode_of("mixed")
    assert preprocessing.mode_of("mixed", depth=20) == "rescale"
    assert preprocessing.mode_of("mixed", depth=32) == "torch"


def test_loads_offline_from_package_data(monkeypatch, tmp_path):
    monkeypatch.setattr(keras.utils, "get_file", _no_download)
    model = keras_resnet.ResNet(20, weights="cifar10", include_preprocessing=True)
    assert model.get_layer("preprocessing").get_config()["mode"] == "torch"
    same = keras_resnet.ResNet(20, weights="akamaster_cifar10")
    for a, b in zip(model.get_weights(), same.get_weights()):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)

    raw = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    normalised = keras.ops.convert_to_numpy(preprocessing.preprocess_input(raw, weights="cifar10"))
    np.testing.assert_allclose(normalised, (raw / 255 - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict(raw, verbose=0), same.predict(normalised, verbose=0),
                               rtol=1e-5, atol=1e-6)

    # The shipped file is Keras's own format: model.load_weights reads it.
    plain = keras_resnet.ResNet(20)
    plain.load_weights(presets.BUILTIN["akamaster_cifar10"][20].path)
    for a, b in zip(plain.get_weights(), same.get_weights()):
        np.testing.assert_array_equal(a, b)

    backbone = keras_resnet.ResNet(32, weights="cifar10", include_top=False, pooling="avg")
    assert backbone.output_shape == (None, 64)


def test_shipped_file_is_checked(monkeypatch, tmp_path):
    monkeypatch.setattr(keras.utils, "get_file", _no_download)
    preset = registry.PRESETS["akamaster_cifar10"][20]
    tampered = tmp_path / "akamaster_cifar10_resnet20.weights.h5"
    data = bytearray(pathlib.Path(preset.path).read_bytes())
    data[-100] ^= 1
    tampered.write_bytes(bytes(data))
    monkeypatch.setitem(registry.PRESETS["akamaster_cifar10"], 20,
                        dataclasses.replace(preset, path=str(tampered)))
    with pytest.raises(ValueError, match="changed since it was registered.*not loaded") as error:
        keras_resnet.ResNet(20, weights="cifar10")
    assert str(tampered) in str(error.value)

    missing = pathlib.Path(presets.WEIGHTS_DATA) / "gone.weights.h5"
    monkeypatch.setitem(registry.PRESETS["akamaster_cifar10"], 20,
                        dataclasses.replace(preset, path=str(missing)))
    with pytest.raises(ValueError, match="gone.weights.h5' is missing from the installed package"):
        keras_resnet.ResNet(20, weights="cifar10")


def _real_images(cifar_test_arrays, every=40):
    """Every `every`-th JPEG test image (all classes), raw and normalised."""
    images, labels = cifar_test_arrays
    raw = images[::every].astype("float32")
    return raw, ((raw / 255 - IMAGENET_MEAN) / IMAGENET_STD).astype("float32"), labels[::every]


@pytest.mark.realdata
@pytest.mark.parametrize("depth", SHIPPED)
def test_logits_match_pytorch_reference(depth, cifar_test_arrays):
    torch = pytest.importorskip("torch")
    path = akamaster_checkpoint(depth)
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    net = akamaster_reference(depth)
    net.load_state_dict({k.removeprefix("module."): v for k, v in checkpoint["state_dict"].items()})
    _, x, labels = _real_images(cifar_test_arrays)
    expected = akamaster_logits(net, x)

    # Converted with our own reader from the same file (no torch involved).
    ours = convert.from_cifar_option_a(path, classifier_activation=None)
    got = ours.predict(x, batch_size=len(x), verbose=0)
    relative = np.max(np.abs(got - expected), axis=1) / np.max(np.abs(expected), axis=1)
    print(f"resnet{depth}: {len(x)} images, max relative logit difference {relative.max():.2e}, "
          f"reference error {100 * np.mean(expected.argmax(1) != labels):.1f}%")
    assert relative.max() < 1e-5
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))

    if depth == 20:
        # Without the channel renumbering the net is a different function.
        wrong = convert.from_cifar_option_a(path, zeros="end", classifier_activation=None)
        flipped = np.mean(wrong.predict(x, verbose=0).argmax(1) != expected.argmax(1))
        assert flipped > 0.2, flipped


@pytest.mark.realdata
def test_download_preset_from_loopback(server, tmp_path):
    # The 20/32 files stand in for 110/1202 (same publisher, same format):
    # registered as .th download presets pinned by their 8-hex prefix.
    family = registry.PRESETS["akamaster_cifar10"]
    files = {}
    for depth in (20, 32):
        source = akamaster_checkpoint(depth)
        (server.root / source.name).write_bytes(source.read_bytes())
        files[depth] = source
        family[depth] = dataclasses.replace(
            family[110], depth=depth, url=server.url(source.name),
            file_hash=source.name[-11:-3], fname=f"akamaster_cifar10_{source.name}")
    cached = tmp_path / "keras_home" / "models" / f"akamaster_cifar10_{files[20].name}"

    def check(model, depth):
        expected = convert.from_cifar_option_a(files[depth])
        for a, b in zip(model.get_weights(), expected.get_weights()):
            np.testing.assert_array_equal(a, b)

    check(keras_resnet.ResNet(20, weights="cifar10"), 20)
    check(keras_resnet.ResNet(32, weights="akamaster_cifar10", include_top=False), 32)
    assert len(server.requests) == 2 and cached.is_file()
    check(keras_resnet.ResNet(20, weights="cifar10"), 20)  # from the cache
    assert len(server.requests) == 2

    # A corrupted cached file is downloaded again.
    cached.write_bytes(cached.read_bytes()[:-10])
    check(keras_resnet.ResNet(20, weights="cifar10"), 20)
    assert len(server.requests) == 3

    # A download without the pinned prefix is deleted, never loaded.
    cached.unlink()
    (server.root / files[20].name).write_bytes(files[32].read_bytes())
    with pytest.raises(ValueError, match="does not have the pinned hash 12fca82f.*deleted and not used"):
        keras_resnet.ResNet(20, weights="cifar10")
    assert not cached.exists()

    # Offline: the error names the URL and where the file goes.
    server.close()
    with pytest.raises(OSError, match="sha256 must start with 12fca82f") as error:
        keras_resnet.ResNet(20, weights="cifar10")
    assert server.url(files[20].name) in str(error.value) and str(cached) in str(error.value)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize(
    "family,depth", [("akamaster_cifar10", d) for d in SHIPPED] + [("zoo_cifar10", d) for d in ZOO]
)
def test_registry_figures(family, depth, cifar_test_arrays):
    """The errors the registry records, measured again on this CPU."""
    model = keras_resnet.ResNet(depth, weights=family, include_preprocessing=True)
    recorded = registry.get_preset(family, depth=depth).test_error
    head = np.load(CIFAR_ORIGINAL_HEAD)
    measured = {}
    for test_set, (images, labels) in {
        presets.ORIGINAL_HEAD: (head["x"], head["y"]),
        presets.JPEG_COPY: cifar_test_arrays,
    }.items():
        predictions = model.predict(images.astype("float32"), batch_size=1000, verbose=0)
        measured[test_set] = 100 * float(np.mean(predictions.argmax(1) != labels))
    print(f"resnet{depth}: measured {measured}, recorded {recorded}")
    assert len(head["y"]) == 846 and len(cifar_test_arrays[1]) == 10000
    for test_set, error in measured.items():
        assert abs(error - recorded[test_set]) <= 0.05, (test_set, error, recorded[test_set])
