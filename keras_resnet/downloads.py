"""Downloads and hashes: a preset's file fetched into the Keras cache, its pin checked.

`fetch(preset, timeouts=, attempts=, backoff=)` finds a preset's file in
the Keras cache (~/.keras/models, or $KERAS_HOME/models) or downloads it
there, its hash pinned: a cached file whose hash differs is downloaded
again, a download whose hash differs is deleted and never used, an
unpinned preset is never downloaded. A download waits at most `timeouts`
(connect, read), is tried `attempts` times (server errors, timeouts and
dropped connections; not a missing file or an unknown host), and is
written beside its target and renamed into place (`keras_resnet.atomic`).
The settings users change are `keras_resnet.weights.DOWNLOAD_TIMEOUTS`,
`DOWNLOAD_ATTEMPTS` and `DOWNLOAD_BACKOFF`; `keras_resnet.weights.fetch`
passes them in.
"""

import functools
import hashlib
import http.client
import os
import socket
import ssl
import time
import urllib.error
import urllib.request

import keras

from keras_resnet import atomic


def _cache_dir():
    """The Keras cache, where keras.utils.get_file caches too: $KERAS_HOME, or ~/.keras."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def fetch(preset, no_top=False, *, timeouts, attempts, backoff):
    """Downloads a preset's file (or finds it in the cache) and returns its path.

    The hash is pinned: a cached file whose hash differs is downloaded
    again; a download whose hash differs is deleted and raises. A pin of 8
    hex digits is the start of the sha256 (torch.hub's convention for file
    names); one of 32 an md5 (keras.applications' pins); one of 64 a sha256.

    Raises:
        ValueError: if the preset's hash is not pinned, or the download's
            hash differs.
        OSError: if the download fails (after `attempts` tries where
            retrying can help), naming the URL and the path at which to put
            the file by hand.
    """
    url, file_hash = preset.url, preset.file_hash
    if no_top and preset.url_no_top:
        url, file_hash = preset.url_no_top, preset.file_hash_no_top
    fname = preset.fname if preset.fname and url == preset.url else os.path.basename(url)
    target = os.path.join(_cache_dir(), "models", fname)
    if file_hash is None:
        raise ValueError(
            f"Preset {preset.name!r} (depth {preset.depth}) has no pinned "
            "hash yet, so keras-resnet will not download it: a file it "
            "cannot verify could be anything. Either download "
            f"{url} yourself, check it against the publisher's listing and "
            "convert it directly with keras_resnet.convert.from_torchvision("
            "keras_resnet.porting.load_safetensors(path)); or pin its sha256 "
            f"with keras_resnet.registry.pin_hash({preset.name!r}, "
            f"{preset.depth}, sha256), after which it downloads to (or is "
            f"read from) {target}."
        )
    if os.path.exists(target):
        if _has_hash(target, file_hash):
            return target
        os.remove(target)  # corrupted or stale: download again
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        _download(url, target, timeouts, attempts, backoff)
    except OSError as error:
        raise OSError(
            f"Could not download preset {preset.name!r} (depth "
            f"{preset.depth}) from {url}: {error}. If this machine is "
            f"offline, download that file elsewhere and put it at {target} "
            f"(its {'sha256 must start with' if len(file_hash) == 8 else 'hash must be'} {file_hash})."
        ) from error
    if not _has_hash(target, file_hash):
        actual = _digest(target, "md5" if len(file_hash) == 32 else "sha256")
        os.remove(target)
        raise ValueError(
            f"The file downloaded from {url} for preset {preset.name!r} does "
            f"not have the pinned hash {file_hash}; it was deleted and not "
            f"used. (Its {'md5' if len(file_hash) == 32 else 'sha256'} is {actual}.)"
        )
    return target


def file_sha256(path):
    """The sha256 of a file, as hex."""
    return _digest(path, "sha256")


def _digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _has_hash(path, file_hash):
    """Whether the file has the pin: an md5 (32 hex), a sha256 (64) or its first 8 digits."""
    actual = _digest(path, "md5" if len(file_hash) == 32 else "sha256")
    return actual.startswith(file_hash) if len(file_hash) == 8 else actual == file_hash


class _Connection(http.client.HTTPConnection):
    """Waits `timeout` to connect, then `read_timeout` for each read."""

    def __init__(self, *args, read_timeout, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout

    def connect(self):
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _TLSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, read_timeout, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout

    def connect(self):
        super().connect()  # TCP and the TLS handshake, under the connect timeout
        self.sock.settimeout(self.read_timeout)


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout):
        super().__init__()
        self.read_timeout = read_timeout

    def http_open(self, request):
        return self.do_open(functools.partial(_Connection, read_timeout=self.read_timeout), request)


class _TLSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout):
        self.context = ssl.create_default_context()
        super().__init__(context=self.context)
        self.read_timeout = read_timeout

    def https_open(self, request):
        connection = functools.partial(_TLSConnection, read_timeout=self.read_timeout)
        return self.do_open(connection, request, context=self.context)


# HTTP statuses worth another try: the server or a proxy on the way is busy.
_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


def _download(url, target, timeouts, attempts, backoff):
    """Downloads `url` to `target` (atomically) with timeouts and retries.

    Raises:
        OSError: saying what failed on the last attempt and how many were made.
    """
    connect_timeout, read_timeout = timeouts
    opener = urllib.request.build_opener(_Handler(read_timeout), _TLSHandler(read_timeout))
    attempts = max(1, int(attempts))
    print(f"Downloading data from {url}")
    for attempt in range(1, attempts + 1):
        try:
            _copy(opener.open(url, timeout=connect_timeout), target)
            return
        except urllib.error.HTTPError as error:
            failure, retry = f"HTTP Error {error.code}: {error.reason}", error.code in _RETRY_STATUSES
        except urllib.error.URLError as error:
            reason = error.reason
            failure = _timed_out(connect_timeout, read_timeout) if isinstance(reason, TimeoutError) else str(reason)
            # An unknown host or a refused certificate will not come right.
            retry = not isinstance(reason, (socket.gaierror, ssl.SSLCertVerificationError))
        except TimeoutError:  # a read timed out after the connection was made
            failure, retry = _timed_out(connect_timeout, read_timeout), True
        except (ConnectionError, http.client.HTTPException) as error:
            failure, retry = f"{type(error).__name__}: {error}", True
        if not retry or attempt == attempts:
            tries = f" ({attempt} attempts)" if attempt > 1 else ""
            raise OSError(f"{failure}{tries}")
        time.sleep(backoff * 2 ** (attempt - 1))


def _timed_out(connect_timeout, read_timeout):
    return (f"timed out (connect timeout {connect_timeout:g} s, read timeout {read_timeout:g} s; "
            "see keras_resnet.weights.DOWNLOAD_TIMEOUTS)")


def _copy(response, target):
    """Streams a response into `target`, written beside it and renamed into place."""

    def write(staging):
        with response, open(staging, "wb") as f:
            total = response.headers.get("Content-Length")
            progress = keras.utils.Progbar(int(total) if total and total.isdigit() else None)
            done = 0
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                done += len(chunk)
                progress.update(done)

    atomic.write_atomically(target, True, write)
