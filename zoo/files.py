"""Files written whole or not at all: write-then-rename, and strict JSON.

Every file of a run is written under a temporary name holding
".tmp-<pid>" beside its final name and renamed into place (`staged`), so
a kill never leaves a half-written file under a real name; what it leaves
is deleted by the next run once that pid has ended
(`zoo.run.remove_stale_staging`). This module is that one mechanism; it
imports neither Keras nor TensorFlow.
"""

import contextlib
import json
import math
import os
import pathlib
import re
import shutil

# The temporary names `staged` gives (older zoos wrote ".name.tmp-<pid>-xyz"
# and "name.tmp-<pid>.weights.h5": the pattern matches those too).
STAGING = re.compile(r"\.tmp-(\d+)(?:[-.]|$)")


def staging_name(path, suffix=""):
    """This process's temporary name beside `path`: `path.tmp-<pid><suffix>`."""
    return f"{path}.tmp-{os.getpid()}{suffix}"


@contextlib.contextmanager
def staged(path, suffix=""):
    """Yields a temporary path beside `path`, renamed onto `path` if the block succeeds.

    The one write-then-rename of the zoo: write the file at the yielded
    path (a plain `open(..., "w")` gives it the permissions a direct write
    would: 0666 less the umask); when the block ends without an error it
    replaces `path` in one rename, otherwise it is deleted.

    Args:
        path: the final file.
        suffix: appended to the temporary name, for writers that insist on
            an extension (Keras: ".weights.h5", ".keras").
    """
    path = pathlib.Path(path)
    tmp = pathlib.Path(staging_name(path, suffix))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path, text):
    """Writes `text` to `path` via a temporary file and a rename."""
    with staged(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def copy_atomic(source, target):
    """Copies `source` onto `target` via a temporary file and a rename."""
    with staged(target) as tmp:
        shutil.copyfile(source, tmp)


def write_json(path, data):
    """Writes strict JSON: NaN and infinities become null (JSON has neither)."""
    text = json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False)
    write_atomic(path, text + "\n")


def _finite(data):
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def read_json(path, what, fix):
    """Reads a JSON file the zoo wrote; a clear error if it is not valid JSON.

    Args:
        path: the file.
        what: what the file is, for the message (e.g. "the run's config").
        fix: what the user can do about a broken file.

    Raises:
        ValueError: naming the file, what it is and `fix`.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text()
        return json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        state = "is empty" if path.exists() and not path.stat().st_size else "cannot be read"
        raise ValueError(f"{path} ({what}) {state}: {error}. {fix}") from None
