"""zoo.train --seeds: K seeds of one recipe in one compiled program (zoo/seeds.py)."""

import csv
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

from zoo import plot
from zoo import run as zoo_run
from zoo import seeds
from zoo import sweep
from zoo import train
from conftest import checkout_module_command
from zoo_helpers import ENV, REPO


@pytest.mark.parametrize("text, message", [
    ("0,1,x", r"comma-separated integers, e\.g\. 0,1,2\. Received '0,1,x'"),
    ("0,-1", r"must be >= 0\. Received '0,-1'"),
    ("0,1,0", r"names a seed twice.*Received '0,1,0'"),
    ("", r"comma-separated integers"),
])
def test_seeds_must_be_distinct_integers(text, message):
    with pytest.raises(ValueError, match=message):
        seeds.parse(text)
    assert seeds.parse("3,1,2") == (3, 1, 2)


@pytest.mark.parametrize("backend, recipe, devices, loop, message", [
    ("tensorflow", "cifar10_resnet20", ["cpu:0"], "auto",
     r"needs KERAS_BACKEND=jax; on KERAS_BACKEND=tensorflow, train one run per seed.*zoo\.sweep cifar10_resnet20:seed=0"),
    ("jax", "imagenet_resnet18", ["gpu:0"], "auto", r"imagenet_resnet18 is an imagenet recipe"),
    ("jax", "cifar10_resnet20", ["gpu:0", "gpu:1"], "auto",
     r"trains on one device; JAX sees 2 .*CUDA_VISIBLE_DEVICES=0"),
    ("jax", "cifar10_resnet20", ["gpu:0"], "fit", r"--loop=fit trains one model with Keras's fit"),
])
def test_where_the_replicas_cannot_train_in_one_program_it_says_what_to_use(backend, recipe, devices, loop, message):
    from zoo import recipes

    with pytest.raises(ValueError, match=message):
        seeds.check_possible(recipes.get(recipe), loop, backend, devices)
    seeds.check_possible(recipes.get("cifar10_resnet20"), "scan", "jax", ["gpu:0"])


def test_on_tensorflow_the_command_refuses_before_writing(tmp_path):
    recipe = train.resolve("cifar10_resnet20", steps=2, assignments=["batch_size=4", "val_size=4"])
    with pytest.raises(ValueError, match="needs KERAS_BACKEND=jax"):
        train.train_and_evaluate(recipe, tmp_path / "group", seeds=(0, 1))
    assert not (tmp_path / "group").exists()


def test_cli_refuses_seeds_with_a_seed_override(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zoo.train", "--recipe=cifar10_resnet20", f"--workdir={tmp_path / 'g'}",
         "--seeds=0,1", "--set=seed=3"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "--seeds sets every replica's seed; drop --set=seed=" in result.stderr
    assert not (tmp_path / "g").exists()


def make_group(root, seed_errors):
    """A finished-looking group: config.json, results.json and seed_k/ runs with histories."""
    from zoo import recipes

    recipe = recipes.get("cifar10_resnet20")
    root.mkdir()
    config = zoo_run.make_group_config(recipe, "digits", None, "float32")
    (root / "config.json").write_text(json.dumps(config))
    results = {}
    for seed, errors in seed_errors.items():
        run = zoo_run.replica_dir(root, seed)
        run.mkdir()
        run_config = zoo_run.make_config(recipes.override(recipe, [f"seed={seed}"]), "digits", None, "float32")
        (run / "config.json").write_text(json.dumps(run_config))
        with open(run / "history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, ["epoch", "step", "loss", "accuracy", "val_accuracy",
                                        "train_time_s", "epoch_time_s"])
            writer.writeheader()
            for epoch, (train_error, val_error) in enumerate(errors):
                writer.writerow({"epoch": epoch, "step": 400 * (epoch + 1), "loss": 1.0,
                                 "accuracy": 1 - train_error, "val_accuracy": 1 - val_error,
                                 "train_time_s": 1.0, "epoch_time_s": 1.0})
        results[seed] = {"test_accuracy": 1 - errors[-1][1], "steps": recipe.steps, "wall_time_s": 1.0}
        (run / "results.json").write_text(json.dumps({"recipe": recipe.name, **results[seed]}))
    summary = seeds.summarize(recipe, results, 3.0)
    (root / "results.json").write_text(json.dumps(summary))
    return recipe, summary


def test_summary_is_the_mean_and_sample_std_of_the_test_error(tmp_path):
    _, summary = make_group(tmp_path / "g", {0: [(0.5, 0.5), (0.2, 0.25)], 1: [(0.5, 0.5), (0.2, 0.35)],
                                             2: [(0.5, 0.5), (0.2, 0.30)]})
    assert summary["seeds"] == [0, 1, 2]
    assert summary["test_error_mean"] == pytest.approx(0.30)
    assert summary["test_error_std"] == pytest.approx(0.05)  # sample std (n - 1) of .25, .35, .30
    assert summary["per_seed"]["1"]["test_error"] == pytest.approx(0.35)
    assert "30.00 +- 5.00%" in seeds.describe(summary)
    one = seeds.summarize(train.resolve("cifar10_resnet20"), {7: {"test_accuracy": 0.9, "steps": 1, "wall_time_s": 1}}, 1)
    assert one["test_error_std"] is None


def test_plot_draws_a_group_as_its_mean_and_band(tmp_path):
    make_group(tmp_path / "g", {0: [(0.6, 0.5), (0.3, 0.2)], 1: [(0.4, 0.3), (0.1, 0.4)]})
    run = plot.load_run(tmp_path / "g")
    assert run["label"] == "cifar10_resnet20 (2 seeds)"
    assert run["steps"] == [400, 800]
    assert run["val_error"] == pytest.approx([40.0, 30.0])
    assert run["val_band"][0] == pytest.approx([30.0, 20.0]) and run["val_band"][1] == pytest.approx([50.0, 40.0])
    assert run["train_band"][0] == pytest.approx([40.0, 10.0])
    out = plot.plot([tmp_path / "g"], tmp_path / "fig6.png")
    assert pathlib.Path(out).stat().st_size > 0


def test_a_group_is_not_taken_for_one_run_and_its_seeds_are(tmp_path):
    make_group(tmp_path / "g", {0: [(0.5, 0.5)], 1: [(0.5, 0.4)]})
    with pytest.raises(ValueError, match=r"is a group of seeds \(zoo.train --seeds\), not one run.*seed_<k>"):
        zoo_run.load_recipe(tmp_path / "g")
    recipe, _ = zoo_run.load_recipe(tmp_path / "g" / "seed_1")
    assert recipe.seed == 1
    # A group directory that holds a single run's files is refused.
    single = tmp_path / "single"
    shutil.copytree(tmp_path / "g" / "seed_0", single)
    with pytest.raises(ValueError, match="holds a single run, not a group of seeds"):
        (single / "config.json").write_text(json.dumps({"recipe": {}}))
        zoo_run.check_same_group(single, zoo_run.make_group_config(recipe, "digits", None, "float32"))


def test_sweep_runs_each_spec_as_a_group(tmp_path):
    recipe, _ = make_group(tmp_path / "cifar10_resnet20", {0: [(0.5, 0.5)], 1: [(0.5, 0.4)]})
    assert zoo_run.is_finished(tmp_path / "cifar10_resnet20", "cifar10_resnet20", (), "digits", seeds=(0, 1))
    # Another set of seeds, or no --seeds at all, is not this finished group.
    assert not zoo_run.is_finished(tmp_path / "cifar10_resnet20", "cifar10_resnet20", (), "digits", seeds=(0, 1, 2))
    assert not zoo_run.is_finished(tmp_path / "cifar10_resnet20", "cifar10_resnet20", (), "digits")
    command = sweep.command("cifar10_resnet20", [], tmp_path / "x", ["--dataset=digits"], seeds=(0, 1))
    assert "--seeds=0,1" in command
    with pytest.raises(ValueError, match=r"sets seed, but --seeds gives every run its seeds"):
        sweep.sweep([sweep.parse_run("cifar10_resnet20:seed=3")], tmp_path / "root", 1, [], seeds=(0, 1))
    table = sweep.summary(tmp_path, ["cifar10_resnet20"])
    assert "(mean of 2 seeds, error std 7.07%)" in table


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.multiprocess
def test_replicas_equal_their_single_runs_and_a_killed_group_resumes(cifar_root, tmp_path):
    """tests/seeds_check.py under JAX on 30 real images per class and split."""
    small = tmp_path / "small"
    for split in ("train", "test"):
        for folder in sorted((cifar_root / split).iterdir()):
            (small / split / folder.name).mkdir(parents=True)
            for image in sorted(folder.iterdir())[:30]:
                shutil.copy(image, small / split / folder.name / image.name)
    env = {**ENV, "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": "", "XLA_FLAGS": ""}
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "seeds_check.py"), str(small), str(tmp_path / "runs")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "OK seeds" in result.stdout


@pytest.mark.slow
@pytest.mark.multiprocess
def test_seeds_benchmark_harness_runs_and_writes_json(tmp_path):
    out = tmp_path / "seeds.json"
    env = {**ENV, "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": "", "XLA_FLAGS": ""}
    result = subprocess.run(
        checkout_module_command("benchmarks.seeds", "--depths=20", "--replicas=1,2", "--steps=1",
                                "--repeats=1", "--batch=4", "--train-size=32", f"--json={out}"),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert [(r["depth"], r["replicas"], r["program"]) for r in rows] == [(20, 1, "step"), (20, 2, "step")]
    assert all(r["median_ms"] > 0 for r in rows)
    assert "| ResNet-20 | 2 |" in result.stdout
