"""The run's CSV history, rewritten atomically and consistent across resumes."""

import csv
import io
import json
import os
import pathlib
import tempfile
import time

import keras

FIELDS = ("epoch", "step", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "train_time_s", "epoch_time_s")


def write_atomic(path, text):
    """Writes `text` to `path` via a temporary file and a rename."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path, data):
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read(path):
    """The rows of a history.csv as dicts of floats (empty if none)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


class HistoryCSV(keras.callbacks.Callback):
    """Appends one row per epoch to history.csv, with step, lr and timings.

    On resume, rows of epochs the restored checkpoint has not reached
    (written after the last checkpoint, before a kill) are dropped when
    training restarts, so the file ends with exactly one row per epoch.
    Place it *before* `BackupAndRestore` in the callback list: the row is
    then on disk before the checkpoint that covers it.

    Args:
        path: the CSV file.
        schedule: the lr schedule, to log the lr of each epoch's last step.
    """

    def __init__(self, path, schedule):
        super().__init__()
        self.path = pathlib.Path(path)
        self.schedule = schedule
        self.rows = []

    def on_train_begin(self, logs=None):
        self.rows = read(self.path)

    def on_epoch_begin(self, epoch, logs=None):
        if any(row["epoch"] >= epoch for row in self.rows):
            self.rows = [row for row in self.rows if row["epoch"] < epoch]
            self._flush()
        self._epoch_start = time.perf_counter()
        self._train_time = None

    def on_test_begin(self, logs=None):
        if self._train_time is None:
            self._train_time = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._epoch_start
        step = int(self.model.optimizer.iterations.numpy())
        row = {
            "epoch": epoch,
            "step": step,
            "lr": float(keras.ops.convert_to_numpy(self.schedule(step - 1))),
            "train_time_s": self._train_time if self._train_time is not None else elapsed,
            "epoch_time_s": elapsed,
        }
        row.update({k: float(v) for k, v in (logs or {}).items() if k in FIELDS})
        self.rows.append(row)
        self._flush()

    def _flush(self):
        out = io.StringIO()
        writer = csv.DictWriter(out, FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (int(v) if k in ("epoch", "step") else v) for k, v in row.items()})
        write_atomic(self.path, out.getvalue())
