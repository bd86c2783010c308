"""zoo.nonfinite: a non-finite loss or weight stops the run, loudly, and keeps the last finite state.

A two-layer model stands in for a ResNet where only the callbacks matter
(tests/zoo_helpers.py). Moved from tests/test_zoo_misuse.py (issue 20).
"""

import dataclasses
import json

import keras
import numpy as np
import pytest

from zoo import history
from zoo import callbacks as zoo_callbacks
from zoo import nonfinite
from zoo import train
from zoo_helpers import DIGITS8, fit, tiny_data, tiny_model


def test_nan_loss_stops_training_with_a_clear_error(tmp_path):
    x, y = tiny_data()
    fit(tiny_model(), tmp_path, 1, x, y)  # one good epoch: a checkpoint at step 4
    x[5] = np.nan
    model = tiny_model()
    with pytest.raises(nonfinite.NonFiniteError, match=r"Training diverged at step 7: the training loss is nan") as info:
        fit(model, tmp_path, 3, x, y)
    assert "keeps the last finite state" in str(info.value)
    # The bad epoch reached neither the history nor the checkpoint.
    assert json.loads((tmp_path / "checkpoints" / "training_metadata.json").read_text())["epoch"] == 1
    assert [int(r["step"]) for r in history.read(tmp_path / "history.csv")] == [4]


def test_non_finite_weights_stop_training(tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # runs after the guard's own check...
            pass

        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                kernel = self.model.layers[0].kernel
                kernel.assign(np.full(kernel.shape, np.inf, "float32"))

    # Inf weights with a zero input give a finite loss; only the weight
    # check at the epoch's end sees them.
    x = np.zeros((8, 3), "float32")
    with pytest.raises(nonfinite.NonFiniteError, match=r"weights \S*dense\w*/kernel hold NaN or infinite"):
        fit(tiny_model(), tmp_path, 2, x, np.zeros(8, "int32"), extra=[Poison()])
    assert not (tmp_path / "checkpoints" / "latest.weights.h5").exists()


def test_non_finite_validation_loss_warns_but_training_goes_on(tmp_path, capsys):
    # Finite training, NaN in inference mode: not divergence (tiny runs whose
    # BN moving statistics have barely moved overflow this way).
    x, y = tiny_data()
    model = tiny_model()
    callbacks = zoo_callbacks.callbacks(tmp_path, lambda step: 0.1, tensorboard=False)
    val = np.full((2, 3), np.nan, "float32"), np.zeros(2, "int32")
    model.fit(x, y, batch_size=2, epochs=2, validation_data=val, callbacks=callbacks, verbose=0)
    assert capsys.readouterr().out.count("zoo: warning: the validation loss after epoch") == 2
    assert int(model.optimizer.iterations.numpy()) == 8


def test_diverging_zoo_run_is_not_recorded_as_finished(tmp_path):
    recipe = dataclasses.replace(DIGITS8, lr=1e30, warmup_lr=None, warmup_steps=0)
    with pytest.raises(nonfinite.NonFiniteError, match="Training diverged at step"):
        train.train_and_evaluate(recipe, tmp_path, verbose=0)
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "model.keras").exists()
