"""The run's CSV history, rewritten atomically and consistent across resumes."""

import csv
import io
import json
import math
import os
import pathlib
import re
import tempfile
import time

import keras

FIELDS = ("epoch", "step", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "train_time_s", "epoch_time_s")


# Every file of a run is written under a temporary name holding ".tmp-<pid>"
# and renamed into place; a kill leaves such a name behind, which the next
# run deletes (`zoo.runs.remove_stale_staging`) once that pid has ended.
STAGING = re.compile(r"\.tmp-(\d+)(?:[-.]|$)")


def staging_name(path, suffix=""):
    """This process's temporary name beside `path`: `path.tmp-<pid><suffix>`."""
    return f"{path}.tmp-{os.getpid()}{suffix}"


def write_atomic(path, text):
    """Writes `text` to `path` via a temporary file and a rename.

    The file gets the permissions a plain `open(path, "w")` would (0666 less
    the umask), not the 0600 of the temporary file.
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{staging_name(path.name)}-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask():
    mask = os.umask(0o022)  # Reading the umask means setting it; put it back.
    os.umask(mask)
    return mask


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
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text()
        return json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        state = "is empty" if path.exists() and not path.stat().st_size else "cannot be read"
        raise ValueError(f"{path} ({what}) {state}: {error}. {fix}") from None


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
            "resumes, but results.json lacks the time and accuracy of earlier epochs)."
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
        write_atomic(self.path, out.getvalue())
