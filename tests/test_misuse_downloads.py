"""Downloads from slow and failing servers: the deadline of each attempt, and
truncated bodies (keras_resnet.downloads), on a loopback server.

A server that sends a byte now and then keeps every read inside its read
timeout, so without a deadline a 1.27 MB preset took 22 days; a connection
that closed halfway left a short file whose hash then differed ("does not
have the pinned hash", not retried). The deadlines here are made small:
timeouts of a fraction of a second and a high minimum speed.
"""

import hashlib
import os
import re
import socket
import threading
import time

import numpy as np
import pytest

from keras_resnet import registry
from keras_resnet import weights as weights_lib

from helpers_presets import isolated  # noqa: F401 (autouse: a private Keras cache and registry)

BODY = np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes()


class ScriptedServer:
    """A loopback HTTP server: the n-th GET is answered by `scripts[n]`
    (the last one for all later ones), a function of (socket, stop event)."""

    def __init__(self, *scripts):
        self.scripts, self.requests = list(scripts), 0
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connections = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection = self.listener.accept()[0]
            except OSError:  # closed
                return
            self.connections.append(connection)
            script = self.scripts[min(self.requests, len(self.scripts) - 1)]
            self.requests += 1
            threading.Thread(target=self._answer, args=(connection, script), daemon=True).start()

    def _answer(self, connection, script):
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                data = connection.recv(4096)
                if not data:
                    return
                request += data
            script(connection, self.stop)
        except OSError:  # the client gave up
            pass
        finally:
            connection.close()

    def url(self):
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/file.weights.h5"

    def close(self):
        self.stop.set()
        self.listener.close()
        for connection in self.connections:
            connection.close()


def headers(length=None, extra=b""):
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
    if length is not None:
        head += b"Content-Length: %d\r\n" % length
    return head + extra + b"\r\n"


def whole(connection, stop):
    connection.sendall(headers(len(BODY)) + BODY)


def half(connection, stop):
    connection.sendall(headers(len(BODY)) + BODY[: len(BODY) // 2])


def half_chunked(connection, stop):
    chunk = BODY[: len(BODY) // 2]
    connection.sendall(headers(extra=b"Transfer-Encoding: chunked\r\n") + b"%x\r\n" % len(chunk) + chunk
                       + b"\r\n")


def trickle(chunk, every, send_length=True):
    """The body, `chunk` bytes every `every` seconds; the Content-Length is
    the body's (True), none (False) or `send_length`."""

    def script(connection, stop):
        length = len(BODY) if send_length is True else send_length or None
        connection.sendall(headers(length))
        for start in range(0, len(BODY), chunk):
            if stop.wait(every):
                return
            connection.sendall(BODY[start:start + chunk])

    return script


def trickled_headers(connection, stop):
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stop.wait(0.05):
        connection.sendall(b"a")


@pytest.fixture
def serve(monkeypatch):
    """serve(*scripts) -> (server, the registered preset); small timeouts and deadline."""
    monkeypatch.setattr(weights_lib, "DOWNLOAD_TIMEOUTS", (0.5, 0.5))
    monkeypatch.setattr(weights_lib, "DOWNLOAD_ATTEMPTS", 2)
    monkeypatch.setattr(weights_lib, "DOWNLOAD_MIN_SPEED", 100_000, raising=False)
    servers = []

    def start(*scripts):
        server = ScriptedServer(*scripts)
        servers.append(server)
        registry.register_preset("scripted", server.url(), depth=8,
                                  sha256=hashlib.sha256(BODY).hexdigest())
        return server, registry.get_preset("scripted", 8)

    yield start
    for server in servers:
        server.close()


def fetch_in_thread(preset, limit_s=20):
    """(path or exception, seconds) of weights_lib.fetch(preset); fails the
    test if it has not returned after `limit_s`."""
    outcome = {}

    def run():
        try:
            outcome["result"] = weights_lib.fetch(preset)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome["result"] = error

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        pytest.fail(f"fetch({preset.name!r}) still downloading after {limit_s} s")
    return outcome["result"], time.monotonic() - start


def cached(preset):
    return os.path.join(os.environ["KERAS_HOME"], "models", preset.fname)


@pytest.mark.parametrize("how", ["body", "body_without_length", "body_with_a_huge_length", "headers"])
def test_a_trickling_server_is_given_up_at_the_deadline(how, serve, monkeypatch):
    # Each piece comes well inside the 0.5 s read timeout; the whole never would.
    script = {"body": trickle(1, 0.05), "body_without_length": trickle(1, 0.05, send_length=False),
              "body_with_a_huge_length": trickle(1, 0.05, send_length=10**12),
              "headers": trickled_headers}[how]
    attempts = 2 if how == "body" else 1
    monkeypatch.setattr(weights_lib, "DOWNLOAD_ATTEMPTS", attempts)
    server, preset = serve(script)
    error, took = fetch_in_thread(preset)
    assert isinstance(error, OSError), repr(error)
    message = str(error)
    # 0.5 + 0.5 s, plus the few bytes received at 100,000 bytes/s.
    assert re.search(r"too slow: \d+ bytes had arrived when this attempt's deadline passed, "
                     r"1(\.0\d*)? s after it started", message), message
    assert "DOWNLOAD_MIN_SPEED" in message and server.url() in message, message
    assert ("(2 attempts)" in message) == (attempts == 2), message
    assert server.requests == attempts and not os.path.exists(cached(preset))
    assert took < attempts * 1.0 + 3  # the deadlines, plus a margin for a loaded machine


def test_a_transfer_slower_than_its_timeouts_but_fast_enough_completes(serve, monkeypatch):
    # 20 kB at about 20 kB/s: 1 s, more than the 0.4 s of timeouts, but it
    # keeps ahead of the deadline (0.4 s plus what has arrived at 5 kB/s).
    monkeypatch.setattr(weights_lib, "DOWNLOAD_TIMEOUTS", (0.2, 0.2))
    monkeypatch.setattr(weights_lib, "DOWNLOAD_MIN_SPEED", 5_000)
    server, preset = serve(trickle(2000, 0.1))
    path, took = fetch_in_thread(preset)
    assert open(path, "rb").read() == BODY and server.requests == 1
    assert took > 0.8


@pytest.mark.parametrize("cut", [half, half_chunked], ids=["length", "chunked"])
def test_a_truncated_download_is_retried(cut, serve):
    server, preset = serve(cut, whole)
    path, _ = fetch_in_thread(preset)
    assert open(path, "rb").read() == BODY and server.requests == 2


@pytest.mark.parametrize("cut, message", [
    (half, "closed after 10,000 of the 20,000 bytes its Content-Length announced: the download was "
           "truncated (2 attempts)"),
    (half_chunked, "closed after 10,000 bytes, inside the body's chunks: the download was truncated "
                   "(2 attempts)"),
], ids=["length", "chunked"])
def test_a_download_truncated_every_time_is_called_truncated(cut, message, serve):
    server, preset = serve(cut)
    error, _ = fetch_in_thread(preset)
    assert isinstance(error, OSError), repr(error)
    assert message in str(error), error
    assert server.requests == 2 and not os.path.exists(cached(preset))


@pytest.mark.parametrize("speed", ["fast", -1, True])
def test_a_bad_min_speed_is_refused(speed, serve, monkeypatch):
    server, preset = serve(whole)
    monkeypatch.setattr(weights_lib, "DOWNLOAD_MIN_SPEED", speed)
    with pytest.raises(ValueError, match=rf"DOWNLOAD_MIN_SPEED must be None .* Received {speed!r}\."):
        weights_lib.fetch(preset)
    assert server.requests == 0
