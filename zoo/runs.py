"""What every training backend shares: compile, callbacks, the run's files."""

import contextlib
import errno
import math
import os
import pathlib
import shutil
import time

import keras
import numpy as np

from zoo import history
from zoo import model as model_lib
from zoo import schedules

CHECKPOINTS = "checkpoints"
# Beside the checkpoint's weights: the per-pixel mean the model subtracts,
# which is a constant of the model, not one of its weights.
MEAN_FILE = "mean.npy"


def compile_model(model, recipe):
    """SGD with momentum on the recipe's step schedule; returns the schedule.

    `model` outputs logits (`zoo.model.training_model`): the loss is the
    log-softmax crossentropy on every backend. Weight decay is in the model
    (coupled L2 on kernels), not the optimizer.
    """
    schedule = schedules.from_recipe(recipe)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=recipe.momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=recipe.run_eagerly,
    )
    return schedule


def callbacks(workdir, schedule, tensorboard=True):
    """The callbacks every training loop passes to `fit`, in this order.

    1. `StopOnNonFinite`: raises `NonFiniteError` as soon as the loss, or at
       an epoch's end any weight, is NaN or infinite; first, so that such an
       epoch reaches neither history.csv nor the checkpoint.
    2. `history.HistoryCSV`: the epoch's row, before the checkpoint that
       covers it.
    3. `Checkpoint`: Keras's BackupAndRestore, made to resume only from a
       consistent state.
    4. TensorBoard, if installed and wanted.
    """
    workdir = pathlib.Path(workdir)
    result = [
        StopOnNonFinite(workdir),
        history.HistoryCSV(workdir / "history.csv", schedule),
        Checkpoint(workdir / CHECKPOINTS),
    ]
    if tensorboard and _has_tensorboard():
        result.append(keras.callbacks.TensorBoard(str(workdir / "logs")))
    return result


class NonFiniteError(RuntimeError):
    """The loss or the weights of a training run became NaN or infinite."""


class CheckpointNotWritten(RuntimeError):
    """A checkpoint could not be written (a full or read-only disk, say)."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training with `NonFiniteError` when the loss or a weight is not finite.

    Keras's `TerminateOnNaN` stops quietly: `fit` returns as if it were done,
    and the run would be evaluated and recorded as finished. Here the loss
    is checked after every step (it is the epoch's running mean, so it stays
    NaN once it was) and every weight, BatchNorm's moving statistics
    included, at each epoch's end, before that epoch's history row and
    checkpoint are written: the checkpoint left behind is the last finite
    state. No results.json or model.keras is written. A non-finite
    validation loss with finite training only prints a warning: it is the
    net in inference mode that overflows (BN's moving statistics after a
    few steps, say), not training that diverged.

    Args:
        workdir: the run's directory, for the message.
    """

    def __init__(self, workdir):
        super().__init__()
        self.workdir = pathlib.Path(workdir)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._step()

    def on_train_batch_end(self, batch, logs=None):
        # The loop may not have assigned the step's state to the model yet
        # (zoo.scan_loop calls this after a whole epoch): count from the
        # epoch's first step.
        self._check_logs(logs, ("loss",), step=getattr(self, "_epoch_start", 0) + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._check_logs(logs, ("loss",), step=self._step())
        value = (logs or {}).get("val_loss")
        if value is not None and not math.isfinite(float(value)):
            # Not divergence: training is finite, but the net in inference
            # mode (BN's moving statistics) is not, e.g. after a few steps.
            print(
                f"zoo: warning: the validation loss after epoch {epoch} is {float(value)} "
                "(results.json records a non-finite loss as null)."
            )
        bad = [
            w.path for w in self.model.weights
            if not np.isfinite(keras.ops.convert_to_numpy(w)).all()
        ]
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            self._stop(f"weights {', '.join(bad[:3])}{more} hold NaN or infinite values")

    def _check_logs(self, logs, keys, step):
        for key in keys:
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                self._stop(f"the training loss is {float(value)}", step)

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _stop(self, what, step=None):
        step = self._step() if step is None else step
        raise NonFiniteError(
            f"Training diverged at step {step}: {what}. The run stops unfinished (no "
            f"results.json, no model.keras); {self.workdir / CHECKPOINTS} keeps the last "
            "finite state. Rerunning the same command resumes from there and will likely "
            "diverge again: check the images for NaN, or train in a new --workdir with a "
            "smaller learning rate (e.g. --set=lr=0.01)."
        )


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

    Args:
        backup_dir: the checkpoint directory.
    """

    def __init__(self, backup_dir):
        super().__init__(
            str(backup_dir), save_freq="epoch", double_checkpoint=True, delete_checkpoint=False
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
                    _copy_atomic(weights, self._weights_path)
                    _copy_atomic(metadata, self._training_metadata_path)
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
            epoch = history.read_json(metadata, "checkpoint metadata", "")["epoch"]
        except (ValueError, TypeError, KeyError):
            return None
        return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else None

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
                    _copy_atomic(weights, self._weights_path)
                    _copy_atomic(metadata, self._training_metadata_path)
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
            epoch = history.read_json(metadata, "checkpoint metadata", "")["epoch"]
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise ValueError(f"epoch={epoch!r} is not an epoch count")
        except (ValueError, TypeError, KeyError) as error:
            return f"{metadata} is not valid checkpoint metadata ({str(error).strip()})"
        # Keras loads only names ending in .weights.h5, so the backup is
        # loaded from a copy under such a name.
        readable = weights
        if not weights.endswith(".weights.h5"):
            readable = history.staging_name(weights, ".weights.h5")
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
                save_mean(pathlib.Path(self.backup_dir) / MEAN_FILE, mean)
            for latest, previous in (
                (self._weights_path, self._prev_weights_path),
                (self._training_metadata_path, self._prev_training_metadata_path),
            ):
                if os.path.exists(latest):
                    _copy_atomic(latest, previous)
            tmp = history.staging_name(self._weights_path, ".weights.h5")
            try:
                self.model.save_weights(tmp, overwrite=True)
                os.replace(tmp, self._weights_path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            history.write_json(
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


def save_mean(path, mean):
    """Writes the per-pixel mean (.npy) via a temporary name."""
    tmp = history.staging_name(path)
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(mean, np.float32))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_mean(workdir, shape):
    """The per-pixel mean saved beside the run's checkpoint, checked against `shape`.

    Raises:
        ValueError: naming the file, if it is missing, unreadable, of another
            shape or not finite.
    """
    path = pathlib.Path(workdir) / CHECKPOINTS / MEAN_FILE
    if not path.exists():
        raise ValueError(
            f"{path} does not exist: the checkpoint was written by a zoo older than its "
            "per-pixel mean file, and the model rebuilt from it would subtract a wrong mean. "
            "Evaluate model.keras (without --checkpoint), or rerun `python -m zoo.train` "
            "with the run's flags: the next checkpoint it writes includes the mean."
        )
    try:
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


def _copy_atomic(source, target):
    tmp = history.staging_name(target)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401  (tf.summary needs it to write)
    except ImportError:
        print("zoo: the tensorboard package is not installed; no TensorBoard logs.")
        return False
    return True


def finish(workdir, recipe, model, train_model, test_data, classes, evaluate_kwargs=None,
           test=None):
    """Evaluates on the test split; writes results.json, model.keras, classes.json.

    Args:
        workdir: the run's directory.
        recipe: the `Recipe`.
        model: the model to save (preprocessing inside, no augmentation).
        train_model: the compiled model that was trained (may be `model`).
        test_data: what `train_model.evaluate` takes for the test split.
        classes: class names, index = label.
        evaluate_kwargs: extra arguments of `evaluate` (e.g. y, batch_size).
        test: the test split's {"accuracy", "loss", "seconds"} if the caller
            evaluated it already (`zoo.seeds` evaluates K replicas with one
            compiled model); `test_data` is then not used.
    """
    workdir = pathlib.Path(workdir)
    if test is None:
        start = time.perf_counter()
        test = train_model.evaluate(test_data, return_dict=True, verbose=0, **(evaluate_kwargs or {}))
        test["seconds"] = time.perf_counter() - start
    test_time = test["seconds"]
    rows = history.read(workdir / "history.csv")
    steps = int(keras.ops.convert_to_numpy(train_model.optimizer.iterations))
    train_time = sum(row["train_time_s"] for row in rows)
    last = rows[-1] if rows else {}
    results = {
        "recipe": recipe.name,
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "val_accuracy": last.get("val_accuracy"),
        # The running accuracy of the last epoch, on augmented batches.
        "train_accuracy": last.get("accuracy"),
        "steps": steps,
        "epochs": len(rows),
        "batch_size": recipe.batch_size,
        "wall_time_s": sum(row["epoch_time_s"] for row in rows) + test_time,
        "images_per_s": steps * recipe.batch_size / train_time if train_time else None,
        "backend": keras.backend.backend(),
    }
    if model.compiled:
        # Saved uncompiled: loading then needs only keras_resnet (for the
        # option-A layer), not zoo's lr schedule.
        trained = model
        model = model.__class__.from_config(trained.get_config())
        model.set_weights(trained.get_weights())
    save_model(model, workdir / "model.keras")
    history.write_json(workdir / "classes.json", list(classes))
    history.write_json(workdir / "results.json", results)
    return results


def load_model_file(path):
    """Loads a run's model.keras; a clear error if the file is damaged."""
    import zipfile

    import keras_resnet  # Registers the layers model.keras uses.

    fix = (
        "It is written last, when the run ends, via a temporary file: if it was copied "
        "or edited since, restore it; or evaluate the last checkpoint instead "
        "(zoo.evaluate --checkpoint)."
    )
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found".
        raise ValueError(
            f"{path} cannot be loaded: it is not a whole .keras archive (empty, truncated "
            f"or corrupt). {fix}"
        )
    try:
        with keras_resnet.recursion_headroom():  # ResNet-1202's graph is deep.
            return keras.saving.load_model(path, compile=False)
    except Exception as error:  # zipfile, h5py, JSON and Keras errors alike.
        raise ValueError(f"{path} cannot be loaded ({type(error).__name__}: {error}). {fix}") from None


def save_model(model, path):
    """Saves a .keras file via a temporary name, so no half-written file remains."""
    path = pathlib.Path(path)
    tmp = pathlib.Path(history.staging_name(path, path.suffix))
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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


def remove_stale_staging(workdir):
    """Deletes the half-written files a killed process left in the run.

    A file counts as stale if its name holds ".tmp-<pid>" and no process
    with that pid runs (zoo.evaluate, which writes into the workdir without
    the lock, is such a live process). Call it holding the workdir's lock.

    Returns:
        The paths removed.
    """
    removed = []
    workdir = pathlib.Path(workdir)
    for folder in (workdir, workdir / CHECKPOINTS):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = history.STAGING.search(path.name)
            if match and path.is_file() and not _alive(int(match.group(1))):
                path.unlink()
                removed.append(path)
    if removed:
        print(f"zoo: removed {len(removed)} half-written file(s) a killed run left: "
              f"{', '.join(p.name for p in removed)}")
    return removed


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Someone else's process.
        return True
    return True
