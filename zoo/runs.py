"""Deprecated: the names zoo.runs held, now each in the module that owns its idea.

    compile_model                                   zoo.model
    callbacks                                       zoo.callbacks
    NonFiniteError, StopOnNonFinite                 zoo.nonfinite
    Checkpoint, CheckpointNotWritten, resume        zoo.checkpoint
    the run's files, finish, the lock               zoo.run

Kept so that code written against zoo.runs keeps working; new code imports
the owners. Nothing in the zoo imports this module.
"""

from zoo.callbacks import callbacks
from zoo.checkpoint import Checkpoint, CheckpointNotWritten, resume
from zoo.model import compile_model
from zoo.nonfinite import NonFiniteError, StopOnNonFinite
from zoo.run import (
    CHECKPOINTS,
    MEAN_FILE,
    WorkdirBusy,
    WorkdirNotWritable,
    exclusive,
    finish,
    load_mean,
    load_model_file,
    remove_stale_staging,
    save_mean,
    save_model,
)

__all__ = [
    "CHECKPOINTS", "MEAN_FILE", "Checkpoint", "CheckpointNotWritten", "NonFiniteError",
    "StopOnNonFinite", "WorkdirBusy", "WorkdirNotWritable", "callbacks", "compile_model",
    "exclusive", "finish", "load_mean", "load_model_file", "remove_stale_staging", "resume",
    "save_mean", "save_model",
]
