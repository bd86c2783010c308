"""zoo.run: the run directory's files, whether a run is finished, loading what it holds."""

import json

import pytest

from zoo import files
from zoo import recipes
from zoo import run
from zoo import checkpoint

RECIPE = recipes.get("cifar10_resnet20")


def write_run(workdir, results=None, recipe=RECIPE, dataset="digits"):
    workdir.mkdir(parents=True, exist_ok=True)
    files.write_json(workdir / run.CONFIG, run.make_config(recipe, dataset, None, "float32"))
    if results is not None:
        files.write_json(workdir / run.RESULTS, results)
    return workdir


def test_the_layout_is_the_one_zoo_train_has_always_written(tmp_path):
    # Old runs must resume and load: these names are on disk in every workdir.
    assert (run.CONFIG, run.RESULTS, run.HISTORY, run.MODEL, run.CLASSES) == (
        "config.json", "results.json", "history.csv", "model.keras", "classes.json")
    assert run.checkpoint_weights(tmp_path) == tmp_path / "checkpoints" / "latest.weights.h5"
    assert run.lock_path(tmp_path) == tmp_path / ".lock"
    assert run.lock_path(tmp_path, 2) == tmp_path / ".lock-worker-2"
    assert run.worker_dir(tmp_path, 1) == tmp_path / ".workers" / "worker-1"
    assert run.replica_dir(tmp_path, 3) == tmp_path / "seed_3"
    assert run.eval_path(tmp_path, "ten_crop") == tmp_path / "eval_ten_crop.json"
    assert all(run.is_run_entry(name) for name in run.RUN_ENTRIES + ("eval_center.json",))
    assert not run.is_run_entry("savedmodel")


@pytest.mark.parametrize("load, missing", [
    (lambda d: run.load_recipe(d), "config.json"),
    (lambda d: run.load_run(d), "model.keras"),
    (lambda d: run.load_model(d), "model.keras"),
    (lambda d: checkpoint.load_model(d, RECIPE), "latest.weights.h5"),
    (lambda d: checkpoint.load_mean(d, (32, 32, 3)), "mean.npy"),
])
def test_a_missing_run_file_is_one_exception_type_naming_the_file(tmp_path, load, missing):
    with pytest.raises(run.MissingRunFile, match=missing) as info:
        load(tmp_path)
    # Both what zoo.export raised (FileNotFoundError) and zoo.evaluate (ValueError).
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_finished_is_decided_once_for_train_and_sweep(tmp_path):
    done = {"recipe": RECIPE.name, "steps": RECIPE.steps, "test_accuracy": 0.5}
    cases = {"finished": (done, True), "short": ({**done, "steps": RECIPE.steps - 1}, False),
             "not_a_dict": ([done], None)}
    for name, (results, finished) in cases.items():
        workdir = write_run(tmp_path / name, results)
        assert run.reaches(results, RECIPE.steps) is bool(finished)
        assert run.is_finished(workdir, RECIPE.name, dataset="digits") is bool(finished)
        if finished is None:  # zoo.train names the damaged file.
            with pytest.raises(ValueError, match="does not hold a zoo.train results dict"):
                run.finished_results(workdir, RECIPE)
        else:
            assert (run.finished_results(workdir, RECIPE) is not None) is finished
    assert not run.is_finished(write_run(tmp_path / "none"), RECIPE.name)


def test_recipe_and_classes_load_from_an_older_workdir(tmp_path):
    config = run.make_config(RECIPE, "digits", None, "float32")
    del config["recipe"]["run_eagerly"]  # not recorded by older zoos
    (tmp_path / run.CONFIG).write_text(json.dumps(config))
    recipe, loaded = run.load_recipe(tmp_path)
    assert recipe == RECIPE and loaded["dataset"] == "digits"
    assert run.read_classes(tmp_path) is None
    assert run.class_names(tmp_path, loaded) == [str(i) for i in range(10)]
    (tmp_path / run.CLASSES).write_text('{"cat": 0}')
    with pytest.raises(ValueError, match=r"classes.json must hold a JSON list of class names. Received \{'cat': 0\}"):
        run.read_classes(tmp_path)
    (tmp_path / run.CLASSES).write_text('["cat", 3]')
    assert run.read_classes(tmp_path) == ["cat", 3] and run.class_names(tmp_path, loaded) == ["cat", "3"]


def test_a_group_is_not_one_run(tmp_path):
    files.write_json(tmp_path / run.CONFIG, run.make_group_config(RECIPE, "digits", None, "float32"))
    assert run.is_group(tmp_path) and not run.is_group(tmp_path / "nothing")
    with pytest.raises(ValueError, match="is a group of seeds"):
        run.load_recipe(tmp_path)
    (tmp_path / run.CONFIG).write_text("[]")
    with pytest.raises(ValueError, match="does not hold a zoo.train config"):
        run.load_recipe(tmp_path)


def test_plot_without_a_history_is_the_same_missing_file_error(tmp_path):
    from zoo import plot

    with pytest.raises(run.MissingRunFile, match="has no history.csv with rows"):
        plot.load_run(tmp_path)
    (tmp_path / run.HISTORY).write_text("epoch,step,lr,train_time_s,epoch_time_s\n")
    with pytest.raises(ValueError, match="has no history.csv with rows") as info:
        plot.load_run(tmp_path)
    assert not isinstance(info.value, FileNotFoundError)
