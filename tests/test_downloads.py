"""Downloads (keras_resnet.downloads): the Keras cache, pinned hashes, timeouts
and retries, end to end on a loopback HTTP server."""

import dataclasses
import hashlib
import http.server
import os
import socket
import threading
import time

import pytest

import keras_resnet
from keras_resnet import registry
from keras_resnet import weights as weights_lib

from helpers_presets import isolated, same_weights, server, sha256  # noqa: F401 (fixtures; isolated is autouse)


def test_download_cache_hash_and_corrupted_files(server, tmp_path):
    source = keras_resnet.ResNet(8)
    served = server.root / "resnet8.weights.h5"
    source.save_weights(str(served))
    good = served.read_bytes()
    registry.register_preset(
        "loopback", server.url("resnet8.weights.h5"), depth=8, sha256=sha256(served))
    cached = tmp_path / "keras_home" / "models"

    # First use downloads into the Keras cache and loads.
    model = keras_resnet.ResNet(8, weights="loopback")
    assert same_weights(model, source)
    assert len(server.requests) == 1
    (cached_file,) = cached.iterdir()
    umask = os.umask(0)
    os.umask(umask)
    assert cached_file.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600

    # Second use is a cache hit: no request.
    assert same_weights(keras_resnet.ResNet(8, weights="loopback"), source)
    assert len(server.requests) == 1

    # A corrupted cached file is not used: it is downloaded again.
    with open(cached_file, "ab") as f:
        f.write(b"garbage")
    assert same_weights(keras_resnet.ResNet(8, weights="loopback"), source)
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
        registry.register_preset("silent", url, depth=8, sha256="0" * 64)
        monkeypatch.setattr(weights_lib, "DOWNLOAD_TIMEOUTS", (0.5, 0.5))
        monkeypatch.setattr(weights_lib, "DOWNLOAD_ATTEMPTS", 2)
        start = time.monotonic()
        error = _build_in_thread(30, weights="silent")
        assert isinstance(error, OSError), repr(error)
        message = str(error)
        assert url in message and "timed out" in message and "2 attempts" in message, message
        target = os.path.join(os.environ["KERAS_HOME"], "models", registry.get_preset("silent", 8).fname)
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
    registry.register_preset("flaky", server.url("resnet8.weights.h5"), depth=8,
                                sha256=sha256(server.root / "resnet8.weights.h5"))
    failures = iter([503])
    handler = server.httpd.RequestHandlerClass

    def do_get(self):
        server.requests.append(self.path)
        code = next(failures, None)
        if code is None:
            return http.server.SimpleHTTPRequestHandler.do_GET(self)
        self.send_error(code)

    monkeypatch.setattr(handler.func, "do_GET", do_get)
    assert same_weights(keras_resnet.ResNet(8, weights="flaky"), source)
    assert len(server.requests) == 2


def test_download_gives_up_at_once_on_a_missing_file(server):
    registry.register_preset("missing", server.url("nothing.weights.h5"), depth=8, sha256="0" * 64)
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
    base = registry.register_preset("pinned", server.url("resnet8.weights.h5"), depth=8,
                                       sha256=sha256(served))
    for pin in (md5, sha256(served)[:8]):
        preset = dataclasses.replace(base, file_hash=pin, fname=f"{pin}.weights.h5")
        assert open(weights_lib.fetch(preset), "rb").read() == served.read_bytes()
        wrong = dataclasses.replace(preset, file_hash="0" * len(pin), fname=f"wrong{pin}.weights.h5")
        with pytest.raises(ValueError, match=f"pinned hash {'0' * len(pin)}.*deleted"):
            weights_lib.fetch(wrong)
