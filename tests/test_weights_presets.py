"""Presets: the download path end to end on a loopback HTTP server, and the
checks that must fail before anything is downloaded."""

import dataclasses
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import threading
import time

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import convert
from keras_resnet import downloads
from keras_resnet import preprocessing
from keras_resnet import presets
from keras_resnet import weights as weights_lib

from helpers_presets import isolated, server  # noqa: F401 (fixtures; isolated is autouse)
from helpers_torch import torch_reference, torchvision_state_dict


def _sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_download_cache_hash_and_corrupted_files(server, tmp_path):
    source = keras_resnet.ResNet(8)
    served = server.root / "resnet8.weights.h5"
    source.save_weights(str(served))
    good = served.read_bytes()
    weights_lib.register_preset(
        "loopback", server.url("resnet8.weights.h5"), depth=8, sha256=_sha256(served))
    cached = tmp_path / "keras_home" / "models"

    # First use downloads into the Keras cache and loads.
    model = keras_resnet.ResNet(8, weights="loopback")
    assert _same_weights(model, source)
    assert len(server.requests) == 1
    (cached_file,) = cached.iterdir()
    umask = os.umask(0)
    os.umask(umask)
    assert cached_file.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600

    # Second use is a cache hit: no request.
    assert _same_weights(keras_resnet.ResNet(8, weights="loopback"), source)
    assert len(server.requests) == 1

    # A corrupted cached file is not used: it is downloaded again.
    with open(cached_file, "ab") as f:
        f.write(b"garbage")
    assert _same_weights(keras_resnet.ResNet(8, weights="loopback"), source)
    assert len(server.requests) == 2
    assert cached_file.read_bytes() == good

    # A download with the wrong hash raises and is deleted, never loaded.
    cached_file.unlink()
    served.write_bytes(good[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="does not have the pinned hash.*deleted and not used"):
        keras_resnet.ResNet(8, weights="loopback")
    assert list(cached.iterdir()) == []

    # Offline: the error names the URL and where to put the file by hand.
    server.close()
    with pytest.raises(OSError) as error:
        keras_resnet.ResNet(8, weights="loopback")
    assert server.url("resnet8.weights.h5") in str(error.value)
    assert str(cached_file) in str(error.value)


@pytest.mark.slow
def test_torchvision_preset_downloads_converts_and_loads(server):
    safetensors = pytest.importorskip("safetensors.numpy")
    state = torchvision_state_dict(18, classes=1000, seed=4)
    served = server.root / "resnet18.safetensors"
    safetensors.save_file(state, str(served))
    builtin = weights_lib.PRESETS["torchvision_imagenet"][18]
    assert builtin.file_hash == presets.TIMM_SHA256["resnet18.tv_in1k"]
    weights_lib.PRESETS["torchvision_imagenet"][18] = dataclasses.replace(
        builtin, url=server.url("resnet18.safetensors"), file_hash=_sha256(served))

    x = np.random.default_rng(0).normal(0, 1, (2, 64, 64, 3)).astype("float32")
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
    builtin = weights_lib.PRESETS["keras_applications_imagenet"][50]
    weights_lib.PRESETS["keras_applications_imagenet"][50] = dataclasses.replace(
        builtin, url=server.url("top.h5"), file_hash=_sha256(server.root / "top.h5"),
        url_no_top=server.url("notop.h5"), file_hash_no_top=_sha256(server.root / "notop.h5"))

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
        ).predict(x[:, :96, :96], verbose=0), atol=1e-4)
    np.testing.assert_allclose(ours_features.predict(x, verbose=0),
                               peer_features.predict(x, verbose=0), atol=1e-4)


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
    assert weights_lib.get_preset("imagenet", depth=101).name == "keras_applications_imagenet"
    assert weights_lib.get_preset("torchvision_imagenet", depth=50).variant == "v1.5"
    for depth, preset in presets.BUILTIN["torchvision_imagenet"].items():
        assert re.fullmatch("[0-9a-f]{64}", preset.file_hash), (depth, preset.file_hash)
        assert preset.url.endswith(".tv_in1k/resolve/main/model.safetensors")
    assert presets.BUILTIN["torchvision_imagenet_v2"][50].file_hash is None
    for entries in presets.BUILTIN.values():
        for preset in entries.values():
            assert preset.source_format in presets.SOURCE_FORMATS
            assert preset.top1 is None or 0 < preset.top1 < 1


def test_zoo_style_keras_file_registers_as_a_preset(tmp_path):
    # A zoo model.keras holds its preprocessing (here a Normalization with
    # weights) in front of the net; the preset loads the net's weights.
    inputs = keras.Input((32, 32, 3), name="raw")
    norm = keras.layers.Normalization(mean=[125.3, 123.0, 113.9], variance=[63.0**2, 62.1**2, 66.7**2])
    trained = keras_resnet.ResNet(20, input_tensor=norm(inputs))
    path = tmp_path / "model.keras"
    trained.save(path)
    stats = {"mean": [125.3, 123.0, 113.9], "std": [63.0, 62.1, 66.7]}
    with pytest.raises(ValueError, match="'cifar10' is an alias.*e.g. 'my_cifar10'"):
        weights_lib.register_preset("cifar10", path, depth=20, preprocessing=stats)
    preset = weights_lib.register_preset(
        "my_cifar10", path, depth=20, recipe="cifar10_resnet20", top1=0.5, preprocessing=stats)
    assert preset.file_hash == _sha256(path)
    model = keras_resnet.ResNet(20, weights="my_cifar10")
    net_layers = [layer for layer in trained.layers if layer.name != norm.name]
    expected = [w for layer in net_layers for w in layer.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), expected))
    x = np.full((1, 32, 32, 3), 255.0, "float32")
    np.testing.assert_allclose(
        preprocessing.preprocess_input(x, weights="my_cifar10")[0, 0, 0],
        (255 - np.array([125.3, 123.0, 113.9])) / np.array([63.0, 62.1, 66.7]), rtol=1e-5)

    # The file changes after registration: refused.
    shutil.copy(path, tmp_path / "copy.keras")
    with open(path, "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="changed since it was registered"):
        keras_resnet.ResNet(20, weights="my_cifar10")


def test_register_preset_errors(tmp_path):
    with pytest.raises(ValueError, match="needs its `sha256`"):
        weights_lib.register_preset("x", "https://example.com/a.weights.h5", depth=20)
    path = tmp_path / "a.weights.h5"
    keras_resnet.ResNet(8).save_weights(str(path))
    with pytest.raises(ValueError, match="not the given"):
        weights_lib.register_preset("x", path, depth=8, sha256="0" * 64)
    with pytest.raises(ValueError, match="alias"):
        weights_lib.register_preset("imagenet", path, depth=8)
    weights_lib.register_preset("x", path, depth=8)
    with pytest.raises(ValueError, match="overwrite=True"):
        weights_lib.register_preset("x", path, depth=8)
    with pytest.raises(ValueError, match="Preprocessing mode must be"):
        weights_lib.register_preset("y", path, depth=8, preprocessing="bgr")
    with pytest.raises(ValueError, match="64 chars"):
        weights_lib.pin_hash("torchvision_imagenet_v2", 50, "abc")
    with pytest.raises(ValueError, match="already pinned to 694f673d"):
        weights_lib.pin_hash("torchvision_imagenet", 18, "0" * 64)


def test_registry_file(tmp_path):
    keras_resnet.ResNet(8).save_weights(str(tmp_path / "r8.weights.h5"))
    registry = tmp_path / "presets.json"
    registry.write_text(json.dumps([{
        "name": "my_cifar10", "path": "r8.weights.h5", "depth": 8,
        "recipe": "cifar10_resnet8", "top1": 0.87, "preprocessing": "rescale",
    }]))
    (preset,) = weights_lib.load_registry(registry)
    assert (preset.recipe, preset.top1, preset.path) == (
        "cifar10_resnet8", 0.87, str(tmp_path / "r8.weights.h5"))
    assert preset.file_hash == _sha256(tmp_path / "r8.weights.h5")
    keras_resnet.ResNet(8, weights="my_cifar10")
    registry.write_text(json.dumps([{"name": "x", "depth": 8}]))
    with pytest.raises(ValueError, match="lacks 'path'"):
        weights_lib.load_registry(registry)


class SilentServer:
    """A loopback TCP server that never answers, the way a stuck proxy or a
    black-holed route behaves.

    `accept=True`: it accepts every connection and never reads or writes
    (so a client waits for its response: the read timeout). `accept=False`:
    it listens with a backlog of 0 and never accepts, and one connection is
    made up front to fill the backlog, so every further connect waits (the
    connect timeout).
    """

    def __init__(self, accept):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0 if not accept else 16)
        self.connections = []
        if accept:
            threading.Thread(target=self._accept, daemon=True).start()
        else:
            filler = socket.create_connection(self.listener.getsockname())
            self.connections.append(filler)

    def _accept(self):
        while True:
            try:
                self.connections.append(self.listener.accept()[0])
            except OSError:  # closed
                return

    def url(self, name):
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/{name}"

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


def _build_in_thread(limit_s, **kwargs):
    """ResNet(8, **kwargs) in a thread: returns the exception it raised, or
    fails the test if it has not returned after `limit_s`."""
    outcome = {}

    def build():
        try:
            keras_resnet.ResNet(8, **kwargs)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome["error"] = error

    thread = threading.Thread(target=build, daemon=True)
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        pytest.fail(f"ResNet(8, {kwargs}) still waiting for the download after {limit_s} s")
    return outcome.get("error")


@pytest.mark.parametrize("stuck", ["read", "connect"])
def test_a_download_that_never_answers_times_out(stuck, monkeypatch):
    server = SilentServer(accept=stuck == "read")
    try:
        url = server.url("resnet8.weights.h5")
        weights_lib.register_preset("silent", url, depth=8, sha256="0" * 64)
        monkeypatch.setattr(weights_lib, "DOWNLOAD_TIMEOUTS", (0.5, 0.5))
        monkeypatch.setattr(weights_lib, "DOWNLOAD_ATTEMPTS", 2)
        start = time.monotonic()
        error = _build_in_thread(30, weights="silent")
        assert isinstance(error, OSError), repr(error)
        message = str(error)
        assert url in message and "timed out" in message and "2 attempts" in message, message
        target = os.path.join(os.environ["KERAS_HOME"], "models", weights_lib.get_preset("silent", 8).fname)
        assert f"put it at {target}" in message, message
        assert not os.path.exists(target)  # nothing half-written left
        assert time.monotonic() - start < 10
        if stuck == "read":
            assert len(server.connections) == 2  # one per attempt, then it gives up
    finally:
        server.close()


def test_download_retries_a_server_error_then_loads(server, monkeypatch):
    source = keras_resnet.ResNet(8)
    source.save_weights(str(server.root / "resnet8.weights.h5"))
    weights_lib.register_preset("flaky", server.url("resnet8.weights.h5"), depth=8,
                                sha256=_sha256(server.root / "resnet8.weights.h5"))
    failures = iter([503])
    handler = server.httpd.RequestHandlerClass

    def do_get(self):
        server.requests.append(self.path)
        code = next(failures, None)
        if code is None:
            return http.server.SimpleHTTPRequestHandler.do_GET(self)
        self.send_error(code)

    monkeypatch.setattr(handler.func, "do_GET", do_get)
    assert _same_weights(keras_resnet.ResNet(8, weights="flaky"), source)
    assert len(server.requests) == 2


def test_download_gives_up_at_once_on_a_missing_file(server):
    weights_lib.register_preset("missing", server.url("nothing.weights.h5"), depth=8, sha256="0" * 64)
    with pytest.raises(OSError, match=r"404.*If this machine is offline") as error:
        keras_resnet.ResNet(8, weights="missing")
    assert server.url("nothing.weights.h5") in str(error.value)
    assert len(server.requests) == 1  # a 404 is not retried


def test_md5_and_sha256_prefix_pins(server):
    # keras.applications' files are pinned by md5, akamaster's by the first
    # 8 hex digits of the sha256: both are checked after the download.
    served = server.root / "resnet8.weights.h5"
    keras_resnet.ResNet(8).save_weights(str(served))
    md5 = hashlib.md5(served.read_bytes()).hexdigest()
    base = weights_lib.register_preset("pinned", server.url("resnet8.weights.h5"), depth=8,
                                       sha256=_sha256(served))
    for pin in (md5, _sha256(served)[:8]):
        preset = dataclasses.replace(base, file_hash=pin, fname=f"{pin}.weights.h5")
        assert open(weights_lib.fetch(preset), "rb").read() == served.read_bytes()
        wrong = dataclasses.replace(preset, file_hash="0" * len(pin), fname=f"wrong{pin}.weights.h5")
        with pytest.raises(ValueError, match=f"pinned hash {'0' * len(pin)}.*deleted"):
            weights_lib.fetch(wrong)


# A zoo run's model.keras: the net nested behind the run's per-pixel mean
# (zoo/model.py). The README registers it as a preset; it failed to load
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

    # As the README shows: the preset takes its preprocessing from the file.
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
