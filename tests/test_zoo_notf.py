"""The CIFAR recipe under KERAS_BACKEND=jax in a Python without TensorFlow.

Needs a virtualenv without TF: NOTF_PYTHON (default ../venv-notf/bin/python),
made with
    python -m venv venv-notf
    venv-notf/bin/pip install keras==3.15.1 "jax[cpu]" numpy pillow absl-py h5py
A missing interpreter fails the test (it does not skip).
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTF_PYTHON = pathlib.Path(os.environ.get("NOTF_PYTHON", REPO.parent / "venv-notf" / "bin" / "python"))


def small_cifar(cifar_root, dest, train_per_class=8, test_per_class=2):
    """A few real CIFAR images per class, in the image-folder layout."""
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for folder in sorted((cifar_root / split).iterdir()):
            target = dest / split / folder.name
            target.mkdir(parents=True)
            for path in sorted(folder.iterdir())[:count]:
                shutil.copy(path, target / path.name)
    return dest


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.multiprocess
def test_cifar_recipe_runs_on_jax_without_tensorflow(cifar_root, tmp_path):
    if not NOTF_PYTHON.exists():
        pytest.fail(f"No TF-free interpreter at {NOTF_PYTHON}; see this module's docstring.")
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "PYTHONPATH": str(REPO),
        "KERAS_BACKEND": "jax",
        # Two host devices, so keras.distribution.DataParallel is exercised.
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    probe = subprocess.run([str(NOTF_PYTHON), "-c", "import tensorflow"], capture_output=True, env=env)
    assert probe.returncode != 0, "this interpreter has TensorFlow; the test needs one without"
    data = small_cifar(cifar_root, tmp_path / "cifar")
    workdir = tmp_path / "run"
    result = subprocess.run(
        [
            str(NOTF_PYTHON),
            "-m",
            "zoo.train",
            "--recipe=cifar10_resnet20",
            f"--workdir={workdir}",
            f"--dataset=folder:{data}",
            "--steps=2",
            "--set=batch_size=16",
            "--set=val_size=16",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DataParallel over 2 devices" in result.stdout
    results = json.loads((workdir / "results.json").read_text())
    assert results["steps"] == 2 and results["backend"] == "jax"
    assert (workdir / "model.keras").exists()
    classes = json.loads((workdir / "classes.json").read_text())
    assert classes[0] == "airplane" and len(classes) == 10
