"""The CIFAR recipe under KERAS_BACKEND=jax in a Python without TensorFlow.

Needs an interpreter without TF. In order:
- $NOTF_PYTHON, if set (.ci/run makes one and sets it);
- ../venv-notf/bin/python, if it exists;
- else the test makes one itself, once, in the user's cache
  (~/.cache/keras-resnet/venv-notf-<versions>, or $XDG_CACHE_HOME), with
  the keras and jax versions of the interpreter running the tests:
      python -m venv DIR
      DIR/bin/pip install keras==<ours> "jax[cpu]==<ours>" numpy pillow absl-py h5py
  That takes a minute or two and needs a package index (PyPI, or a local
  mirror pip is configured for). If it cannot be made, the test is
  skipped with the reason, except under CI (CI=true), where it fails: CI
  must never pass by not running it.
"""

import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import python_env

REPO = pathlib.Path(__file__).resolve().parents[1]
SIBLING = REPO.parent / "venv-notf" / "bin" / "python"
PACKAGES = ("numpy", "pillow", "absl-py", "h5py")


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pinned_requirements():
    """keras and jax at the versions of this interpreter (the ones CI tested)."""
    import keras

    requirements = [f"keras=={keras.__version__}"]
    try:
        import jax

        requirements.append(f"jax[cpu]=={jax.__version__}")
    except ImportError:
        requirements.append("jax[cpu]")
    return requirements + list(PACKAGES)


def cached_venv(requirements):
    """Makes (once) and returns the python of a TF-free venv in the user's cache."""
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    key = hashlib.sha256(" ".join(requirements).encode()).hexdigest()[:12]
    root = cache / "keras-resnet" / f"venv-notf-{key}"
    python = root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f".venv-notf-{key}.lock"):
        if python.exists():
            return python
        # Built under a temporary name and renamed, so a killed build never
        # looks finished.
        staging = pathlib.Path(tempfile.mkdtemp(dir=root.parent, prefix=f".venv-notf-{key}-"))
        try:
            subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True,
                           capture_output=True, text=True, timeout=300)
            subprocess.run(
                [str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
                check=True, capture_output=True, text=True, timeout=900,
            )
            os.replace(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    # venv writes absolute paths into its scripts, but `bin/python` is a
    # link to the base interpreter and works after the rename.
    return python


@contextlib.contextmanager
def _locked(path):
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def notf_python():
    """The TF-free interpreter, made if need be; skips (or fails in CI) without one."""
    if os.environ.get("NOTF_PYTHON"):
        python = pathlib.Path(os.environ["NOTF_PYTHON"])
        if not python.exists():
            pytest.fail(f"NOTF_PYTHON={python} does not exist.")
        return python
    if SIBLING.exists():
        return SIBLING
    requirements = pinned_requirements()
    try:
        return cached_venv(requirements)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        output = getattr(error, "stderr", None) or str(error)
        reason = (
            "No TF-free interpreter: NOTF_PYTHON is unset, there is no ../venv-notf, and "
            f"making one with `pip install {' '.join(requirements)}` failed (no package "
            f"index?): {output.strip()[-600:]}"
        )
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


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
    python = notf_python()
    # The checkout (or, under CI, the wheel installed there without its
    # dependencies) on that interpreter. Two host devices, so
    # keras.distribution.DataParallel is exercised.
    env = python_env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    probe = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True, env=env)
    assert probe.returncode != 0, "this interpreter has TensorFlow; the test needs one without"
    data = small_cifar(cifar_root, tmp_path / "cifar")
    workdir = tmp_path / "run"
    result = subprocess.run(
        [
            str(python),
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
