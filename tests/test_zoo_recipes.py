"""Recipes: names, the paper's values, derived values, overrides and their errors."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest

from zoo import recipes
from zoo import train

CIFAR_NAMES = [f"cifar10_resnet{d}" for d in (20, 32, 44, 56, 110, 1202)] + [
    f"cifar10_plain{d}" for d in (20, 32, 44, 56, 110)
]
IMAGENET_NAMES = [f"imagenet_resnet{d}" for d in (18, 34, 50, 101, 152)] + [
    "imagenet_plain18",
    "imagenet_plain34",
    "imagenet_resnet34_a",
    "imagenet_resnet34_b",
    "imagenet_resnet34_c",
]


def test_every_paper_experiment_is_registered():
    assert sorted(CIFAR_NAMES + IMAGENET_NAMES) == recipes.names()


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_cifar_recipes_follow_sec_4_2(name):
    r = recipes.get(name)
    assert (r.batch_size, r.lr, r.momentum, r.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert r.steps == 64000 and r.lr_boundaries == (32000, 48000)
    assert (r.val_size, r.pad, r.flip, r.image_size, r.classes) == (5000, 4, True, 32, 10)
    deep = r.depth >= 110
    assert (r.warmup_lr, r.warmup_steps) == ((0.01, 400) if deep else (None, 0))
    assert r.shortcut is None  # the library's CIFAR default, option A
    assert r.plain == ("plain" in name)


@pytest.mark.parametrize("name", IMAGENET_NAMES)
def test_imagenet_recipes_follow_sec_3_4(name):
    r = recipes.get(name)
    assert (r.batch_size, r.lr, r.momentum, r.weight_decay) == (256, 0.1, 0.9, 1e-4)
    assert r.steps == 600000 and r.lr_boundaries == (150000, 300000, 450000)
    assert (r.scale_min, r.scale_max, r.image_size, r.classes) == (256, 480, 224, 1000)
    assert r.lighting_std == 0.1 and r.flip
    if name.endswith(("_a", "_b", "_c")):
        assert r.shortcut == name[-1].upper()
    elif r.plain:
        assert r.shortcut is None
    else:
        assert r.shortcut == ("A" if r.depth in (18, 34) else "B")


@pytest.mark.parametrize("name", CIFAR_NAMES + IMAGENET_NAMES)
def test_docstrings_state_departures_and_command(name):
    doc = recipes.describe(name)
    assert "Departures:" in doc
    assert f"python -m zoo.train --recipe={name} " in doc


def test_warmup_is_documented_as_a_departure():
    assert "fixed 400 steps" in recipes.describe("cifar10_resnet110")


def test_override_parses_types():
    r = recipes.override(
        recipes.get("cifar10_resnet20"),
        ["steps=800", "lr=0.05", "flip=false", "lr_decay_at=0.25,0.5", "warmup_lr=none"],
    )
    assert (r.steps, r.lr, r.flip, r.lr_decay_at, r.warmup_lr) == (800, 0.05, False, (0.25, 0.5), None)
    assert r.lr_boundaries == (200, 400)  # derived, not typed
    assert r.epochs == 2


def test_override_errors_list_what_is_valid():
    base = recipes.get("cifar10_resnet20")
    with pytest.raises(ValueError, match=r"Unknown recipe key 'lrate'.*Valid keys: .*batch_size"):
        recipes.override(base, ["lrate=0.1"])
    with pytest.raises(ValueError, match=r"'steps' takes a int. Received 'many'"):
        recipes.override(base, ["steps=many"])
    with pytest.raises(ValueError, match="key=value"):
        recipes.override(base, ["steps"])
    with pytest.raises(ValueError, match="multiple of `epoch_steps`"):
        recipes.override(base, ["steps=1000"])


def test_unknown_recipe_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown recipe 'resnet20'.*cifar10_resnet20"):
        recipes.get("resnet20")


def test_resolve_digits_demo_and_steps():
    demo = train.resolve("cifar10_resnet110")
    assert (demo.steps, demo.batch_size, demo.flip) == (train.DEMO_STEPS, 64, False)
    assert demo.warmup_steps == train.DEMO_STEPS // 5
    real = train.resolve("cifar10_resnet20", "tfds:cifar10")
    assert real == recipes.get("cifar10_resnet20")
    short = train.resolve("cifar10_resnet20", "tfds:cifar10", steps=1000, assignments=["seed=3"])
    assert (short.steps, short.epoch_steps, short.lr_boundaries, short.seed) == (1000, 200, (500, 750), 3)
    with pytest.raises(ValueError, match="--dataset"):
        train.resolve("cifar10_resnet20", "cifar10")


def test_cli_usage_error_lists_recipes(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zoo.train", "--recipe=nope", f"--workdir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=pathlib.Path(__file__).resolve().parents[1],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode != 0
    assert "Unknown recipe 'nope'" in result.stderr and "cifar10_resnet20" in result.stderr


def test_imagenet_resnet34_a_is_imagenet_resnet34_under_its_own_name():
    alias, original = recipes.get("imagenet_resnet34_a"), recipes.get("imagenet_resnet34")
    assert alias.name == "imagenet_resnet34_a"  # what its runs' config.json records
    assert dataclasses.replace(alias, name=original.name) == original
    assert "imagenet_resnet34 under another name" in recipes.describe("imagenet_resnet34_a")


def test_recipe_shortcuts_are_the_librarys():
    from keras_resnet import blocks

    assert recipes.SHORTCUTS == blocks.SHORTCUTS
    for shortcut in blocks.SHORTCUTS:
        assert recipes.Recipe(name="x", family="cifar", depth=20, shortcut=shortcut).shortcut == shortcut
    with pytest.raises(ValueError, match=r"`shortcut` must be None, 'A', 'B' or 'C'. Received shortcut='D'"):
        recipes.Recipe(name="x", family="cifar", depth=20, shortcut="D")


def test_importing_the_recipes_imports_no_keras():
    # Why recipes.SHORTCUTS restates the library's: the commands import Keras
    # (and TF) only after their flags are parsed.
    code = "import sys, zoo.recipes; print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]", result.stderr[-2000:]


@pytest.mark.parametrize("name", CIFAR_NAMES + IMAGENET_NAMES)
def test_from_dict_reads_back_what_to_dict_wrote(name):
    recipe = recipes.get(name)
    assert recipes.Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


def test_from_dict_reads_older_configs_and_refuses_strange_ones():
    config = recipes.get("cifar10_resnet20").to_dict()
    older = {k: v for k, v in config.items() if k not in ("run_eagerly", "dataset")}
    assert recipes.Recipe.from_dict(older) == recipes.get("cifar10_resnet20")
    with pytest.raises(ValueError, match=r"Unknown recipe keys \['colour'\]"):
        recipes.Recipe.from_dict({**config, "colour": "red"})
    with pytest.raises(ValueError, match="The recipe dict lacks depth"):
        recipes.Recipe.from_dict({k: v for k, v in config.items() if k != "depth"})
    with pytest.raises(ValueError, match=r"`lr` must be a finite number"):
        recipes.Recipe.from_dict({**config, "lr": "fast"})
    with pytest.raises(ValueError, match="A recipe dict is expected"):
        recipes.Recipe.from_dict(["cifar10_resnet20"])
