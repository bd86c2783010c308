"""zoo.checkpoint: a run resumes only from a whole and consistent checkpoint, and a full disk keeps the last one.

Moved from tests/test_zoo_misuse.py (issue 20).
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import keras
import pytest

from zoo import checkpoint
from zoo import history
from zoo_helpers import ENV, REPO, fit, tiny_model


def checkpoint_files(workdir):
    root = pathlib.Path(workdir) / "checkpoints"
    return {
        "weights": root / "latest.weights.h5", "metadata": root / "training_metadata.json",
        "bkp_weights": root / "latest.weights.h5.bkp", "bkp_metadata": root / "training_metadata.json.bkp",
    }


def interrupted_after(workdir, epochs):
    """Trains `epochs` epochs of 4 steps, then stops as a kill would."""
    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == epochs:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), workdir, 5, extra=[Stop()])
    return checkpoint_files(workdir)


def resume(workdir, epochs=5):
    model = tiny_model()
    history_ = fit(model, workdir, epochs)
    return int(model.optimizer.iterations.numpy()), len(history_.history["loss"])


def test_kill_between_the_weights_and_metadata_writes_falls_back(tmp_path, capsys):
    files = interrupted_after(tmp_path, 3)  # weights and metadata at epoch 3 (step 12)
    # The state a kill leaves between the two writes of epoch 3's checkpoint:
    # new weights (step 12) beside the old metadata (epoch 2).
    shutil.copy(files["bkp_metadata"], files["metadata"])
    assert json.loads(files["metadata"].read_text())["epoch"] == 2
    steps, epochs_run = resume(tmp_path)
    assert (steps, epochs_run) == (20, 3)  # was 24: one epoch too many
    assert "resumed from the backup checkpoint" in capsys.readouterr().out
    rows = history.read(tmp_path / "history.csv")
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16, 20]


@pytest.mark.parametrize("content", ["", "{\"epo", "[]", "{\"epoch\": -1}"])
def test_damaged_metadata_falls_back_to_the_backup(tmp_path, content):
    files = interrupted_after(tmp_path, 3)
    files["metadata"].write_text(content)
    assert resume(tmp_path) == (20, 3)


def test_truncated_weights_fall_back_to_the_backup(tmp_path):
    files = interrupted_after(tmp_path, 3)
    files["weights"].write_bytes(files["weights"].read_bytes()[:100])
    assert resume(tmp_path) == (20, 3)
    # The backup became the latest pair: the next save keeps it as a backup.
    assert json.loads(files["metadata"].read_text())["epoch"] == 5


def test_no_consistent_checkpoint_is_refused_naming_the_files(tmp_path):
    files = interrupted_after(tmp_path, 3)
    files["metadata"].write_text("")
    files["bkp_weights"].write_bytes(b"")
    with pytest.raises(ValueError, match=r"Cannot resume from .*checkpoints.*latest: .*training_metadata.json is not valid.*backup: .*latest.weights.h5.bkp cannot be loaded.*Delete .* to train this run from the start"):
        resume(tmp_path)


def test_a_kill_before_the_first_metadata_write_is_refused(tmp_path):
    files = interrupted_after(tmp_path, 1)
    files["metadata"].unlink()
    with pytest.raises(ValueError, match=r"training_metadata.json is missing"):
        resume(tmp_path)


def test_full_disk_during_a_checkpoint_is_one_sentence_and_keeps_the_last_one(tmp_path, monkeypatch):
    interrupted_after(tmp_path, 2)  # checkpoints of epochs 1 and 2
    files = checkpoint_files(tmp_path)
    before = {name: path.read_bytes() for name, path in files.items()}
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    # Was: ~20 h5py tracebacks from a half-written file, then SIGSEGV.
    with pytest.raises(RuntimeError, match=rf"^Cannot write the checkpoint of epoch 3 in {tmp_path / 'checkpoints'}: No space left on device \(it needs about .* MiB, 0.0 MiB are free\)\. The checkpoint before it is kept"):
        resume(tmp_path)
    assert {name: path.read_bytes() for name, path in files.items()} == before
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == sorted(
        [p.name for p in files.values()])


@pytest.mark.slow
@pytest.mark.multiprocess
def test_a_real_full_disk_ends_with_one_sentence_not_a_crash(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    # 2.5 MB: room for the first checkpoint of a ~1 MB model, not for the
    # second one beside its backup.
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2500k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs root with the right to mount a small tmpfs")
    try:
        script = (
            "import sys, keras, numpy as np\n"
            "from zoo import callbacks as zoo_callbacks, checkpoint\n"
            "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(40000), keras.layers.Dense(2)])\n"
            "model.compile(keras.optimizers.SGD(0.1), 'sparse_categorical_crossentropy')\n"
            "x, y = np.zeros((8, 3), 'float32'), np.zeros(8, 'int32')\n"
            "callbacks = zoo_callbacks.callbacks(sys.argv[1], lambda step: 0.1, tensorboard=False)\n"
            "try:\n"
            "    model.fit(x, y, batch_size=2, epochs=3, verbose=0, callbacks=callbacks)\n"
            "except checkpoint.CheckpointNotWritten as error:\n"
            "    sys.exit(f'Error: {error}')\n"
        )
        result = subprocess.run([sys.executable, "-c", script, str(disk)], cwd=REPO, env=ENV,
                                capture_output=True, text=True, timeout=120)
        # Was: ~20 h5py tracebacks, then SIGSEGV (returncode -11).
        assert result.returncode == 1, result.stderr[-3000:]
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        assert re.search(r"Error: Cannot write the checkpoint of epoch 2 in .*: No space left on device", result.stderr)
        # Epoch 1's checkpoint, whole, and nothing half-written beside it.
        assert sorted(p.name for p in (disk / "checkpoints").iterdir()) == [
            "latest.weights.h5", "training_metadata.json"]
        assert json.loads((disk / "checkpoints" / "training_metadata.json").read_text())["epoch"] == 1
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_the_keras_internals_it_builds_on_are_checked_when_it_is_made(tmp_path, monkeypatch):
    assert checkpoint.Checkpoint(tmp_path).KERAS_INTERNALS
    monkeypatch.setattr(checkpoint.Checkpoint, "KERAS_INTERNALS", ("_weights_path", "_renamed_by_keras"))
    with pytest.raises(RuntimeError, match=r"BackupAndRestore's \['_renamed_by_keras'\], which Keras 3"):
        checkpoint.Checkpoint(tmp_path)
