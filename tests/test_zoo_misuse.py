"""The zoo refuses bad input early and never loses or mislabels a run (issue 13).

Most tests here are unit-sized: a two-layer model stands in for a ResNet
where only the callbacks matter, and workdir states are built by hand. One
test trains ResNet-8 for a few steps.
"""

import contextlib
import csv
import dataclasses
import json
import math
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_resnet  # noqa: F401  (registers the layers model.keras uses)
from zoo import datasets
from zoo import evaluate
from zoo import export
from zoo import history
from zoo import model as model_lib
from zoo import recipes
from zoo import callbacks as zoo_callbacks
from zoo import checkpoint
from zoo import nonfinite
from zoo import run as zoo_run
from zoo import train

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
DIGITS8 = dataclasses.replace(
    train.resolve("cifar10_resnet20"), depth=8, batch_size=8, steps=4, epoch_steps=2, val_size=16
)


# --- Recipes: every number checked before any data is read -----------------

@pytest.mark.parametrize("assignment, message", [
    ("lr=-0.1", r"`lr` must be a finite number in \(0.0, inf\). Received lr=-0.1"),
    ("lr=nan", r"Received lr=nan"),
    ("lr=inf", r"Received lr=inf"),
    ("warmup_lr=0", r"`warmup_lr` must be a finite number"),
    ("momentum=1.5", r"`momentum` must be a finite number in \[0.0, 1.0\)"),
    ("weight_decay=-1e-4", r"`weight_decay` must be"),
    ("lighting_std=nan", r"`lighting_std` must be"),
    ("lr_decay_at=0.5,nan", r"`lr_decay_at` must be"),
    ("seed=-1", r"`seed` must be an int >= 0"),
    ("pad=-4", r"`pad` must be an int >= 0"),
    ("val_size=-1", r"`val_size` must be an int >= 0"),
    ("warmup_steps=-1", r"`warmup_steps` must be an int >= 0"),
    ("mean_examples=0", r"`mean_examples` must be an int >= 1"),
])
def test_bad_numbers_are_refused_when_the_recipe_is_made(assignment, message):
    with pytest.raises(ValueError, match=message):
        train.resolve("cifar10_resnet20", assignments=[assignment])


def test_recipe_takes_numpy_scalars_and_stores_python_numbers():
    recipe = dataclasses.replace(DIGITS8, steps=np.int64(8), epoch_steps=np.int32(4), lr=np.float32(0.5))
    assert (type(recipe.steps), type(recipe.epoch_steps), type(recipe.lr)) == (int, int, float)
    json.dumps(recipe.to_dict())  # numpy scalars would not serialise
    with pytest.raises(ValueError, match=r"`steps` must be an int >= 1. Received steps=2.5"):
        dataclasses.replace(DIGITS8, steps=2.5)


def test_bad_depth_is_refused_before_any_data_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "load_arrays", lambda *a, **k: pytest.fail("data was read"))
    with pytest.raises(ValueError, match=r"family='cifar' needs a depth 6n\+2.*Received depth=21"):
        train.train_and_evaluate(dataclasses.replace(DIGITS8, depth=21), tmp_path / "run")


def test_results_and_every_zoo_json_are_strict_json(tmp_path):
    path = tmp_path / "results.json"
    history.write_json(path, {"test_loss": math.nan, "x": [math.inf, 1.0], "y": {"z": -math.inf}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "test_loss": None, "x": [None, 1.0], "y": {"z": None}}


def test_files_the_zoo_writes_have_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        history.write_json(tmp_path / "a.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


# --- Non-finite loss or weights stop the run, loudly -------------------------

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


# --- Checkpoints: resume only from a consistent state ------------------------

def checkpoint_files(workdir):
    root = pathlib.Path(workdir) / "checkpoints"
    return {
        "weights": root / "latest.weights.h5", "metadata": root / "training_metadata.json",
        "bkp_weights": root / "latest.weights.h5.bkp", "bkp_metadata": root / "training_metadata.json.bkp",
    }


def interrupted_after(workdir, epochs):
    """Trains `epochs` epochs of 4 steps, then stops as a kill would."""
    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == epochs:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), workdir, 5, extra=[Stop()])
    return checkpoint_files(workdir)


def resume(workdir, epochs=5):
    model = tiny_model()
    history_ = fit(model, workdir, epochs)
    return int(model.optimizer.iterations.numpy()), len(history_.history["loss"])


def test_kill_between_the_weights_and_metadata_writes_falls_back(tmp_path, capsys):
    files = interrupted_after(tmp_path, 3)  # weights and metadata at epoch 3 (step 12)
    # The state a kill leaves between the two writes of epoch 3's checkpoint:
    # new weights (step 12) beside the old metadata (epoch 2).
    shutil.copy(files["bkp_metadata"], files["metadata"])
    assert json.loads(files["metadata"].read_text())["epoch"] == 2
    steps, epochs_run = resume(tmp_path)
    assert (steps, epochs_run) == (20, 3)  # was 24: one epoch too many
    assert "resumed from the backup checkpoint" in capsys.readouterr().out
    rows = history.read(tmp_path / "history.csv")
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16, 20]


@pytest.mark.parametrize("content", ["", "{\"epo", "[]", "{\"epoch\": -1}"])
def test_damaged_metadata_falls_back_to_the_backup(tmp_path, content):
    files = interrupted_after(tmp_path, 3)
    files["metadata"].write_text(content)
    assert resume(tmp_path) == (20, 3)


def test_truncated_weights_fall_back_to_the_backup(tmp_path):
    files = interrupted_after(tmp_path, 3)
    files["weights"].write_bytes(files["weights"].read_bytes()[:100])
    assert resume(tmp_path) == (20, 3)
    # The backup became the latest pair: the next save keeps it as a backup.
    assert json.loads(files["metadata"].read_text())["epoch"] == 5


def test_no_consistent_checkpoint_is_refused_naming_the_files(tmp_path):
    files = interrupted_after(tmp_path, 3)
    files["metadata"].write_text("")
    files["bkp_weights"].write_bytes(b"")
    with pytest.raises(ValueError, match=r"Cannot resume from .*checkpoints.*latest: .*training_metadata.json is not valid.*backup: .*latest.weights.h5.bkp cannot be loaded.*Delete .* to train this run from the start"):
        resume(tmp_path)


def test_a_kill_before_the_first_metadata_write_is_refused(tmp_path):
    files = interrupted_after(tmp_path, 1)
    files["metadata"].unlink()
    with pytest.raises(ValueError, match=r"training_metadata.json is missing"):
        resume(tmp_path)


def test_damaged_history_is_named(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,step,lr\n0,4,0.1\n1,oops,0.1\n")
    with pytest.raises(ValueError, match=r"history.csv \(line 3\) is not a readable training history.*delete it"):
        history.read(path)


# --- The workdir: locked while in use, never locked by a failed start --------

def test_second_process_on_a_workdir_is_refused(tmp_path):
    with zoo_run.exclusive(tmp_path / ".lock"):
        with pytest.raises(zoo_run.WorkdirBusy, match=rf"Another process \(pid {os.getpid()}\) is training in"):
            with zoo_run.exclusive(tmp_path / ".lock"):
                pass
    with zoo_run.exclusive(tmp_path / ".lock"):  # released on exit
        pass


@pytest.mark.multiprocess
def test_lock_is_released_when_its_process_is_killed(tmp_path):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from zoo import run as zoo_run\n"
         f"with zoo_run.exclusive({str(lock)!r}):\n    print('held', flush=True); time.sleep(60)"],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(zoo_run.WorkdirBusy, match=f"pid {holder.pid}"):
            with zoo_run.exclusive(lock):
                pass
    finally:
        holder.kill()
        holder.wait()
    with zoo_run.exclusive(lock):
        pass


def test_failed_start_does_not_lock_the_workdir(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(ValueError, match="has no train/ directory"):
        train.train_and_evaluate(DIGITS8, tmp_path / "run", dataset=f"folder:{missing}")
    # A failure after config.json was written, before any checkpoint: the
    # corrected command is not "a different run".
    (tmp_path / "run").mkdir(exist_ok=True)
    history.write_json(tmp_path / "run" / "config.json", {"recipe": {}, "dataset": "folder:/x"})
    train.check_same_run(tmp_path / "run", {"recipe": DIGITS8.to_dict(), "dataset": "digits"})
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == "digits"


def test_one_folder_spelled_two_ways_is_one_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    spellings = ["folder:data", "folder:data/", "folder:./data//", f"folder:{tmp_path}/data", "folder:~/data"]
    assert {datasets.canonical(s) for s in spellings} == {f"folder:{tmp_path}/data"}
    workdir = tmp_path / "run"
    (workdir / "checkpoints").mkdir(parents=True)
    (workdir / "checkpoints" / "latest.weights.h5").write_bytes(b"progress")
    config = {"recipe": DIGITS8.to_dict(), "dataset": "folder:data/"}
    history.write_json(workdir / "config.json", config)  # as an older version wrote it
    train.check_same_run(workdir, {**config, "dataset": datasets.canonical("folder:data")})
    with pytest.raises(ValueError, match=r"holds a different run \(differs in: dataset\)"):
        train.check_same_run(workdir, {**config, "dataset": datasets.canonical("folder:other")})


def test_damaged_run_files_are_named(tmp_path):
    workdir = tmp_path / "run"
    (workdir / "checkpoints").mkdir(parents=True)
    (workdir / "checkpoints" / "latest.weights.h5").write_bytes(b"progress")
    (workdir / "config.json").write_text("")
    with pytest.raises(ValueError, match=r"config.json \(the run's config\) is empty"):
        train.check_same_run(workdir, {"recipe": DIGITS8.to_dict(), "dataset": "digits"})


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"digits demo.*needs the scikit-learn package.*keras-resnet\[zoo\]"):
        datasets.check_source("digits")


def test_setup_declares_what_tensorflow_datasets_needs():
    import setuptools

    captured = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        exec(compile((REPO / "setup.py").read_text(), "setup.py", "exec"), {"__file__": str(REPO / "setup.py")})
    finally:
        setuptools.setup = original
    names = {re.split(r"[<>=\[ ;]", r)[0].replace("-", "_").lower() for r in captured["install_requires"]}
    assert "importlib_resources" in names


@pytest.mark.slow
@pytest.mark.multiprocess
def test_argument_errors_lead_with_the_message(tmp_path):
    for module, args, message in [
        ("zoo.train", ["--recipe=cifar10_resnet20", f"--workdir={tmp_path}", "--set=lr=-1"], "`lr` must be"),
        ("zoo.train", ["--recipe=nope", f"--workdir={tmp_path}"], "Unknown recipe 'nope'"),
        ("zoo.evaluate", [f"--workdir={tmp_path}"], "has no config.json"),
        ("zoo.plot", [str(tmp_path)], "has no history.csv"),
    ]:
        result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=ENV,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr[-2000:]
        # TensorFlow's own start-up log lines aside, the message comes first.
        lines = [line for line in result.stderr.strip().splitlines()
                 if not re.match(r"(WARNING: All log messages|[IEW]\d{4} )", line)]
        assert lines[0].startswith("Error: ") and message in lines[0], result.stderr[:1000]
        assert len(lines) <= 2 and "flags:" not in result.stderr


# --- zoo.evaluate and zoo.export on a hand-made finished run -----------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A workdir as zoo.train leaves it (untrained weights: only files matter)."""
    workdir = tmp_path_factory.mktemp("run")
    model = model_lib.build(DIGITS8, np.zeros((32, 32, 3), np.float32))
    zoo_run.save_model(model, workdir / "model.keras")
    history.write_json(workdir / "config.json", {
        "recipe": DIGITS8.to_dict(), "dataset": "digits", "data_dir": None, "mixed_precision": "float32"})
    history.write_json(workdir / "classes.json", [str(i) for i in range(10)])
    history.write_json(workdir / "eval_center.json", {"mode": "center", "accuracy": 0.9, "images": 359})
    (workdir / "checkpoints").mkdir()
    return workdir


@pytest.mark.parametrize("limit", [0, -5, True, "3"])
def test_evaluate_refuses_a_bad_limit_and_keeps_its_results(finished_run, limit):
    before = (finished_run / "eval_center.json").read_text()
    with pytest.raises(ValueError, match=rf"`limit` must be None .* or an int >= 1. Received limit={re.escape(repr(limit))}"):
        evaluate.evaluate(finished_run, ["center"], limit=limit)
    assert (finished_run / "eval_center.json").read_text() == before


def test_evaluate_refuses_a_dataset_with_other_classes(finished_run, tmp_path):
    from PIL import Image

    for split, count in (("train", 10), ("test", 2)):  # enough for the run's val_size=16
        for name in ("cat", "dog"):
            (tmp_path / "pets" / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "pets" / split / name / f"{i}.png")
    before = (finished_run / "eval_center.json").read_text()
    with pytest.raises(ValueError, match=r"has other classes than the run was trained on \(2 vs 10 classes; only in the run: \['0', '1'"):
        evaluate.evaluate(finished_run, ["center"], dataset=f"folder:{tmp_path / 'pets'}")
    assert (finished_run / "eval_center.json").read_text() == before


def test_evaluate_runs_on_the_runs_own_classes(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    assert 0 <= evaluate.evaluate(copy, ["center"], limit=5)["center"] <= 1
    assert json.loads((copy / "eval_center.json").read_text())["images"] == 5


@pytest.mark.parametrize("output", ["run", "run/", "a/b", "a", "a/b/run/../../b"])
def test_export_refuses_an_output_that_contains_the_run(finished_run, tmp_path, output):
    # The run sits two folders down in tmp_path, so that even a bug here can
    # only replace folders of this test.
    workdir = tmp_path / "a" / "b" / "run"
    shutil.copytree(finished_run, workdir)
    target = str(workdir) + "/" if output == "run/" else workdir if output == "run" else tmp_path / output
    with pytest.raises(ValueError, match="contains the training run"):
        export.export_run(workdir, target, overwrite=True)
    assert (workdir / "model.keras").exists() and (workdir / "config.json").exists()


def test_export_refuses_an_output_that_is_part_of_the_run(finished_run):
    with pytest.raises(ValueError, match=r"is part of the training run .*\(checkpoints\)"):
        export.export_run(finished_run, finished_run / "checkpoints", overwrite=True)


def test_existing_tflite_is_refused_before_anything_is_written(finished_run, tmp_path):
    tflite = tmp_path / "m.tflite"
    tflite.write_bytes(b"keep me")
    with pytest.raises(FileExistsError) as info:
        export.export_run(finished_run, tmp_path / "saved", tflite=tflite)
    assert not (tmp_path / "saved").exists() and tflite.read_bytes() == b"keep me"
    assert re.search(r"--tflite=.*m.tflite' exists; pass --overwrite", str(info.value))


def test_export_paths_expand_tilde(finished_run, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    written = export.export_run(finished_run, "~/saved")
    assert written == [str(tmp_path / "saved")] and (tmp_path / "saved" / "saved_model.pb").exists()


def test_killed_export_leaves_no_staging_directory_behind(finished_run, tmp_path):
    from keras_resnet import serving

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    target = tmp_path / "saved"
    stale = tmp_path / f"{serving._staging_prefix(target).rsplit('-', 2)[0]}-{dead}-abc123"
    (stale / "export" / "variables").mkdir(parents=True)  # what a kill -9 leaves
    alive = tmp_path / f"{serving._staging_prefix(target)}xyz"  # an export in progress
    alive.mkdir()
    export.export_run(finished_run, target)
    assert not stale.exists() and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [alive.name]


def test_damaged_model_keras_is_named(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    data = (copy / "model.keras").read_bytes()
    (copy / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model.keras cannot be loaded: it is not a whole .keras archive"):
        export.export_run(copy, tmp_path / "out")
    with pytest.raises(ValueError, match=r"model.keras cannot be loaded"):
        evaluate.evaluate(copy, ["center"])


# --- One short real run: failed start, then the corrected command ------------

@pytest.mark.slow  # 4-8 s alone, 23 s in the loaded full suite
def test_corrected_command_trains_in_the_workdir_of_a_failed_start(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError, match="has no train/ directory"):
        train.train_and_evaluate(DIGITS8, "~/run", dataset="folder:~/typo", verbose=0)
    results = train.train_and_evaluate(DIGITS8, "~/run", verbose=0)
    workdir = tmp_path / "run"
    assert results["steps"] == 4 and json.loads((workdir / "results.json").read_text())["steps"] == 4
    for name in ("results.json", "config.json", "classes.json", "history.csv"):
        assert stat.S_IMODE((workdir / name).stat().st_mode) & 0o044 == 0o044, name
    with open(workdir / "history.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [2, 4]


# --- Issue 19: runs taking over runs, filesystem faults, leftovers -----------

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


def hand_made_finished_run(finished_run, workdir, steps=4):
    """A copy of `finished_run` with a checkpoint and a results.json: a finished run."""
    shutil.copytree(finished_run, workdir)
    (workdir / "checkpoints" / "latest.weights.h5").write_bytes(b"weights")
    history.write_json(workdir / "results.json", {
        "recipe": DIGITS8.name, "steps": steps, "test_accuracy": 0.5, "val_accuracy": 0.5})
    return workdir


def test_a_run_without_its_config_is_not_taken_over(finished_run, tmp_path):
    workdir = hand_made_finished_run(finished_run, tmp_path / "run")
    (workdir / "config.json").unlink()
    plain = dataclasses.replace(DIGITS8, name="cifar10_plain20", plain=True)
    # Was: plain-20 was handed ResNet-8's results (or resumed its checkpoint).
    with pytest.raises(ValueError, match=r"holds a run's checkpoints or results but no config.json"):
        train.train_and_evaluate(plain, workdir, verbose=0)
    assert not (workdir / "config.json").exists()


def test_a_dataset_with_another_class_count_is_refused(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (tmp_path / "pets" / split / name).mkdir(parents=True)
            for i in range(12):
                Image.fromarray(np.full((32, 32, 3), i, np.uint8)).save(tmp_path / "pets" / split / name / f"{i}.png")
    # Was: a 10-way head trained on 2 classes, exit 0.
    with pytest.raises(ValueError, match=r"has 2 classes, but recipe cifar10_resnet20 trains a 10-way .*--set=classes=2"):
        train.train_and_evaluate(DIGITS8, tmp_path / "run", dataset=f"folder:{tmp_path / 'pets'}", verbose=0)


def test_recipe_dataset_is_a_spec_and_paper_trains_on_it():
    with pytest.raises(ValueError, match=r"`dataset` .* must be a dataset spec.*Received dataset='/../escape'"):
        dataclasses.replace(DIGITS8, dataset="/../escape")
    recipe = train.resolve("cifar10_resnet20", "paper")
    assert recipe.steps == 64000  # the paper's schedule, not the digits demo's
    assert datasets.of_recipe("paper", recipe) == "tfds:cifar10"
    assert datasets.of_recipe("paper", recipes.get("imagenet_resnet50")) == "tfds:imagenet2012"


def test_a_workdir_that_is_a_file_is_named(tmp_path):
    (tmp_path / "run").write_text("not a directory")
    with pytest.raises(ValueError, match=rf"--workdir={tmp_path / 'run'} is a file, not a directory"):
        train.train_and_evaluate(DIGITS8, tmp_path / "run", verbose=0)
    with pytest.raises(ValueError, match=rf"--workdir={tmp_path / 'run' / 'sub'} is under {tmp_path / 'run'}, which is a file"):
        train.train_and_evaluate(DIGITS8, tmp_path / "run" / "sub", verbose=0)


def test_read_only_workdir_or_parent_is_one_sentence(tmp_path):
    (tmp_path / "ro" / "run").mkdir(parents=True)
    with read_only(tmp_path / "ro"):
        with pytest.raises(ValueError, match=rf"^Cannot create --workdir={tmp_path / 'ro' / 'new'}: {READ_ONLY}"):
            train.train_and_evaluate(DIGITS8, tmp_path / "ro" / "new", verbose=0)
        with pytest.raises(ValueError, match=rf"^Cannot train in {tmp_path / 'ro' / 'run'}: its lock file .*\.lock cannot be created \({READ_ONLY}\)"):
            train.train_and_evaluate(DIGITS8, tmp_path / "ro" / "run", verbose=0)


def test_evaluate_on_a_read_only_run_fails_before_evaluating(finished_run, tmp_path, monkeypatch):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    monkeypatch.setattr(evaluate, "test_images", lambda *a, **k: pytest.fail("evaluated first"))
    with read_only(copy):
        with pytest.raises(ValueError, match=rf"^Cannot write eval_center.json into {copy}: {READ_ONLY}"):
            evaluate.evaluate(copy, ["center"])


def test_plot_makes_a_missing_folder_and_names_a_read_only_one(tmp_path):
    from zoo import plot

    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,step,lr,loss,accuracy,train_time_s,epoch_time_s\n0,2,0.1,2.3,0.1,1,1\n")
    assert plot.plot([run], tmp_path / "new" / "fig6.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "ro").mkdir()
    with read_only(tmp_path / "ro"):
        with pytest.raises(ValueError, match=rf"^Cannot write fig6.png into {tmp_path / 'ro'}: {READ_ONLY}"):
            plot.plot([run], tmp_path / "ro" / "fig6.png")
        with pytest.raises(ValueError, match=rf"^Cannot create the folder of --out={tmp_path / 'ro' / 'sub'}: {READ_ONLY}"):
            plot.plot([run], tmp_path / "ro" / "sub" / "fig6.png")


def test_full_disk_during_a_checkpoint_is_one_sentence_and_keeps_the_last_one(tmp_path, monkeypatch):
    interrupted_after(tmp_path, 2)  # checkpoints of epochs 1 and 2
    files = checkpoint_files(tmp_path)
    before = {name: path.read_bytes() for name, path in files.items()}
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    # Was: ~20 h5py tracebacks from a half-written file, then SIGSEGV.
    with pytest.raises(RuntimeError, match=rf"^Cannot write the checkpoint of epoch 3 in {tmp_path / 'checkpoints'}: No space left on device \(it needs about .* MiB, 0.0 MiB are free\)\. The checkpoint before it is kept"):
        resume(tmp_path)
    assert {name: path.read_bytes() for name, path in files.items()} == before
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == sorted(
        [p.name for p in files.values()])


@pytest.mark.slow
@pytest.mark.multiprocess
def test_a_real_full_disk_ends_with_one_sentence_not_a_crash(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    # 2.5 MB: room for the first checkpoint of a ~1 MB model, not for the
    # second one beside its backup.
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2500k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs root with the right to mount a small tmpfs")
    try:
        script = (
            "import sys, keras, numpy as np\n"
            "from zoo import callbacks as zoo_callbacks, checkpoint\n"
            "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(40000), keras.layers.Dense(2)])\n"
            "model.compile(keras.optimizers.SGD(0.1), 'sparse_categorical_crossentropy')\n"
            "x, y = np.zeros((8, 3), 'float32'), np.zeros(8, 'int32')\n"
            "callbacks = zoo_callbacks.callbacks(sys.argv[1], lambda step: 0.1, tensorboard=False)\n"
            "try:\n"
            "    model.fit(x, y, batch_size=2, epochs=3, verbose=0, callbacks=callbacks)\n"
            "except checkpoint.CheckpointNotWritten as error:\n"
            "    sys.exit(f'Error: {error}')\n"
        )
        result = subprocess.run([sys.executable, "-c", script, str(disk)], cwd=REPO, env=ENV,
                                capture_output=True, text=True, timeout=120)
        # Was: ~20 h5py tracebacks, then SIGSEGV (returncode -11).
        assert result.returncode == 1, result.stderr[-3000:]
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        assert re.search(r"Error: Cannot write the checkpoint of epoch 2 in .*: No space left on device", result.stderr)
        # Epoch 1's checkpoint, whole, and nothing half-written beside it.
        assert sorted(p.name for p in (disk / "checkpoints").iterdir()) == [
            "latest.weights.h5", "training_metadata.json"]
        assert json.loads((disk / "checkpoints" / "training_metadata.json").read_text())["epoch"] == 1
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_stale_staging_files_are_removed_and_a_finished_run_leaves_no_lock(finished_run, tmp_path):
    workdir = hand_made_finished_run(finished_run, tmp_path / "run")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = [workdir / "checkpoints" / f"latest.tmp-{dead}.weights.h5",  # names older zoos wrote
             workdir / f".tmp-{dead}-model.keras",
             workdir / "checkpoints" / f"latest.weights.h5.bkp.tmp-{dead}",
             workdir / f".history.csv.tmp-{dead}-x1y2"]
    for path in stale:
        path.write_bytes(b"half-written")
    alive = workdir / f".eval_center.json.tmp-{os.getppid()}-abcd"  # e.g. a zoo.evaluate at work
    alive.write_bytes(b"in progress")
    results = train.train_and_evaluate(DIGITS8, workdir, verbose=0)
    assert results["steps"] == 4
    assert [p for p in stale if p.exists()] == [] and alive.exists()
    assert not (workdir / ".lock").exists()


def test_lock_file_is_deleted_by_its_holder_and_a_late_opener_retries(tmp_path):
    lock = tmp_path / ".lock"
    with zoo_run.exclusive(lock):
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not lock.exists()
    # A process that opened the old file just before its holder deleted it
    # must not lock that orphan: it takes the new file, and so sees a holder.
    import fcntl

    real_open = open
    orphan = []

    def open_then_lose_the_race(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if not orphan:
            orphan.append(handle)
            os.unlink(path)  # the holder deletes the file ...
            holder = real_open(path, "a+")  # ... and the next run creates and locks a new one
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            orphan.append(holder)
        return handle

    import builtins

    builtins_open = builtins.open
    builtins.open = open_then_lose_the_race
    try:
        with pytest.raises(zoo_run.WorkdirBusy):
            with zoo_run.exclusive(lock):
                pass
    finally:
        builtins.open = builtins_open
        for handle in orphan:
            handle.close()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real 4-step ResNet-8 run on the digits: (workdir, results)."""
    workdir = tmp_path_factory.mktemp("trained") / "run"
    return workdir, train.train_and_evaluate(DIGITS8, workdir, verbose=0)


@pytest.mark.slow  # trains the module's run: ~6 s
def test_checkpoint_is_evaluated_with_the_runs_own_mean(trained_run, tmp_path):
    from zoo import analysis

    workdir, results = trained_run
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    images = datasets.load_test("digits", 32, seed=DIGITS8.seed)[0][:40].astype(np.float32)
    saved = zoo_run.load_model_file(copy / "model.keras")
    restored = evaluate.load_model(copy, DIGITS8, checkpoint=True)
    # Was: the model rebuilt from the checkpoint subtracted a zero mean.
    np.testing.assert_allclose(restored(images), saved(images), atol=1e-5)
    accuracy = evaluate.evaluate(copy, ["center"], checkpoint=True)["center"]
    assert accuracy == pytest.approx(results["test_accuracy"], abs=1e-6)
    from_checkpoint = analysis.analyse([str(copy)], limit=40, checkpoint=True)[0]["std"]
    np.testing.assert_allclose(from_checkpoint, analysis.analyse([str(copy)], limit=40)[0]["std"], rtol=1e-4)
    # A checkpoint an older zoo wrote, without its mean: refused, naming the file.
    (copy / "checkpoints" / zoo_run.MEAN_FILE).unlink()
    with pytest.raises(ValueError, match=rf"{copy / 'checkpoints' / 'mean.npy'} does not exist: .*would subtract a wrong mean"):
        evaluate.evaluate(copy, ["center"], checkpoint=True)


@pytest.mark.slow  # uses the module's trained run
def test_a_finished_run_on_a_read_only_disk_reports_its_result(trained_run, tmp_path):
    workdir, results = trained_run
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    with read_only(copy):
        # Was: OSError creating the .lock, although nothing needs writing.
        assert train.train_and_evaluate(DIGITS8, copy, verbose=0) == results
        with pytest.raises(ValueError, match=r"holds a different run \(differs in: lr\)"):
            train.train_and_evaluate(dataclasses.replace(DIGITS8, lr=0.2), copy, verbose=0)


# --- Issue 19: what a newcomer sees on the command line ----------------------

@pytest.mark.multiprocess
def test_help_exits_zero_for_every_command():
    for module in ("zoo.train", "zoo.evaluate", "zoo.plot", "zoo.analysis", "zoo.sweep", "zoo.export"):
        result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, env=ENV,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (module, result.stderr[-2000:])
        assert "flags:" in result.stdout, module


@pytest.mark.slow
@pytest.mark.multiprocess
def test_a_cli_run_prints_tf_start_up_once_rounds_and_leaves_no_lock(tmp_path):
    command = [sys.executable, "-m", "zoo.train", "--recipe=cifar10_resnet20", f"--workdir={tmp_path}",
               "--set=depth=8", "--set=batch_size=8", "--set=val_size=16", "--steps=2"]
    result = subprocess.run(command, cwd=REPO, env={**ENV, "TF_CPP_MIN_LOG_LEVEL": "0"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # TF logs its start-up lines twice (two shared libraries), before it reads
    # TF_CPP_MIN_LOG_LEVEL; the zoo prints each once.
    startup = [line for line in result.stderr.splitlines() if re.match(r"[IWE]0000 ", line)
               or line.startswith("WARNING: All log messages before absl")]
    bodies = [re.sub(r"^[IWE]0000 [\d:.]+\s+\d+ ", "", line) for line in startup]
    assert bodies and len(bodies) == len(set(bodies)), startup
    assert "shuffle=True` was passed" not in result.stderr
    line = [line for line in result.stdout.splitlines() if "test_accuracy=" in line][-1]
    assert re.search(r" val_accuracy=\d\.\d{4} ", line), line
    assert not (tmp_path / ".lock").exists()
    quiet = subprocess.run([sys.executable, "-m", "zoo.plot", str(tmp_path), f"--out={tmp_path / 'f.png'}"],
                           cwd=REPO, env={**ENV, "TF_CPP_MIN_LOG_LEVEL": "1"}, capture_output=True, text=True,
                           timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert not re.search(r"^(I0000 |WARNING: All log messages)", quiet.stderr, re.M), quiet.stderr[:2000]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_export_does_not_flood_the_console(finished_run, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zoo.export", f"--workdir={finished_run}", f"--output={tmp_path / 'saved'}"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # Was: 2-3 kB INFO lines per signature about renamed input names.
    assert "contains input name(s)" not in result.stderr and len(result.stderr) < 1500, result.stderr[:3000]
