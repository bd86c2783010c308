"""`keras_resnet.atomic`: a write lands whole at its path, or not at all."""

import os
import pathlib

import pytest

from keras_resnet import atomic


def test_failed_write_keeps_old_export(tmp_path):
    old = tmp_path / "export"
    old.mkdir()
    (old / "saved_model.pb").write_bytes(b"old export")

    def failing_write(target):
        os.makedirs(target)
        pathlib.Path(target, "half").write_text("half-written")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic.write_atomically(old, True, failing_write)
    assert (old / "saved_model.pb").read_bytes() == b"old export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_file_is_renamed_into_place_and_replaces_the_old_one_only_when_asked(tmp_path):
    target = tmp_path / "sub" / "weights.bin"

    def write(staging):
        assert not os.path.exists(staging) and pathlib.Path(staging).parent.parent == target.parent
        pathlib.Path(staging).write_bytes(b"new")

    atomic.write_atomically(target, False, write)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["weights.bin"]
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="appeared during the export"):
        atomic.write_atomically(target, False, write)
    assert target.read_bytes() == b"old"
    atomic.write_atomically(target, True, write)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["weights.bin"]


def test_the_staging_name_ends_with_the_suffix_asked_for(tmp_path):
    seen = []
    atomic.write_atomically(tmp_path / "m.tflite", False,
                            lambda staging: (seen.append(staging), pathlib.Path(staging).write_bytes(b"x")),
                            suffix=".tflite")
    assert seen[0].endswith(".tflite") and (tmp_path / "m.tflite").read_bytes() == b"x"


def test_occupied(tmp_path):
    assert not atomic.occupied(tmp_path / "missing")
    assert not atomic.occupied(tmp_path)  # an empty directory is free to use
    (tmp_path / "f").write_text("x")
    assert atomic.occupied(tmp_path) and atomic.occupied(tmp_path / "f")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    assert atomic.occupied(tmp_path / "link")  # a dangling link is something too


def test_a_staging_directory_of_a_dead_process_is_removed(tmp_path):
    target = tmp_path / "export"
    prefix = atomic.staging_prefix(target).rsplit("-", 2)[0]
    dead = 2 ** 22 + 12345  # above Linux's default pid_max: never a live process
    stale = tmp_path / f"{prefix}-{dead}-abc"
    stale.mkdir()
    alive = tmp_path / f"{atomic.staging_prefix(target)}xyz"  # this process: in use
    alive.mkdir()
    atomic.write_atomically(target, False, lambda staging: os.makedirs(staging))
    assert not stale.exists() and alive.is_dir() and target.is_dir()
