"""Checkpoints a run resumes from: Keras's BackupAndRestore, made consistent.

`Checkpoint` is BackupAndRestore (two checkpoints), resuming only from a
whole and consistent pair; `resume` restores one before `fit`, for loops
that build their data stream from the step they resume at. Beside the
weights, the model's per-pixel mean (`save_mean` / `load_mean`), and
`load_model`: the model rebuilt from the last checkpoint (what
`zoo.evaluate --checkpoint` and `zoo.analysis --checkpoint` load).
"""

import errno
import os
import pathlib
import shutil

import keras
import numpy as np

from keras_resnet import specs
from zoo import files
from zoo import model as model_lib
from zoo import run


class CheckpointNotWritten(RuntimeError):
    """A checkpoint could not be written (a full or read-only disk, say)."""


class Checkpoint(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore (two checkpoints), resuming only from a consistent one.

    A checkpoint is two files written one after the other: the weights,
    which hold the optimizer's step counter, then training_metadata.json,
    which holds the epoch. A kill between the two left weights of epoch
    n + 1 beside metadata of epoch n, and Keras resumed at epoch n with the
    step counter already one epoch on, so the run ended one epoch late (250
    steps instead of 200). An empty or truncated metadata file crashed the
    resume although the backup pair was intact.

    Here each file is written to a temporary name and renamed into place,
    and a restore takes the latest pair, else the backup pair (`.bkp`), only
    if both of its files read and the restored step counter equals the
    metadata's epoch times the steps per epoch. A backup that is used is
    copied over the latest pair, so that the next save keeps it as the new
    backup. If no pair is consistent, training refuses to start, naming
    the files and what is wrong with each.

    Everything happens in the standard callback hooks (`on_train_begin`,
    `on_epoch_end`), so any loop that calls them gets it. Steps per epoch
    come from `self.params["steps"]`, which `fit` sets.

    It builds on BackupAndRestore's private members, listed in
    `KERAS_INTERNALS` and checked when it is made, so that a Keras that
    renames one fails at once, naming it, rather than mid-run. (Plus
    `model._initial_epoch`, the epoch `fit` starts from, which a restore sets
    as BackupAndRestore's own restore does.)

    Args:
        backup_dir: the checkpoint directory.
    """

    # The private members of keras.callbacks.BackupAndRestore used here: its
    # four file paths, the epoch and batch it saves, and the save it does.
    KERAS_INTERNALS = (
        "_weights_path", "_training_metadata_path", "_prev_weights_path",
        "_prev_training_metadata_path", "_current_epoch", "_last_batch_seen", "_save_model",
    )

    def __init__(self, backup_dir):
        super().__init__(
            str(backup_dir), save_freq="epoch", double_checkpoint=True, delete_checkpoint=False
        )
        missing = [name for name in self.KERAS_INTERNALS if not hasattr(self, name)]
        if missing:
            raise RuntimeError(
                f"zoo.checkpoint.Checkpoint needs keras.callbacks.BackupAndRestore's {missing}, "
                f"which Keras {keras.__version__} does not have: install the Keras version "
                "setup.py names."
            )
        self._restored = False

    def _pairs(self):
        return (
            ("latest", self._weights_path, self._training_metadata_path),
            ("backup", self._prev_weights_path, self._prev_training_metadata_path),
        )

    def on_train_begin(self, logs=None):
        if not self._restored:  # Not restored by `resume` before `fit`.
            self._restore_latest()

    def _restore_latest(self):
        self._restored = True
        pairs = self._pairs()
        if not any(os.path.exists(path) for _, *paths in pairs for path in paths):
            return  # A new run.
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        steps = (self.params or {}).get("steps")
        problems = []
        for name, weights, metadata in pairs:
            problem = self._restore(weights, metadata, steps)
            if problem is None:
                if name == "backup":
                    files.copy_atomic(weights, self._weights_path)
                    files.copy_atomic(metadata, self._training_metadata_path)
                    print(f"zoo: resumed from the backup checkpoint ({'; '.join(problems)})")
                return
            problems.append(f"{name}: {problem}")
        raise ValueError(
            f"Cannot resume from {self.backup_dir}: no checkpoint there is whole and "
            f"consistent ({'; '.join(problems)}). Delete {self.backup_dir} to train this "
            "run from the start, or use a new --workdir."
        )

    def epochs(self):
        """The epochs this directory can resume from: {epoch: "latest" | "backup"}.

        Only pairs whose metadata reads count; their weights are checked
        when restored (`restore_epoch`).
        """
        found = {}
        for name, weights, metadata in self._pairs():
            epoch = self._metadata_epoch(weights, metadata)
            if epoch is not None:
                found.setdefault(epoch, name)
        return found

    def _metadata_epoch(self, weights, metadata):
        if not (os.path.exists(weights) and os.path.exists(metadata)):
            return None
        try:
            epoch = files.read_json(metadata, "checkpoint metadata", "")["epoch"]
        except (ValueError, TypeError, KeyError):
            return None
        return _epoch_count(epoch)

    def restore_epoch(self, epoch):
        """Restores the pair of `epoch` (latest or backup) now; 0 restores nothing.

        What a group of runs that must continue from one step calls
        (`zoo.seeds`) instead of taking each run's latest pair. `fit` (or
        the loop's `on_train_begin`) then restores nothing more.

        Raises:
            ValueError: no whole and consistent pair of that epoch.
        """
        self._restored = True
        if epoch == 0:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        steps = (self.params or {}).get("steps")
        problems = []
        for name, weights, metadata in self._pairs():
            if self._metadata_epoch(weights, metadata) != epoch:
                continue
            problem = self._restore(weights, metadata, steps)
            if problem is None:
                if name == "backup":  # The next save then keeps it as the backup.
                    files.copy_atomic(weights, self._weights_path)
                    files.copy_atomic(metadata, self._training_metadata_path)
                return
            problems.append(f"{name}: {problem}")
        raise ValueError(
            f"Cannot resume {self.backup_dir} at epoch {epoch}: "
            f"{'; '.join(problems) or 'no checkpoint of that epoch'}."
        )

    def _restore(self, weights, metadata, steps):
        """Loads one pair; returns what is wrong with it, or None."""
        if not os.path.exists(weights):
            return f"{weights} is missing"
        if not os.path.exists(metadata):
            return f"{metadata} is missing"
        try:
            epoch = files.read_json(metadata, "checkpoint metadata", "")["epoch"]
            if _epoch_count(epoch) is None:
                raise ValueError(f"epoch={epoch!r} is not an epoch count")
        except (ValueError, TypeError, KeyError) as error:
            return f"{metadata} is not valid checkpoint metadata ({str(error).strip()})"
        # Keras loads only names ending in .weights.h5, so the backup is
        # loaded from a copy under such a name.
        readable = weights
        if not weights.endswith(".weights.h5"):
            readable = files.staging_name(weights, ".weights.h5")
            shutil.copyfile(weights, readable)
        try:
            self.model.load_weights(readable)
        except Exception as error:  # h5py, Keras and OS errors alike: the file is bad.
            return f"{weights} cannot be loaded ({type(error).__name__}: {error})"
        finally:
            if readable != weights:
                os.unlink(readable)
        restored = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if steps and restored != epoch * steps:
            return (
                f"{weights} is at step {restored} but {metadata} says epoch {epoch}, "
                f"i.e. step {epoch * steps} (a kill between the two writes?)"
            )
        self.model._initial_epoch = epoch
        return None

    def _save_model(self):
        try:
            os.makedirs(self.backup_dir, exist_ok=True)
            self._check_space()
            mean = model_lib.mean_of(self.model)
            if mean is not None:  # Before the weights: a checkpoint never lacks it.
                save_mean(pathlib.Path(self.backup_dir) / run.MEAN_FILE, mean)
            for latest, previous in (
                (self._weights_path, self._prev_weights_path),
                (self._training_metadata_path, self._prev_training_metadata_path),
            ):
                if os.path.exists(latest):
                    files.copy_atomic(latest, previous)
            with files.staged(self._weights_path, ".weights.h5") as tmp:
                self.model.save_weights(tmp, overwrite=True)
            files.write_json(
                self._training_metadata_path,
                {"epoch": self._current_epoch, "batch": self._last_batch_seen},
            )
        except OSError as error:
            if isinstance(error, _NoSpace) or not error.errno:
                cause = error.strerror or str(error)
            else:  # h5py's message is a screenful; the errno says it.
                cause = os.strerror(error.errno)
            raise CheckpointNotWritten(
                f"Cannot write the checkpoint of epoch {self._current_epoch} in "
                f"{self.backup_dir}: {cause}. The checkpoint before it is kept (a run "
                "resumes only from a whole one): make room or fix the disk, then rerun "
                "the same command to resume."
            ) from None

    def _check_space(self):
        """Fails before writing if the disk cannot hold the new checkpoint.

        h5py does not fail cleanly on a full disk: it raises from deep
        inside a half-written file, then crashes the interpreter (SIGSEGV)
        at exit. A save needs room for one more weights file (two while the
        backup is made for the first time), the size of the last one or,
        before the first, of the variables, plus 1 MiB. (A disk that another
        process fills between this check and the write can still crash
        h5py, after the error message; the checkpoint before is kept.)
        """
        if os.path.exists(self._weights_path):
            size = os.path.getsize(self._weights_path)
        else:
            size = sum(
                int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                for v in self.model.weights + list(getattr(self.model.optimizer, "variables", []))
            )
        copies = 2 if os.path.exists(self._weights_path) and not os.path.exists(self._prev_weights_path) else 1
        needed = copies * int(size * 1.05) + (1 << 20)
        free = shutil.disk_usage(self.backup_dir).free
        if free < needed:
            raise _NoSpace(
                errno.ENOSPC,
                f"{os.strerror(errno.ENOSPC)} (it needs about {needed / 2**20:.1f} MiB, "
                f"{free / 2**20:.1f} MiB are free)",
            )


def _epoch_count(value):
    """The metadata's epoch as an int >= 0, or None."""
    epoch = specs.integer(value)
    return epoch if epoch is not None and epoch >= 0 else None


class _NoSpace(OSError):
    """What `_check_space` raises: its strerror says how much room is missing."""


def resume(model, callbacks, epoch_steps):
    """Restores `model` from the `Checkpoint` in `callbacks` now, before `fit`.

    `fit` then starts at the restored epoch without restoring again. Lets a
    loop build its data stream from the step it resumes at.

    Returns:
        The global step training continues from (0 for a new run).
    """
    (checkpoint,) = [c for c in callbacks if isinstance(c, Checkpoint)]
    checkpoint.set_model(model)
    checkpoint.set_params({"steps": epoch_steps})
    checkpoint._restore_latest()
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


# --- The per-pixel mean beside the checkpoint, and the model rebuilt from both -

# What every .npy file starts with (numpy's format header).
NPY_MAGIC = b"\x93NUMPY"


def save_mean(path, mean):
    """Writes the per-pixel mean (.npy) via a temporary name."""
    with files.staged(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(mean, np.float32))


def load_mean(workdir, shape):
    """The per-pixel mean saved beside the run's checkpoint, checked against `shape`.

    Raises:
        zoo.run.MissingRunFile: the file is missing (a ValueError too).
        ValueError: naming the file, if it is unreadable, of another shape or
            not finite.
    """
    path = run.checkpoint_dir(workdir) / run.MEAN_FILE
    if not path.exists():
        raise run.MissingRunFile(
            f"{path} does not exist: the checkpoint was written by a zoo older than its "
            "per-pixel mean file, and the model rebuilt from it would subtract a wrong mean. "
            f"Evaluate {run.MODEL} (without --checkpoint), or rerun `python -m zoo.train` "
            "with the run's flags: the next checkpoint it writes includes the mean."
        )
    try:
        with open(path, "rb") as f:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:  # numpy would advise allow_pickle=True
                f.seek(0, 2)
                raise ValueError("it is empty" if f.tell() == 0 else "it is not a .npy file "
                                 "(it does not start with numpy's format header)")
        mean = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(
            f"{path} (the checkpoint's per-pixel mean) cannot be read: {error}. Rerun "
            "`python -m zoo.train` with the run's flags to write it again."
        ) from None
    if mean.shape != tuple(shape) or not np.isfinite(mean).all():
        raise ValueError(
            f"{path} (the checkpoint's per-pixel mean) holds an array of shape {mean.shape} "
            f"{'with non-finite values ' if mean.shape == tuple(shape) else ''}where the run's "
            f"model needs {tuple(shape)}. Rerun `python -m zoo.train` with the run's flags to "
            "write it again."
        )
    return mean


def load_model(workdir, recipe):
    """The run's model as its last checkpoint holds it: rebuilt from `recipe`, weights loaded.

    The checkpoint holds the training model's weights and optimizer state
    (the same files on every backend); the model is rebuilt from `recipe`
    and the mean saved beside them.

    Raises:
        zoo.run.MissingRunFile: no checkpoint, or no mean file.
        ValueError: a file that cannot be loaded, naming it.
    """
    path = run.checkpoint_weights(workdir)
    if not path.exists():
        raise run.MissingRunFile(f"{path} does not exist: the run has no checkpoint yet.")
    size = recipe.image_size
    # The mean is a constant of the model, not a weight: it is saved beside.
    model = model_lib.build(recipe, load_mean(workdir, (size, size, 3)))
    train_model = model_lib.training_model(model)
    model_lib.compile_model(train_model, recipe)
    train_model.optimizer.build(train_model.trainable_variables)
    try:
        train_model.load_weights(path)
    except Exception as error:  # h5py, Keras and OS errors alike: the file is bad.
        raise ValueError(
            f"{path} cannot be loaded ({type(error).__name__}: {error}). It may be "
            f"truncated by a kill during a save: try {path}.bkp (the previous "
            "checkpoint), or rerun `python -m zoo.train` to continue the run."
        ) from None
    return model


def load_trained(workdir, recipe, from_checkpoint=False):
    """The run's trained model: its model.keras, or with `from_checkpoint` its last checkpoint.

    Raises:
        zoo.run.MissingRunFile: the file to load is missing, naming it.
        ValueError: a file that cannot be loaded, naming it.
    """
    if from_checkpoint:
        return load_model(workdir, recipe)
    return run.load_model(workdir, ", or use its last checkpoint (--checkpoint)")
