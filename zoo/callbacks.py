"""The callbacks every training loop passes to `fit`, in their order."""

import importlib
import pathlib

import keras

from zoo import checkpoint
from zoo import history
from zoo import nonfinite
from zoo import run


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

    `workdir` is the run's directory.
    """
    workdir = pathlib.Path(workdir)
    result = [
        nonfinite.StopOnNonFinite(workdir),
        history.HistoryCSV(workdir / run.HISTORY, schedule),
        checkpoint.Checkpoint(run.checkpoint_dir(workdir)),
    ]
    if tensorboard and _has_tensorboard():
        result.append(keras.callbacks.TensorBoard(str(workdir / run.LOGS)))
    return result


def _has_tensorboard():
    try:
        importlib.import_module("tensorboard")  # tf.summary needs it to write.
    except ImportError:
        print("zoo: the tensorboard package is not installed; no TensorBoard logs.")
        return False
    return True
