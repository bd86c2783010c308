"""Fixtures of the preset tests: a private Keras cache and registry per test
(`isolated`, autouse where imported), and a loopback HTTP server to download from."""

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest

from keras_resnet import registry
from keras_resnet import weights as weights_lib


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private Keras cache and a registry restored after each test; no
    waiting between download attempts."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(weights_lib, "DOWNLOAD_BACKOFF", 0.0)
    saved = {name: dict(entries) for name, entries in registry.PRESETS.items()}
    aliases = {name: dict(table) for name, table in registry.ALIASES.items()}
    yield
    registry.PRESETS.clear()
    registry.PRESETS.update(saved)
    registry.ALIASES.clear()
    registry.ALIASES.update(aliases)


class Server:
    """Serves a folder on 127.0.0.1 and counts the GET requests."""

    def __init__(self, root):
        self.root, self.requests = root, []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    s = Server(root)
    yield s
    s.close()


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
