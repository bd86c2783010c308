"""One process at a time in a directory: the operating system's lock, with its holder's pid."""

import contextlib
import os
import pathlib


class WorkdirBusy(RuntimeError):
    """Another process is training in the same workdir."""


class WorkdirNotWritable(ValueError):
    """The workdir's lock file cannot be created (a read-only disk, say)."""


@contextlib.contextmanager
def exclusive(lock_path):
    """Holds an exclusive lock on `lock_path` for the block, or raises `WorkdirBusy`.

    The lock is the operating system's (`fcntl.flock`), so it is released
    when the process ends in any way, `kill -9` included: a stale lock file
    never blocks a later run. The file holds the holder's pid, for the
    message, and is deleted when the block ends (a kill leaves it behind,
    harmless). A process that opened the file just before its holder
    deleted it would lock a file no one else sees, so after locking, the
    path must still name the locked file, else it is opened again.

    Raises:
        WorkdirBusy: another process holds the lock.
        WorkdirNotWritable: the lock file cannot be created, naming the
            path and the cause.
    """
    import fcntl

    lock_path = pathlib.Path(lock_path)
    while True:
        try:
            handle = open(lock_path, "a+")
        except OSError as error:
            raise WorkdirNotWritable(
                f"Cannot train in {lock_path.parent}: its lock file {lock_path} cannot be "
                f"created ({error.strerror}). zoo.train writes its checkpoints and results "
                "there: use a writable --workdir."
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise WorkdirBusy(
                f"Another process (pid {holder}) is training in {lock_path.parent}. Wait "
                "for it to end, stop it, or use another --workdir: two runs in one "
                "workdir would overwrite each other's checkpoints."
            ) from None
        try:
            current = os.stat(lock_path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(handle.fileno()).st_ino:
            break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        try:
            lock_path.unlink()  # While still holding it; see above.
        except OSError:
            pass
        handle.close()

