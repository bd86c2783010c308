"""The run's CSV history, rewritten atomically and consistent across resumes."""

import csv
import io
import pathlib
import time

import keras

from zoo import files

FIELDS = ("epoch", "step", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "train_time_s", "epoch_time_s")


def read(path):
    """The rows of a history.csv as dicts of floats (empty if none).

    Raises:
        ValueError: naming the file and the line, if it is not such a CSV.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return []
    rows = []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                if None in row or None in row.values():
                    raise ValueError("wrong number of columns")
                rows.append({k: float(v) for k, v in row.items() if v != ""})
        for key in ("epoch", "step", "train_time_s", "epoch_time_s"):
            if rows and any(key not in r for r in rows):
                raise ValueError(f"a row lacks {key!r}")
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
        line = f" (line {reader.line_num})" if "reader" in locals() else ""
        raise ValueError(
            f"{path}{line} is not a readable training history: {error}. It is "
            "rewritten every epoch; restore it from a copy, or delete it (the run then "
            "resumes, but its results lack the time and accuracy of earlier epochs)."
        ) from None
    return rows


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
        files.write_atomic(self.path, out.getvalue())
