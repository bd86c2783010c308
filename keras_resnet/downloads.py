"""Downloads and hashes: a preset's file fetched into the Keras cache, its pin checked.

`fetch(preset, timeouts=, attempts=, backoff=, min_speed=)` finds a
preset's file in the Keras cache (~/.keras/models, or $KERAS_HOME/models)
or downloads it there, its hash pinned: a cached file whose hash differs is
downloaded again, a download whose hash differs is deleted and never used,
an unpinned preset is never downloaded. A download waits at most `timeouts`
(connect, read), is tried `attempts` times (server errors, timeouts, a
passed deadline and dropped or truncated connections; not a missing file or
an unknown host), and is written beside its target and renamed into place
(`keras_resnet.atomic`).

Each attempt has a deadline that grows with what has arrived: its connect
and read timeouts, plus the bytes received so far at `min_speed` bytes per
second. A download that keeps up that average speed (after a start as slow
as the timeouts allow) never meets it, and a whole file takes at most the
timeouts plus its size at that speed. Without it a server that sends one
byte every second keeps every read inside its timeout and a 1.27 MB file
takes 15 days; a Content-Length does not move it (a server could announce
any). When the deadline passes, the connection is shut, whatever it was
waiting for (the response's headers or its body). A body shorter than its
Content-Length is a truncated download, said so and tried again, not a
file with the wrong hash.

The settings users change are `keras_resnet.weights.DOWNLOAD_TIMEOUTS`,
`DOWNLOAD_ATTEMPTS`, `DOWNLOAD_BACKOFF` and `DOWNLOAD_MIN_SPEED`;
`keras_resnet.weights.fetch` passes them in.
"""

import functools
import hashlib
import http.client
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import keras

from keras_resnet import atomic


def _cache_dir():
    """The Keras cache, where keras.utils.get_file caches too: $KERAS_HOME, or ~/.keras."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def fetch(preset, no_top=False, *, timeouts, attempts, backoff, min_speed=None):
    """Downloads a preset's file (or finds it in the cache) and returns its path.

    The hash is pinned: a cached file whose hash differs is downloaded
    again; a download whose hash differs is deleted and raises. A pin of 8
    hex digits is the start of the sha256 (torch.hub's convention for file
    names); one of 32 an md5 (keras.applications' pins); one of 64 a sha256.

    Args:
        preset: the `keras_resnet.registry` entry.
        no_top: fetch the preset's file without the classifier, if it has one.
        timeouts: (connect, read) seconds.
        attempts: how many times to try.
        backoff: seconds to wait before the second try (doubling after).
        min_speed: bytes per second; each attempt's deadline is its timeouts
            plus the bytes received so far at this speed. None or 0: no
            deadline.

    Returns:
        The path of the file in the Keras cache.

    Raises:
        ValueError: if the preset's hash is not pinned, or the download's
            hash differs, or `min_speed` is not None or a number >= 0.
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
    min_speed = _check_min_speed(min_speed)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        _download(url, target, timeouts, attempts, backoff, min_speed)
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


def _check_min_speed(min_speed):
    if min_speed is None or (
            isinstance(min_speed, (int, float)) and not isinstance(min_speed, bool) and min_speed >= 0):
        return min_speed or None
    raise ValueError(
        "keras_resnet.weights.DOWNLOAD_MIN_SPEED must be None (no deadline) or a number of "
        f"bytes per second >= 0, e.g. 100_000. Received {min_speed!r}."
    )


class _Deadline:
    """One attempt's deadline: `slack` seconds plus the bytes received so far
    (`received`, which `_copy` counts) at `min_speed`.

    A watcher thread shuts the connection's sockets down when the deadline
    passes: a read blocked on a server that trickles (each byte inside the
    read timeout) returns then.
    """

    def __init__(self, slack, min_speed):
        self.slack, self.min_speed = slack, min_speed
        self.start = time.monotonic()
        self.received = 0
        self.expired = False
        self._sockets = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        if min_speed:
            threading.Thread(target=self._watch, daemon=True).start()

    def seconds(self):
        """The deadline, in seconds from the attempt's start."""
        return self.slack + self.received / self.min_speed

    def watch(self, sock):
        """Shuts `sock` down when the deadline passes (at once if it has)."""
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def stop(self):
        self._done.set()

    def _watch(self):
        # The deadline only moves later (received grows), so waking early and
        # waiting again is all it takes.
        while not self._done.wait(max(0.0, self.start + self.seconds() - time.monotonic())):
            if time.monotonic() >= self.start + self.seconds():
                with self._lock:
                    self.expired = True
                    sockets = list(self._sockets)
                for sock in sockets:
                    _shut(sock)
                return


def _shut(sock):
    # socket.socket's own shutdown, also for an SSLSocket (whose shutdown
    # would drop its SSL object under a read in another thread).
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


class _WatchedConnection:
    """Waits `timeout` to connect, then `read_timeout` for each read; its
    sockets (the TCP one, then the TLS one) are shut at `deadline`."""

    def __init__(self, *args, read_timeout, deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout, self.deadline = read_timeout, deadline
        create = self._create_connection

        def create_watched(*args, **kwargs):
            sock = create(*args, **kwargs)
            deadline.watch(sock)  # also under the TLS handshake
            return sock

        self._create_connection = create_watched

    def connect(self):
        super().connect()  # TCP (and TLS), under the connect timeout
        self.deadline.watch(self.sock)
        self.sock.settimeout(self.read_timeout)


class _Connection(_WatchedConnection, http.client.HTTPConnection):
    pass


class _TLSConnection(_WatchedConnection, http.client.HTTPSConnection):
    pass


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, connection_args):
        super().__init__()
        self.connection_args = connection_args  # the current attempt's

    def http_open(self, request):
        return self.do_open(functools.partial(_Connection, **self.connection_args), request)


class _TLSHandler(urllib.request.HTTPSHandler):
    def __init__(self, connection_args):
        self.context = ssl.create_default_context()
        super().__init__(context=self.context)
        self.connection_args = connection_args

    def https_open(self, request):
        connection = functools.partial(_TLSConnection, **self.connection_args)
        return self.do_open(connection, request, context=self.context)


# HTTP statuses worth another try: the server or a proxy on the way is busy.
_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


class _Truncated(ConnectionError):
    """The connection closed before the Content-Length was received."""


def _download(url, target, timeouts, attempts, backoff, min_speed=None):
    """Downloads `url` to `target` (atomically) with timeouts, a deadline and retries.

    Raises:
        OSError: saying what failed on the last attempt and how many were made.
    """
    connect_timeout, read_timeout = timeouts
    attempts = max(1, int(attempts))
    connection_args = {"read_timeout": read_timeout, "deadline": None}
    opener = urllib.request.build_opener(_Handler(connection_args), _TLSHandler(connection_args))
    print(f"Downloading data from {url}")
    for attempt in range(1, attempts + 1):
        deadline = connection_args["deadline"] = _Deadline(connect_timeout + read_timeout, min_speed)
        try:
            _copy(opener.open(url, timeout=connect_timeout), target, deadline)
            return
        except (OSError, http.client.HTTPException) as error:
            if not deadline.expired and not isinstance(
                    error, (urllib.error.URLError, TimeoutError, ConnectionError,
                            http.client.HTTPException, ssl.SSLError)):
                raise  # a local error (the disk), not the download's
            failure, retry = _failure(error, deadline, timeouts)
        finally:
            deadline.stop()
        if not retry or attempt == attempts:
            tries = f" ({attempt} attempts)" if attempt > 1 else ""
            raise OSError(f"{failure}{tries}")
        time.sleep(backoff * 2 ** (attempt - 1))


def _failure(error, deadline, timeouts):
    """(what went wrong, whether another try can help) for an attempt's error."""
    if deadline.expired:
        return (f"too slow: {deadline.received:,} bytes had arrived when this attempt's "
                f"deadline passed, {deadline.seconds():.3g} s after it started (the connect "
                f"and read timeouts, {deadline.slack:g} s, plus what has arrived at "
                f"{deadline.min_speed:,} bytes/s, keras_resnet.weights.DOWNLOAD_MIN_SPEED)"), True
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP Error {error.code}: {error.reason}", error.code in _RETRY_STATUSES
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        failure = _timed_out(*timeouts) if isinstance(reason, TimeoutError) else str(reason)
        # An unknown host or a refused certificate will not come right.
        return failure, not isinstance(reason, (socket.gaierror, ssl.SSLCertVerificationError))
    if isinstance(error, TimeoutError):  # a read timed out after the connection was made
        return _timed_out(*timeouts), True
    if isinstance(error, _Truncated):
        return str(error), True
    if isinstance(error, http.client.IncompleteRead):  # a chunked body cut short
        return (f"the connection closed after {deadline.received:,} bytes, inside the body's "
                "chunks: the download was truncated"), True
    # A dropped connection (also one that TLS reports).
    return f"{type(error).__name__}: {error}", not isinstance(error, ssl.SSLCertVerificationError)


def _timed_out(connect_timeout, read_timeout):
    return (f"timed out (connect timeout {connect_timeout:g} s, read timeout {read_timeout:g} s; "
            "see keras_resnet.weights.DOWNLOAD_TIMEOUTS)")


def _content_length(response):
    total = response.headers.get("Content-Length")
    return int(total) if total and total.strip().isdigit() else None


def _copy(response, target, deadline):
    """Streams a response into `target`, written beside it and renamed into place.

    Raises:
        _Truncated: if the body ends before its Content-Length (or the
            deadline passed and shut the connection).
    """

    def write(staging):
        with response, open(staging, "wb") as f:
            total = _content_length(response)
            progress = keras.utils.Progbar(total)
            # read1: whatever one read brings, so the deadline sees progress
            # as it comes (read(n) waits for all n bytes).
            for chunk in iter(lambda: response.read1(1 << 20), b""):
                f.write(chunk)
                deadline.received += len(chunk)
                progress.update(deadline.received)
            if deadline.expired or (total is not None and deadline.received < total):
                raise _Truncated(
                    f"the connection closed after {deadline.received:,} of the {total:,} bytes "
                    "its Content-Length announced: the download was truncated"
                    if total is not None else "the connection was shut at the deadline"
                )

    atomic.write_atomically(target, True, write)
