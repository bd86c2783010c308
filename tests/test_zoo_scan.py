"""zoo.scan_loop (the JAX on-device loop) trains as Keras's fit does.

Runs tests/zoo_scan_check.py under KERAS_BACKEND=jax in its own process.
"""

import pathlib
import subprocess
import sys

import pytest

from conftest import python_env

HERE = pathlib.Path(__file__).parent


@pytest.mark.slow
@pytest.mark.multiprocess
def test_scan_loop_matches_fit_and_resumes():
    env = python_env(KERAS_BACKEND="jax", CUDA_VISIBLE_DEVICES="", XLA_FLAGS="")
    result = subprocess.run(
        [sys.executable, str(HERE / "zoo_scan_check.py")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "OK scan" in result.stdout


def test_loop_argument_errors(tmp_path):
    from zoo import fit_arrays
    from zoo import recipes
    from zoo import train

    recipe = train.resolve("cifar10_resnet20", steps=2, assignments=["batch_size=4", "val_size=4"])
    with pytest.raises(ValueError, match=r"`loop` must be one of \('auto', 'scan', 'fit'\). Received 'bogus'"):
        train.train_and_evaluate(recipe, tmp_path / "a", loop="bogus")
    # This suite runs on TensorFlow, where only fit trains.
    with pytest.raises(ValueError, match="--loop=scan needs KERAS_BACKEND=jax"):
        train.train_and_evaluate(recipe, tmp_path / "b", loop="scan")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(ValueError, match="one device and run_eagerly=False. Received backend='tensorflow', 2 devices"):
        fit_arrays.use_scan_loop("scan", recipes.get("cifar10_resnet20"), ["gpu:0", "gpu:1"])
    assert not fit_arrays.use_scan_loop("auto", recipe, ["cpu:0"])
    assert not fit_arrays.use_scan_loop("fit", recipe, ["gpu:0"])
