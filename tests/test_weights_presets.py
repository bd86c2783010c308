"""Presets end to end: each source format downloaded from a loopback server,
converted and loaded, the checks that must fail before anything is
downloaded, and a zoo run's model.keras as weights and as a preset.
Downloads alone are tests/test_downloads.py, the registry test_registry.py."""

import dataclasses
import re

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import convert
from keras_resnet import downloads
from keras_resnet import presets
from keras_resnet import registry

from helpers_presets import isolated, server, sha256  # noqa: F401 (fixtures; isolated is autouse)
from helpers_torch import torch_reference, torchvision_state_dict


@pytest.mark.slow
def test_torchvision_preset_downloads_converts_and_loads(server):
    safetensors = pytest.importorskip("safetensors.numpy")
    state = torchvision_state_dict(18, classes=1000, seed=4)
    served = server.root / "resnet18.safetensors"
    safetensors.save_file(state, str(served))
    builtin = registry.PRESETS["torchvision_imagenet"][18]
    assert builtin.file_hash == presets.TIMM_SHA256["resnet18.tv_in1k"]
    registry.PRESETS["torchvision_imagenet"][18] = dataclasses.replace(
        builtin, url=server.url("resnet18.safetensors"), file_hash=sha256(served))

    # Preprocessed images, as the preset's model takes them (it refuses
    # values no preprocessed image has, e.g. normal(0, 1)'s 4s).
    raw = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    x = keras_resnet.preprocess_input(raw, weights="torchvision_imagenet")
    model = keras_resnet.ResNet(
        18, weights="torchvision_imagenet", input_shape=(64, 64, 3), classifier_activation=None)
    np.testing.assert_allclose(model.predict(x, verbose=0), torch_reference(state, x), atol=1e-4)
    backbone = keras_resnet.ResNet(
        18, weights="torchvision_imagenet", include_top=False, input_shape=(64, 64, 3))
    np.testing.assert_allclose(backbone.predict(x, verbose=0),
                               torch_reference(state, x, include_top=False), atol=1e-4)
    assert len(server.requests) == 1  # The second model hit the cache.


def _save_legacy_h5(model, path):
    # The format of the published keras.applications files (Keras 2 h5).
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


# conv5 features reach ~30 after 50 layers of float32 sums of up to 4,608
# terms, computed in other orders by the two nets' kernels (our fused BN,
# Keras's BN, oneDNN): ~1e-6 relative each, seen up to 3.5e-6 (0.0001 at
# 30.45, one element in 200,704). The probabilities keep the absolute 1e-4.
FEATURES_RTOL = 2e-5


@pytest.mark.slow
def test_imagenet_preset_from_keras_applications_h5(server):
    rng = np.random.default_rng(0)
    peer = keras.applications.ResNet50(weights=None)
    for layer in peer.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                               rng.normal(0, 0.5, n), rng.uniform(0.5, 2.0, n)])
    _save_legacy_h5(peer, server.root / "top.h5")
    no_top = keras.applications.ResNet50(weights=None, include_top=False)
    no_top.set_weights(peer.get_weights()[: len(no_top.get_weights())])
    _save_legacy_h5(no_top, server.root / "notop.h5")
    builtin = registry.PRESETS["keras_applications_imagenet"][50]
    registry.PRESETS["keras_applications_imagenet"][50] = dataclasses.replace(
        builtin, url=server.url("top.h5"), file_hash=sha256(server.root / "top.h5"),
        url_no_top=server.url("notop.h5"), file_hash_no_top=sha256(server.root / "notop.h5"))

    x = rng.uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    x = keras.applications.resnet.preprocess_input(x)
    ours = keras_resnet.ResNet(50, weights="imagenet")
    np.testing.assert_allclose(ours.predict(x, verbose=0), peer.predict(x, verbose=0), atol=1e-4)
    backbone = keras_resnet.ResNet(50, weights="imagenet", include_top=False, input_shape=(96, 96, 3))
    assert server.requests[-1].endswith("notop.h5")
    peer_features = keras.Model(peer.input, peer.get_layer("conv5_block3_out").output)
    ours_features = keras.Model(ours.input, ours.get_layer("conv5_block3_out").output)
    np.testing.assert_allclose(
        backbone.predict(x[:, :96, :96], verbose=0),
        convert.from_keras_applications(
            keras.applications.ResNet50(weights=str(server.root / "notop.h5"),
                                        include_top=False, input_shape=(96, 96, 3))
        ).predict(x[:, :96, :96], verbose=0), atol=1e-4, rtol=FEATURES_RTOL)
    np.testing.assert_allclose(ours_features.predict(x, verbose=0),
                               peer_features.predict(x, verbose=0), atol=1e-4, rtol=FEATURES_RTOL)


@pytest.mark.parametrize("kwargs,message", [
    (dict(depth=50, weights="imagenet", classes=10),
     "1000-class classifier, but the model has classes=10 with include_top=True"),
    (dict(depth=50, weights="imagenet", variant="v1.5"), "v1 stride layout.*Pass variant='v1'"),
    (dict(depth=50, weights="torchvision_imagenet"), "v1.5 stride layout.*Pass variant='v1.5'"),
    (dict(depth=18, weights="imagenet"), "depths \\[50, 101, 152\\].*torchvision_imagenet"),
    (dict(depth=50, weights="imagenet", shortcut="C"), "shortcut='B'.*shortcut='C'"),
    (dict(depth=34, plain=True, weights="torchvision_imagenet"), "plain=True"),
    (dict(depth=50, weights="imagenet", input_shape=(224, 224, 1)), "3-channel"),
    (dict(depth=14, weights="cifar10"),
     "'cifar10' has weights for depths \\[20, 32, 44, 56, 110, 1202\\].*not for depth 14"),
    (dict(depth=20, weights="cifar10", classes=100), "10-class classifier.*classes=100"),
    (dict(depth=20, weights="akamaster_cifar10", shortcut="B"), "shortcut='A'.*shortcut='B'"),
    (dict(depth=50, weights="torchvision_imagenet_v2", variant="v1.5"),
     "no pinned hash yet.*huggingface.co/timm/resnet50.tv2_in1k"),
    (dict(depth=20, weights="cifar100"), "presets: \\['akamaster_cifar10', 'cifar10', 'imagenet'"),
])
def test_errors_before_any_download(kwargs, message, monkeypatch):
    def no_download(*args, **kw):
        raise AssertionError("tried to download")

    monkeypatch.setattr(downloads, "_download", no_download)
    depth = kwargs.pop("depth")
    with pytest.raises(ValueError, match=message):
        keras_resnet.ResNet(depth, **kwargs)


def test_builtin_presets_metadata():
    from keras.src.applications import resnet as keras_resnet_app

    for depth, preset in presets.BUILTIN["keras_applications_imagenet"].items():
        top, no_top = keras_resnet_app.WEIGHTS_HASHES[f"resnet{depth}"]
        assert (preset.file_hash, preset.file_hash_no_top) == (top, no_top)
        assert preset.url.startswith(keras_resnet_app.BASE_WEIGHTS_PATH)
        assert (preset.variant, preset.preprocessing, preset.classes) == ("v1", "caffe", 1000)
    assert registry.get_preset("imagenet", depth=101).name == "keras_applications_imagenet"
    assert registry.get_preset("torchvision_imagenet", depth=50).variant == "v1.5"
    for depth, preset in presets.BUILTIN["torchvision_imagenet"].items():
        assert re.fullmatch("[0-9a-f]{64}", preset.file_hash), (depth, preset.file_hash)
        assert preset.url.endswith(".tv_in1k/resolve/main/model.safetensors")
    assert presets.BUILTIN["torchvision_imagenet_v2"][50].file_hash is None
    for entries in presets.BUILTIN.values():
        for preset in entries.values():
            assert preset.source_format in presets.SOURCE_FORMATS
            assert preset.top1 is None or 0 < preset.top1 < 1


# A zoo run's model.keras: the net nested behind the run's per-pixel mean
# (zoo/model.py). docs/pretrained-weights.md registers it as a preset; it failed to load
# ("different architecture"), and so did ResNet(20, weights=<it>).

def _zoo_like_file(path, nested_class=None, seed=0):
    """What zoo.train writes as model.keras (zoo.model.build), its net randomised."""
    from zoo import model as zoo_model
    from zoo import recipes

    rng = np.random.default_rng(seed)
    mean = rng.uniform(90, 160, (32, 32, 3)).astype("float32")
    model = zoo_model.build(recipes.get("cifar10_resnet20"), mean)
    net = model.layers[-1]
    if nested_class is not None:  # e.g. a run saved before ResNet returned a ResNetModel
        inner = nested_class(net.input, net.output, name=net.name)
        model = keras.Model(model.input, inner(model.layers[1].output), name=model.name)
        net = inner
    net.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in net.get_weights()])
    model.save(path)
    return model, net, mean


@pytest.mark.parametrize("nested", [None, keras.Model], ids=["as_zoo_builds_it", "functional_inside"])
def test_zoo_run_model_keras_as_weights_and_as_preset(tmp_path, nested):
    path = tmp_path / "model.keras"
    model, net, mean = _zoo_like_file(path, nested)
    raw = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    expected = model.predict(raw, verbose=0)

    # weights=<file>: the bare net (like a preset without include_preprocessing)...
    bare = keras_resnet.ResNet(20, weights=str(path))
    assert all(np.array_equal(a, b) for a, b in zip(bare.get_weights(), net.get_weights()))
    np.testing.assert_allclose(bare.predict(raw - mean, verbose=0), expected, atol=1e-5)
    # ... or with the file's preprocessing inside, taking raw pixels.
    whole = keras_resnet.ResNet(20, weights=str(path), include_preprocessing=True)
    np.testing.assert_allclose(whole.predict(raw, verbose=0), expected, atol=1e-5)

    # As docs/pretrained-weights.md shows: the preset takes its preprocessing from the file.
    keras_resnet.register_preset("my_cifar10", path, depth=20, recipe="cifar10_resnet20", top1=0.5)
    from_preset = keras_resnet.ResNet(20, weights="my_cifar10", include_preprocessing=True)
    np.testing.assert_allclose(from_preset.predict(raw, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(
        keras_resnet.preprocess_input(raw, weights="my_cifar10"), raw - mean, atol=1e-4)


def test_zoo_run_preset_with_other_preprocessing_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    _zoo_like_file(path)
    with pytest.raises(ValueError, match=r"model\.keras.*subtracts a per-pixel mean.*preprocessing='none'"):
        keras_resnet.register_preset("my_cifar10", path, depth=20, preprocessing="none")


def test_include_preprocessing_needs_a_file_that_holds_it(tmp_path):
    path = tmp_path / "bare.keras"
    keras_resnet.ResNet(8).save(path)
    with pytest.raises(ValueError, match=r"include_preprocessing=True.*has no preprocessing in front of its net"):
        keras_resnet.ResNet(8, weights=str(path), include_preprocessing=True)
    # A bare .keras file registers with no preprocessing, as before.
    assert keras_resnet.register_preset("bare", path, depth=8).preprocessing == "none"
