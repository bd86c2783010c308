"""zoo.lock (through zoo.run.exclusive): one process at a time in a workdir, released by any death.

Moved from tests/test_zoo_misuse.py (issue 20).
"""

import os
import subprocess
import sys

import pytest

from zoo import run as zoo_run
from zoo_helpers import ENV, REPO


def test_second_process_on_a_workdir_is_refused(tmp_path):
    with zoo_run.exclusive(tmp_path / ".lock"):
        with pytest.raises(zoo_run.WorkdirBusy, match=rf"Another process \(pid {os.getpid()}\) is training in"):
            with zoo_run.exclusive(tmp_path / ".lock"):
                pass
    with zoo_run.exclusive(tmp_path / ".lock"):  # released on exit
        pass


@pytest.mark.multiprocess
def test_lock_is_released_when_its_process_is_killed(tmp_path):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from zoo import run as zoo_run\n"
         f"with zoo_run.exclusive({str(lock)!r}):\n    print('held', flush=True); time.sleep(60)"],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(zoo_run.WorkdirBusy, match=f"pid {holder.pid}"):
            with zoo_run.exclusive(lock):
                pass
    finally:
        holder.kill()
        holder.wait()
    with zoo_run.exclusive(lock):
        pass


def test_lock_file_is_deleted_by_its_holder_and_a_late_opener_retries(tmp_path):
    lock = tmp_path / ".lock"
    with zoo_run.exclusive(lock):
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not lock.exists()
    # A process that opened the old file just before its holder deleted it
    # must not lock that orphan: it takes the new file, and so sees a holder.
    import fcntl

    real_open = open
    orphan = []

    def open_then_lose_the_race(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if not orphan:
            orphan.append(handle)
            os.unlink(path)  # the holder deletes the file ...
            holder = real_open(path, "a+")  # ... and the next run creates and locks a new one
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            orphan.append(holder)
        return handle

    import builtins

    builtins_open = builtins.open
    builtins.open = open_then_lose_the_race
    try:
        with pytest.raises(zoo_run.WorkdirBusy):
            with zoo_run.exclusive(lock):
                pass
    finally:
        builtins.open = builtins_open
        for handle in orphan:
            handle.close()
