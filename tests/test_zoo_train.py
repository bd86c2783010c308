"""End-to-end training: every recipe for 2 steps, the run's files, resume."""

import json
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_resnet  # noqa: F401  (registers the option-A layer for loading)
from zoo import datasets
from zoo import evaluate
from zoo import history
from zoo import plot
from zoo import recipes
from zoo import callbacks as zoo_callbacks
from zoo import train
from zoo_helpers import ENV, REPO, train_command

# Small enough for CPU CI; only sizes change, never the recipe's method.
# ImageNet recipes run at 32x32 crops (the smallest input the ImageNet nets
# take) from images resized to 36..40, on tfds mock data.
CIFAR_TINY = ["batch_size=4", "val_size=4"]
IMAGENET_TINY = [
    "batch_size=2",
    "val_size=2",
    "image_size=32",
    "scale_min=36",
    "scale_max=40",
    "eval_resize=36",
    "mean_examples=4",
]


# Graph tracing of the deepest nets costs minutes on 2 cores (8 for
# ResNet-1202), so they run their 2 steps eagerly: the same recipe, data,
# model, callbacks and files. The graph path is covered by every shallower
# recipe here and by the digits, resume and real-data tests.
DEEP = 101
# The deepest recipe has a test of its own (below).
DEEPEST = "cifar10_resnet1202"


def run_two_steps(name, workdir):
    recipe = recipes.get(name)
    cifar = recipe.family == recipes.CIFAR
    dataset = "tfds:cifar10" if cifar else "tfds:imagenet2012"
    tiny = CIFAR_TINY if cifar else IMAGENET_TINY
    # The linear scaling rule (lr proportional to the batch): at batch 2 the
    # ImageNet lr of 0.1 (meant for 256) overflowed BN's moving variance within
    # two steps for some data draws (ResNet-101: seeds 0 and 2 of 0..3).
    batch = int(next(a for a in tiny if a.startswith("batch_size=")).partition("=")[2])
    tiny = tiny + [f"lr={recipe.lr * batch / recipe.batch_size}"]
    if recipe.warmup_lr is not None:
        tiny = tiny + [f"warmup_lr={recipe.warmup_lr * batch / recipe.batch_size}"]
    if recipe.depth >= DEEP:
        tiny = tiny + ["run_eagerly=true"]
    recipe = train.resolve(name, dataset, steps=2, assignments=tiny)
    with tfds.testing.mock_data(num_examples=12):
        return train.train_and_evaluate(recipe, workdir, dataset, data_dir=str(workdir / "tfds"), verbose=0)


def check_run_files(workdir, steps):
    workdir = pathlib.Path(workdir)
    results = json.loads((workdir / "results.json").read_text())
    for key in ("test_accuracy", "val_accuracy", "train_accuracy", "steps", "wall_time_s", "images_per_s"):
        assert results[key] is not None, key
    assert results["steps"] == steps
    config = json.loads((workdir / "config.json").read_text())
    assert config["recipe"]["steps"] == steps
    assert (workdir / "checkpoints" / "latest.weights.h5").exists()
    assert (workdir / "model.keras").exists() and json.loads((workdir / "classes.json").read_text())
    rows = history.read(workdir / "history.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(len(rows)))
    assert int(rows[-1]["step"]) == steps
    return results, rows


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in recipes.names() if name != DEEPEST])
def test_every_recipe_runs_two_steps_on_mock_data(name, tmp_path):
    run_two_steps(name, tmp_path)
    check_run_files(tmp_path, 2)
    assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))


# ResNet-1202: its recipe's two steps, and what a user does with the run's model.keras. Building
# 1202 layers costs ~16 s, an eager step ~16 s, saving and loading ~15 s each on 2 cores, so the
# net is trained, saved and loaded once here (tests/test_deep.py used to do it all a second time).
CIFAR_1202_PARAMS = 19_421_274


@pytest.mark.slow
def test_the_resnet1202_recipe_runs_two_steps_and_its_model_loads_with_plain_keras(tmp_path):
    limit = sys.getrecursionlimit()
    run_two_steps(DEEPEST, tmp_path)
    assert sys.getrecursionlimit() == limit  # building, training and saving scope their headroom
    check_run_files(tmp_path, 2)
    assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))

    loaded = keras.saving.load_model(tmp_path / "model.keras")  # plain Keras API, default limit
    assert sys.getrecursionlimit() == limit
    net = next(layer for layer in loaded.layers if isinstance(layer, keras_resnet.DeepResNet))
    assert sum(int(np.prod(w.shape)) for w in net.trainable_weights) == CIFAR_1202_PARAMS
    assert sum(isinstance(layer, keras.layers.Add) for layer in net.layers) == 600
    # Two SGD steps left the deepest stage's weights finite.
    kernel = net.get_layer("conv4_block200_2_conv").get_weights()[0]
    assert np.all(np.isfinite(kernel))
    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    # An eager call: predict would trace the 1202 layers once more (about half a minute).
    probs = keras.ops.convert_to_numpy(loaded(pixels, training=False))
    assert probs.shape == (4, 10) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


TINY_DIGITS = ["batch_size=16", "epoch_steps=4", "steps=12", "val_size=64"]


def test_digits_run_writes_the_contract_and_model_keras_is_standalone(tmp_path):
    recipe = train.resolve("cifar10_resnet20", assignments=TINY_DIGITS)
    results = train.train_and_evaluate(recipe, tmp_path, verbose=0)
    _, rows = check_run_files(tmp_path, 12)
    assert len(rows) == 3
    # model.keras takes raw uint8 pixels: the mean subtraction is inside.
    splits = datasets.load_arrays(datasets.parse("digits"), recipe)
    model = keras.saving.load_model(tmp_path / "model.keras")
    probs = model.predict(splits.test[0], verbose=0)
    accuracy = np.mean(probs.argmax(-1) == splits.test[1])
    assert accuracy == pytest.approx(results["test_accuracy"], abs=1e-6)
    assert json.loads((tmp_path / "classes.json").read_text()) == [str(i) for i in range(10)]
    # zoo.evaluate: the centre view is what training reported.
    accuracies = evaluate.evaluate(tmp_path, ["center"])
    assert accuracies["center"] == pytest.approx(results["test_accuracy"], abs=1e-6)
    accuracies = evaluate.evaluate(tmp_path, ["ten_crop", "multiscale"], scales=[32, 40], limit=30)
    assert 0.0 <= accuracies["ten_crop"] <= 1.0 and 0.0 <= accuracies["multiscale"] <= 1.0
    assert json.loads((tmp_path / "eval_multiscale.json").read_text())["images"] == 30
    # zoo.plot: a Fig. 6-style PNG.
    png = plot.plot([tmp_path], tmp_path / "fig6.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no history.csv"):
        plot.plot([tmp_path / "nothing"], tmp_path / "x.png")
    # A finished run is not trained again.
    assert train.train_and_evaluate(recipe, tmp_path, verbose=0) == results
    # A different run in the same workdir is refused, naming what differs.
    with pytest.raises(ValueError, match=r"differs in: .*lr"):
        train.train_and_evaluate(recipes.override(recipe, ["lr=0.2"]), tmp_path, verbose=0)


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("simulated crash at the start of epoch 2")


@pytest.mark.slow
def test_interrupted_run_resumes_and_ends_at_the_same_step(tmp_path, monkeypatch):
    recipe = train.resolve("cifar10_resnet20", assignments=TINY_DIGITS)
    real_callbacks = zoo_callbacks.callbacks
    monkeypatch.setattr(zoo_callbacks, "callbacks", lambda *a, **k: real_callbacks(*a, **k) + [Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(recipe, tmp_path, verbose=0)
    before = history.read(tmp_path / "history.csv")
    assert [int(r["step"]) for r in before] == [4, 8]
    assert not (tmp_path / "results.json").exists()
    monkeypatch.setattr(zoo_callbacks, "callbacks", real_callbacks)
    train.train_and_evaluate(recipe, tmp_path, verbose=0)
    _, rows = check_run_files(tmp_path, 12)
    assert rows[:2] == before  # epochs 0-1 were not run again


@pytest.mark.slow
@pytest.mark.multiprocess
def test_kill_9_then_same_command_resumes(tmp_path):
    """kill -9 after the first checkpoint; rerunning the command finishes the run."""
    command = train_command(tmp_path, "--set=batch_size=16", "--set=epoch_steps=5", "--set=val_size=64",
                            "--steps=30")
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metadata = tmp_path / "checkpoints" / "training_metadata.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 2:
                break
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint after 240 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (tmp_path / "results.json").exists()
    done = json.loads(metadata.read_text())["epoch"]
    assert done < 6, "the run finished before it could be killed"
    result = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test_accuracy=" in result.stdout
    _, rows = check_run_files(tmp_path, 30)
    assert len(rows) == 6


@pytest.mark.slow  # three short runs: ~12 s
def test_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, monkeypatch, recwarn):
    """The TF path's batches follow from the global step (issue 19)."""
    import dataclasses

    recipe = dataclasses.replace(
        train.resolve("cifar10_resnet20"), depth=8, batch_size=8, steps=6, epoch_steps=2, val_size=16)
    uninterrupted = train.train_and_evaluate(recipe, tmp_path / "a", verbose=0)
    real_callbacks = zoo_callbacks.callbacks

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated crash after the first checkpoint")

    monkeypatch.setattr(zoo_callbacks, "callbacks", lambda *a, **k: real_callbacks(*a, **k) + [Crash()])
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(recipe, tmp_path / "b", verbose=0)
    monkeypatch.setattr(zoo_callbacks, "callbacks", real_callbacks)
    resumed = train.train_and_evaluate(recipe, tmp_path / "b", verbose=0)
    # Was: the data order (and the augmentation's seeds) started over on resume.
    a = keras.saving.load_model(tmp_path / "a" / "model.keras").get_weights()
    b = keras.saving.load_model(tmp_path / "b" / "model.keras").get_weights()
    assert max(float(np.abs(x - y).max()) for x, y in zip(a, b)) <= 1e-6
    assert resumed["test_loss"] == pytest.approx(uninterrupted["test_loss"], rel=1e-6)
    assert not [w for w in recwarn if "shuffle=True" in str(w.message)]
