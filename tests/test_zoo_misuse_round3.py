"""The zoo's part of issue 29 ("hard to misuse, round three"): one test per cause.

Unit-sized where the cause allows (run directories built by hand); one
module-scoped 4-step ResNet-8 run on the digits serves the tests that need a
trained run, and a few tests start a zoo command as a user would.
"""

import json
import subprocess
import sys

import pytest

from zoo import recipes
from zoo import sweep


def write_run(workdir, name, steps=4):
    """A finished run's config.json and results.json, as zoo.train writes them."""
    workdir.mkdir(parents=True)
    config = {"recipe": {**recipes.get(name).to_dict(), "steps": steps}, "dataset": "digits"}
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "results.json").write_text(json.dumps({"recipe": name, "steps": steps, "test_accuracy": 0.5}))


class RefusedTrain:
    """Stands in for a zoo.train process that refuses its workdir: rc 2, its error in train.log."""

    def __init__(self, command, stdout=None, **kwargs):
        stdout.write("Error: cifar10_plain20 holds a different run (differs in: name, plain).\n")
        stdout.flush()

    def poll(self):
        return 2


def test_a_refused_sweep_run_does_not_show_the_other_runs_results(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep.subprocess, "Popen", RefusedTrain)
    write_run(tmp_path / "cifar10_plain20", "cifar10_resnet20")  # ResNet-20's run under plain-20's name
    runs = [sweep.parse_run("cifar10_plain20")]
    status = sweep.sweep(runs, tmp_path, 1, [], poll_s=0.01)
    assert status == {"cifar10_plain20": "failed (rc 2)"}
    row = sweep.summary(tmp_path, ["cifar10_plain20"], status).splitlines()[2]
    # Was: "| cifar10_plain20 | 0.5000 | - | 4 | - | - |", ResNet-20's accuracy under plain-20's name.
    assert "0.5000" not in row
    assert row.startswith("| cifar10_plain20 | failed (rc 2): cifar10_plain20 holds a different run"), row
    assert f"(see {tmp_path / 'cifar10_plain20' / 'train.log'})" in row


# --- zoo.evaluate --limit: a class-balanced sample, not the first N ----------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A workdir as zoo.train leaves it (untrained ResNet-8 weights: only files matter)."""
    import numpy as np

    from zoo import files
    from zoo import model as model_lib
    from zoo import run as zoo_run
    from zoo_helpers import DIGITS8

    workdir = tmp_path_factory.mktemp("run")
    zoo_run.save_model(model_lib.build(DIGITS8, np.zeros((32, 32, 3), np.float32)), workdir / "model.keras")
    files.write_json(workdir / "config.json", {
        "recipe": DIGITS8.to_dict(), "dataset": "digits", "data_dir": None, "mixed_precision": "float32"})
    files.write_json(workdir / "classes.json", [str(i) for i in range(10)])
    (workdir / "checkpoints").mkdir()
    return workdir


def image_folder(root, train_per_class, test_per_class, classes=10):
    """root/train/<c>/*.png and root/test/<c>/*.png, classes named 0..9 as the digits' are."""
    import numpy as np
    from PIL import Image

    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for c in range(classes):
            (root / split / str(c)).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(np.full((32, 32, 3), 10 * c + i, np.uint8)).save(root / split / str(c) / f"{i}.png")
    return root


def test_evaluate_limit_draws_a_class_balanced_sample_and_says_so(finished_run, tmp_path, capsys):
    import shutil

    from zoo import evaluate

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    data = image_folder(tmp_path / "data", train_per_class=2, test_per_class=5)  # stored class by class
    evaluate.evaluate(run, ["center"], dataset=f"folder:{data}", limit=10)
    record = json.loads((run / "eval_center.json").read_text())
    # Was: the first 10 files, five of class 0 and five of class 1 (and nothing said).
    assert record["images"] == 10
    assert record["sample"]["per_class"] == {str(c): 1 for c in range(10)}
    assert record["sample"]["seed"] == 0
    assert ("--limit=10: a class-balanced sample of 10 test images (1 from each of the 10 classes, seed 0)"
            in capsys.readouterr().out)


def test_balanced_sample_is_seeded_and_spreads_the_remainder():
    import numpy as np

    from zoo import datasets

    labels = np.repeat(np.arange(4), [50, 50, 50, 2])  # class 3 has only two images
    sample = datasets.balanced_sample(labels, 11, seed=0)
    counts = np.bincount(labels[sample], minlength=4)
    assert sorted(counts[:3]) == [3, 3, 3] and counts[3] == 2
    assert np.array_equal(sample, datasets.balanced_sample(labels, 11, seed=0))
    assert not np.array_equal(sample, datasets.balanced_sample(labels, 11, seed=1))
    assert len(datasets.balanced_sample(labels, 1000)) == len(labels)


# --- One trained run: --strategy=mirrored on a CPU host, 4 steps -------------

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real 4-step ResNet-8 run on the digits under --strategy=mirrored: (workdir, results, stdout, warnings)."""
    import contextlib
    import io
    import warnings

    from zoo import train
    from zoo_helpers import DIGITS8

    workdir = tmp_path_factory.mktemp("trained") / "run"
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        results = train.train_and_evaluate(DIGITS8, workdir, strategy="mirrored", verbose=0)
    return workdir, results, out.getvalue(), [str(w.message) for w in caught]


@pytest.mark.slow  # trains the module's run: ~6 s alone
def test_a_tensorflow_run_says_how_many_replicas_train(trained_run):
    import re

    import tensorflow as tf

    _, _, out, _ = trained_run
    # Was: nothing; --strategy=mirrored on a CPU host trained on one replica without a word.
    if tf.config.list_logical_devices("GPU"):
        assert re.search(r"^zoo: tf.distribute.MirroredStrategy, \d+ replicas? \(", out, re.M), out
    else:
        assert "zoo: tf.distribute.MirroredStrategy, 1 replica (CPU:0): MirroredStrategy found one device." in out


@pytest.mark.slow  # uses the module's trained run
def test_a_tensorflow_run_does_not_warn_that_its_model_cannot_be_serialized(trained_run):
    _, _, _, caught = trained_run
    # Was: Keras's 20-line "Model failed to serialize as JSON ... WeightMean ... get_config()".
    assert not [w for w in caught if "serialize" in w], caught


def test_the_training_model_round_trips_through_its_config():
    import keras
    import numpy as np

    from zoo import model as model_lib
    from zoo_helpers import DIGITS8

    mean = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype("float32")
    train_model = model_lib.training_model(model_lib.build(DIGITS8, mean))
    copy = keras.models.model_from_json(train_model.to_json())  # what TensorBoard writes
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    # The mean is exact: the same float32 array, subtracted once.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy.get_layer(model_lib.MEAN_LAYER)(x)), x - mean)
    assert [w.shape for w in copy.weights] == [w.shape for w in train_model.weights]


@pytest.mark.slow  # uses the module's trained run
def test_a_rerun_without_history_records_every_epoch_and_prints_its_figures(trained_run, tmp_path, capsys):
    import shutil

    from zoo import train
    from zoo_helpers import DIGITS8

    workdir, first, _, _ = trained_run
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    for name in ("results.json", "model.keras", "history.csv"):  # killed while finishing, history deleted
        (copy / name).unlink()
    results = train.train_and_evaluate(DIGITS8, copy, verbose=0)
    # Was: "epochs": 0, and zoo.train's last line raised TypeError on images_per_s=None.
    assert (results["epochs"], results["timed_epochs"], results["steps"]) == (2, 0, 4)
    assert results["images_per_s"] is None and results["test_accuracy"] == first["test_accuracy"]
    assert "history.csv holds 0 of the run's 2 epochs" in capsys.readouterr().out
    line = train.describe(DIGITS8, "digits", results)
    assert " val_accuracy=- steps=4 " in line and line.endswith(" images_per_s=-"), line


def test_a_directory_with_another_runs_history_but_no_config_is_refused(tmp_path):
    from zoo import train
    from zoo_helpers import DIGITS8

    other = tmp_path / "run"
    other.mkdir()
    history = ("epoch,step,lr,loss,accuracy,val_loss,val_accuracy,train_time_s,epoch_time_s\n"
               "0,400,0.1,1.9,0.31,1.7,0.38,20.5,21.0\n1,800,0.1,1.5,0.45,1.4,0.49,20.1,20.6\n")
    (other / "history.csv").write_text(history)
    # Was: taken for a fresh start, and the other run's history overwritten by this one's.
    with pytest.raises(ValueError, match=r"holds a run's history.csv but no config.json"):
        train.train_and_evaluate(DIGITS8, other, verbose=0)
    assert (other / "history.csv").read_text() == history and not (other / "config.json").exists()


# --- Misleading messages -----------------------------------------------------

def test_divergence_in_the_first_epoch_does_not_promise_a_checkpoint(tmp_path):
    import numpy as np

    from zoo import nonfinite
    from zoo_helpers import fit, tiny_data, tiny_model

    x, y = tiny_data()
    x[1] = np.nan
    with pytest.raises(nonfinite.NonFiniteError) as info:
        fit(tiny_model(), tmp_path, 2, x, y)
    # Was: "checkpoints/ keeps the last finite state", with no checkpoint there.
    assert "keeps the last finite state" not in str(info.value)
    assert "no checkpoint was written before (it diverged in its first epoch)" in str(info.value)
    assert not (tmp_path / "checkpoints" / "latest.weights.h5").exists()


@pytest.mark.parametrize("content, cause", [(b"garbage, not an array", "it is not a .npy file"),
                                            (b"", "it is empty")])
def test_a_damaged_mean_file_is_not_answered_with_numpys_pickle_advice(finished_run, tmp_path, content, cause):
    import shutil

    from zoo import evaluate

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "checkpoints" / "latest.weights.h5").write_bytes(b"weights")
    (run / "checkpoints" / "mean.npy").write_bytes(content)
    with pytest.raises(ValueError) as info:
        evaluate.evaluate(run, ["center"], checkpoint=True)
    # Was: "This file contains pickled (object) data. If you trust the file ... `allow_pickle=`".
    assert "pickle" not in str(info.value)
    assert f"mean.npy (the checkpoint's per-pixel mean) cannot be read: {cause}" in str(info.value)


def test_a_seed_numpy_cannot_take_is_refused_naming_it():
    from zoo import seeds
    from zoo import train

    # Was: "Seed must be between 0 and 2**32 - 1" from numpy, when training started.
    with pytest.raises(ValueError, match=r"`seed` must be an int in \[0, 4294967295\].*Received seed=4294967296\."):
        train.resolve("cifar10_resnet20", assignments=["seed=4294967296"])
    with pytest.raises(ValueError, match=r"--seeds must be <= 4294967295 .*Received '0,4294967296', which holds 4294967296\."):
        seeds.parse("0,4294967296")
    assert train.resolve("cifar10_resnet20", assignments=["seed=4294967295"]).seed == 2**32 - 1


def test_plot_names_the_file_it_wrote(tmp_path):
    from zoo import plot

    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,step,lr,loss,accuracy,train_time_s,epoch_time_s\n0,2,0.1,2.3,0.1,1,1\n")
    # Was: matplotlib wrote noext.png and zoo.plot printed "wrote noext".
    written = plot.plot([run], tmp_path / "noext")
    assert written == tmp_path / "noext.png" and written.read_bytes()[:4] == b"\x89PNG"
    assert plot.plot([run], tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match=r"--out=.*f\.v2 has the suffix '\.v2', which matplotlib cannot write.*\.png"):
        plot.plot([run], tmp_path / "f.v2")


# --- Start-up noise ----------------------------------------------------------

COMMAND_ARGS = {
    "train": ["--recipe=cifar10_resnet20", "--workdir=w"],
    "evaluate": ["--workdir=w", "--limit=30"],
    "export": ["--workdir=w", "--onnx=m.onnx"],
    "sweep": ["--root=r", "cifar10_resnet20"],
    "analysis": ["--workdir=w"],
    "plot": ["w", "--out=f.png"],
}


@pytest.mark.parametrize("command", sorted(COMMAND_ARGS))
def test_a_command_parses_its_flags_before_importing_keras(command):
    from zoo_helpers import ENV, REPO

    code = (f"import sys; from absl import flags; from zoo import {command} as c; c.define_flags(); "
            f"flags.FLAGS({['zoo.' + command] + COMMAND_ARGS[command]!r}); "
            "print([m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # Was: zoo.evaluate imported Keras and TensorFlow at import, before cli.run could catch TF's start-up lines.
    assert result.stdout.strip() == "[]", result.stdout


def test_the_cuinit_failure_of_a_host_without_a_gpu_driver_is_dropped(monkeypatch):
    from zoo import cli

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    no_driver = ("I0000 00:00:1796565507.217402    8610 cudart_stub.cc:31] Could not find cuda drivers on your "
                 "machine, GPU will not be used.\n")
    cuinit = ("E0000 00:00:1796565517.297912    8610 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
              "error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
    # Was: printed before the result on every CPU host with TensorFlow's CUDA build.
    assert cli._startup_lines(no_driver + cuinit) == ""
    assert cli._startup_lines(cuinit) == cuinit  # A driver that is there and fails: kept.


STARTUP = r"^(I0000 |W0000 |E0000 |WARNING: All log messages|To enable the following)"


@pytest.mark.slow
@pytest.mark.multiprocess
def test_evaluate_prints_no_start_up_lines_at_level_2(finished_run, tmp_path):
    import re
    import shutil

    from zoo_helpers import ENV, REPO

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    result = subprocess.run([sys.executable, "-m", "zoo.evaluate", f"--workdir={run}", "--limit=20"],
                            cwd=REPO, env={**ENV, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # Was: TF's start-up block twice (I0000 lines, which level 2 hides) and the cuInit error.
    assert not re.search(STARTUP, result.stderr, re.M), result.stderr[:3000]
    assert "center: accuracy=" in result.stdout


@pytest.mark.multiprocess
def test_under_jax_tensorflows_start_up_lines_are_caught_too():
    import re

    from zoo_helpers import ENV, REPO

    # What every JAX zoo.train does after cli.run's import_backend: seed
    # Keras, which imports TensorFlow (if installed) to seed it too.
    code = "from zoo import cli; cli.import_backend(); import keras; keras.utils.set_random_seed(0); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**ENV, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr[-3000:]
    # Was: TF's start-up block twice, after the caught import of Keras.
    assert not re.search(STARTUP, result.stderr, re.M), result.stderr[:3000]


# --- examples/transfer_learning.py -------------------------------------------

def _transfer_example():
    import importlib.util

    from zoo_helpers import REPO

    spec = importlib.util.spec_from_file_location("transfer_learning", REPO / "examples" / "transfer_learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_transfer_learning_without_weights_keeps_the_net_it_was_given():
    example = _transfer_example()
    # Was: (56, 224): a CIFAR ResNet-56 at ImageNet's size, without a word.
    assert example.defaults(None, 56) == (56, 32)
    assert example.defaults(None, 18) == (18, 224)
    assert example.defaults(None) == (50, 224)  # no depth: ResNet-50, which run() says
    assert example.defaults("cifar10") == (56, 32) and example.defaults("cifar10", 20) == (20, 32)


def test_transfer_learning_keeps_bn_statistics_because_bn_stays_frozen():
    import keras
    import numpy as np

    example = _transfer_example()
    keras.utils.set_random_seed(0)
    model, backbone = example.build(8, None, classes=2, image_size=8)
    bns = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    x = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    y = np.array([0, 1, 0, 1])

    def fit_once():
        before = [keras.ops.convert_to_numpy(bn.moving_mean).copy() for bn in bns]
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0, shuffle=False)
        return [float(np.abs(keras.ops.convert_to_numpy(bn.moving_mean) - b).max()) for bn, b in zip(bns, before)]

    backbone.trainable = False
    assert max(fit_once()) == 0.0  # the frozen backbone
    example.unfreeze_top(backbone, 1)
    assert max(fit_once()) == 0.0  # the top stage unfrozen, its BN layers not
    # What the docstring says of Keras 3.15: training=False alone does not
    # keep a trainable BN's statistics (keras-team/keras#20285).
    bns[0].trainable = True
    assert fit_once()[0] > 0


# --- Ctrl-C, and a finished group on a read-only disk ------------------------

def finished_group(root, recipe, seeds=(0, 1)):
    """A group of seeds as zoo.train --seeds leaves it when finished (no model files: not needed)."""
    import dataclasses

    from zoo import files
    from zoo import run as zoo_run
    from zoo import seeds as seeds_lib

    root.mkdir()
    files.write_json(root / "config.json", zoo_run.make_group_config(recipe, "digits", None, "float32"))
    results = {}
    for seed in seeds:
        replica = dataclasses.replace(recipe, seed=seed)
        workdir = root / f"seed_{seed}"
        (workdir / "checkpoints").mkdir(parents=True)
        (workdir / "checkpoints" / "latest.weights.h5").write_bytes(b"weights")
        files.write_json(workdir / "config.json", zoo_run.make_config(replica, "digits", None, "float32"))
        results[seed] = {"recipe": recipe.name, "steps": recipe.steps, "test_accuracy": 0.5 + seed / 10,
                         "wall_time_s": 3.0}
        files.write_json(workdir / "results.json", results[seed])
    summary = seeds_lib.summarize(recipe, results, 7.0, trained=seeds)
    files.write_json(root / "results.json", summary)
    return json.loads((root / "results.json").read_text())


def test_a_finished_group_on_a_read_only_disk_reports_its_result(tmp_path, monkeypatch):
    from zoo import seeds as seeds_lib
    from zoo import train
    from zoo_helpers import DIGITS8, READ_ONLY, read_only

    summary = finished_group(tmp_path / "group", DIGITS8)
    monkeypatch.setattr(seeds_lib, "check_possible", lambda *args: None)  # JAX's checks, not this cause's
    with read_only(tmp_path / "group"):
        # Was: "Cannot train in .../group: its lock file .../group/.lock cannot be created".
        assert train.train_and_evaluate(DIGITS8, tmp_path / "group", seeds=(0, 1), verbose=0) == summary
        with pytest.raises(ValueError, match=rf"Cannot create --workdir=.*seed_2: {READ_ONLY}"):
            train.train_and_evaluate(DIGITS8, tmp_path / "group", seeds=(0, 1, 2), verbose=0)
    finished_group(tmp_path / "unfinished", DIGITS8)
    (tmp_path / "unfinished" / "seed_1" / "results.json").unlink()
    with read_only(tmp_path / "unfinished"):
        with pytest.raises(ValueError, match=rf"Cannot train in .*seed_1: its lock file .* cannot be created \({READ_ONLY}\)"):
            train.train_and_evaluate(DIGITS8, tmp_path / "unfinished", seeds=(0, 1), verbose=0)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_ctrl_c_says_nothing_is_lost_in_one_line_and_exits_130(tmp_path):
    import queue
    import signal
    import threading
    import time

    from zoo_helpers import ENV, REPO, train_command

    command = train_command(tmp_path / "run", "--set=depth=8", "--set=batch_size=8", "--set=val_size=16",
                            "--steps=100000", "--set=epoch_steps=100")
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        # The strategy line, printed (flushed) just before fit starts.
        line = lines.get(timeout=180)
        assert line.startswith("zoo: "), line
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        err = process.communicate(timeout=120)[1]
    finally:
        process.kill()
    # Was: a 60-line KeyboardInterrupt traceback, exit 1.
    assert process.returncode == 130, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err[-3000:]
    assert lines[0].startswith("zoo.train: interrupted. Nothing is lost:"), lines
    assert not (tmp_path / "run" / ".lock").exists()
