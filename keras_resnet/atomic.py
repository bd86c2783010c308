"""Write-then-rename: the one way keras_resnet puts a file or folder at a path.

What is written goes first to a hidden staging directory beside the target
(same file system, so the rename is atomic), and is renamed into place only
once it is complete: an interrupted export or download leaves the old file
(or nothing) at the path, never half of a new one. A staging directory left
by a killed process on this host is removed by the next write to the path.

    atomic.write_atomically(path, overwrite, lambda tmp: write_into(tmp))
    atomic.occupied(path)  # would writing here replace something?
"""

import glob
import os
import pathlib
import shutil
import socket
import tempfile


def occupied(path):
    """Whether `path` holds something a write would replace: a file, a link,
    or a directory that is not empty (an empty directory is free to use)."""
    path = pathlib.Path(path)
    if path.is_dir():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


def write_atomically(path, overwrite, write, suffix=""):
    """Calls `write(tmp)` and renames `tmp` to `path`.

    Args:
        path: where the file or directory goes (a `pathlib.Path` or str).
        overwrite: whether an occupied `path` may be replaced; checked again
            after writing, in case something appeared meanwhile.
        write: called with the staging path (a str, nothing there yet) to
            write the file or directory into.
        suffix: the end of the staging path's name, for writers that insist
            on one (Keras's LiteRT exporter wants ".tflite").

    An existing `path` is moved aside only once the new one is complete, and
    removed after the rename; if `write` raises, `path` is as it was.

    Raises:
        FileExistsError: if `path` became occupied during the write and
            `overwrite` is False.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(path)
    staging = pathlib.Path(tempfile.mkdtemp(dir=path.parent, prefix=staging_prefix(path)))
    target = staging / f"export{suffix}"
    old = None
    try:
        write(str(target))
        if occupied(path):
            if not overwrite:  # Appeared while we wrote.
                raise FileExistsError(
                    f"{str(path)!r} appeared during the export; pass overwrite=True."
                )
            old = staging / "old"
            os.replace(path, old)
        elif path.is_dir():
            path.rmdir()
        try:
            os.replace(target, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def staging_prefix(path):
    """The name prefix of `path`'s hidden staging directories: they name their
    host and process, so a later write can tell one left by a killed process
    from one still in use."""
    return f".{pathlib.Path(path).name}.tmp-{socket.gethostname()}-{os.getpid()}-"


def _remove_stale_staging(path):
    """Removes staging directories of `path` left behind by killed writes.

    A `kill -9` during an export leaves its hidden staging directory (the
    half-written export) next to `path`. One made on this host by a process
    that no longer exists is removed; others are left alone.
    """
    prefix = f".{path.name}.tmp-{socket.gethostname()}-"
    for staging in path.parent.glob(f"{glob.escape(prefix)}*"):
        pid = staging.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and staging.is_dir() and not alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def alive(pid):
    """Whether a process with id `pid` runs on this host (this one included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Another user's live process.
    return True
