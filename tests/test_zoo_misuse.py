"""The zoo refuses bad input early and never loses or mislabels a run (issue 13).

Most tests here are unit-sized: workdir states are built by hand. One test
trains ResNet-8 for a few steps.
"""

import csv
import dataclasses
import json
import os
import re
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

import keras_resnet  # noqa: F401  (registers the layers model.keras uses)
from zoo import checkpoint
from zoo import datasets
from zoo import evaluate
from zoo import export
from zoo import files
from zoo import model as model_lib
from zoo import recipes
from zoo import run as zoo_run
from zoo import train
from zoo_helpers import DIGITS8, ENV, READ_ONLY, REPO, read_only


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


# The non-finite guard, the checkpoints, the lock, strict JSON and the history
# have their own modules: test_zoo_nonfinite, test_zoo_checkpoint,
# test_zoo_lock, test_zoo_files, test_zoo_history (moved there, issue 20).

# --- The workdir: never locked by a failed start -----------------------------


def test_failed_start_does_not_lock_the_workdir(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(ValueError, match="has no train/ directory"):
        train.train_and_evaluate(DIGITS8, tmp_path / "run", dataset=f"folder:{missing}")
    # A failure after config.json was written, before any checkpoint: the
    # corrected command is not "a different run".
    (tmp_path / "run").mkdir(exist_ok=True)
    files.write_json(tmp_path / "run" / "config.json", {"recipe": {}, "dataset": "folder:/x"})
    zoo_run.check_same_run(tmp_path / "run", zoo_run.make_config(DIGITS8, "digits"))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == "digits"


def test_one_folder_spelled_two_ways_is_one_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    spellings = ["folder:data", "folder:data/", "folder:./data//", f"folder:{tmp_path}/data", "folder:~/data"]
    assert {str(datasets.parse(s)) for s in spellings} == {f"folder:{tmp_path}/data"}
    workdir = tmp_path / "run"
    (workdir / "checkpoints").mkdir(parents=True)
    (workdir / "checkpoints" / "latest.weights.h5").write_bytes(b"progress")
    config = zoo_run.make_config(DIGITS8, "folder:data")
    files.write_json(workdir / "config.json", {**config, "dataset": "folder:data/"})  # as an older version wrote it
    zoo_run.check_same_run(workdir, config)
    with pytest.raises(ValueError, match=r"holds a different run \(differs in: dataset\)"):
        zoo_run.check_same_run(workdir, zoo_run.make_config(DIGITS8, "folder:other"))


def test_damaged_run_files_are_named(tmp_path):
    workdir = tmp_path / "run"
    (workdir / "checkpoints").mkdir(parents=True)
    (workdir / "checkpoints" / "latest.weights.h5").write_bytes(b"progress")
    (workdir / "config.json").write_text("")
    with pytest.raises(ValueError, match=r"config.json \(the run's config\) is empty"):
        zoo_run.check_same_run(workdir, zoo_run.make_config(DIGITS8, "digits"))


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"digits demo.*needs the scikit-learn package.*keras-resnet-zoo\[zoo\]"):
        datasets.check_source(datasets.parse("digits"))


def test_the_package_declares_what_tensorflow_datasets_needs():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ;]", r)[0].replace("-", "_").lower() for r in project["dependencies"]}
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
    files.write_json(workdir / "config.json", {
        "recipe": DIGITS8.to_dict(), "dataset": "digits", "data_dir": None, "mixed_precision": "float32"})
    files.write_json(workdir / "classes.json", [str(i) for i in range(10)])
    files.write_json(workdir / "eval_center.json", {"mode": "center", "accuracy": 0.9, "images": 359})
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
    from keras_resnet import atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    target = tmp_path / "saved"
    stale = tmp_path / f"{atomic.staging_prefix(target).rsplit('-', 2)[0]}-{dead}-abc123"
    (stale / "export" / "variables").mkdir(parents=True)  # what a kill -9 leaves
    alive = tmp_path / f"{atomic.staging_prefix(target)}xyz"  # an export in progress
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



def hand_made_finished_run(finished_run, workdir, steps=4):
    """A copy of `finished_run` with a checkpoint and a results.json: a finished run."""
    shutil.copytree(finished_run, workdir)
    (workdir / "checkpoints" / "latest.weights.h5").write_bytes(b"weights")
    files.write_json(workdir / "results.json", {
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
    assert str(datasets.parse("paper", recipe)) == "tfds:cifar10"
    assert str(datasets.parse("paper", recipes.get("imagenet_resnet50"))) == "tfds:imagenet2012"


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
    images = datasets.load_test(datasets.parse("digits"), 32, seed=DIGITS8.seed)[0][:40].astype(np.float32)
    saved = zoo_run.load_model_file(copy / "model.keras")
    restored = checkpoint.load_model(copy, DIGITS8)
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
