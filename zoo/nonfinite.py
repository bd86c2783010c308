"""Training that became NaN or infinite stops, and says so: the non-finite guard.

`StopOnNonFinite` is the callback every loop runs first. The one scan of a
model's weights is the library's `keras_resnet.serving.nonfinite_weights`
(what an export refuses), which `zoo.seeds` runs on each replica too.
"""

import math
import pathlib

import keras

from keras_resnet import serving
from zoo import run


class NonFiniteError(RuntimeError):
    """The loss or the weights of a training run became NaN or infinite."""


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
                f"({run.RESULTS} records a non-finite loss as null)."
            )
        bad = serving.nonfinite_weights(self.model)
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
        if run.checkpoint_weights(self.workdir).exists():
            kept = (f"{run.checkpoint_dir(self.workdir)} keeps the last finite state. Rerunning the "
                    "same command resumes from there and will likely diverge again")
        else:
            kept = ("no checkpoint was written before (it diverged in its first epoch), so "
                    "rerunning the same command starts again from step 0 and will likely diverge "
                    "again")
        raise NonFiniteError(
            f"Training diverged at step {step}: {what}. The run stops unfinished (no "
            f"{run.RESULTS}, no {run.MODEL}); {kept}: check the images for NaN, or train in a new "
            "--workdir with a smaller learning rate (e.g. --set=lr=0.01)."
        )
