"""What several zoo test modules share: a two-layer model fitted with the zoo's callbacks, a tiny recipe.

A test helper module, not a test module: tests import it, it imports no test.
"""

import contextlib
import dataclasses
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from zoo import callbacks as zoo_callbacks
from zoo import train

from conftest import INSTALLED, REPO, keras_resnet_command, python_env  # noqa: F401 (REPO: for the tests)

# For the zoo commands and scripts the tests start: quiet TF, and the
# keras_resnet and zoo the tests import (conftest.python_env).
ENV = python_env(TF_CPP_MIN_LOG_LEVEL="3")


DIGITS8 = dataclasses.replace(
    train.resolve("cifar10_resnet20"), depth=8, batch_size=8, steps=4, epoch_steps=2, val_size=16
)


def tiny_model(lr=0.1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(lr), "sparse_categorical_crossentropy")
    return model


def tiny_data(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype("float32"), rng.integers(0, 2, n).astype("int32")


def fit(model, workdir, epochs, x=None, y=None, extra=()):
    if x is None:
        x, y = tiny_data()
    callbacks = zoo_callbacks.callbacks(workdir, lambda step: 0.1, tensorboard=False) + list(extra)
    return model.fit(x, y, batch_size=2, epochs=epochs, callbacks=callbacks, shuffle=False, verbose=0)


def train_command(workdir, *flags, recipe="cifar10_resnet20"):
    """The command line of `python -m zoo.train --recipe=RECIPE --workdir=WORKDIR FLAGS...`.

    Under CI, where the tests run the installed wheel, it is the installed
    `keras-resnet train ...` (the same program, conftest.keras_resnet_command).
    """
    flags = [f"--recipe={recipe}", f"--workdir={workdir}", *flags]
    if INSTALLED:
        return keras_resnet_command("train", *flags)
    return [sys.executable, "-m", "zoo.train", *flags]


@contextlib.contextmanager
def read_only(path):
    """Makes directory `path` read-only, as a read-only disk or a mode would.

    A normal user: chmod a-w. Root ignores modes, so root gets a read-only
    bind mount of `path` onto itself (needs CAP_SYS_ADMIN; skipped without).
    """
    path = pathlib.Path(path)
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode:
        pytest.skip("running as root without the right to mount: cannot make a read-only directory")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True, capture_output=True)


READ_ONLY = r"(Read-only file system|Permission denied)"
