"""The models build, run, train and save under JAX and PyTorch too.

Each backend runs in its own process: Keras fixes the backend at import.
"""

import pathlib
import subprocess
import sys

import pytest

from conftest import python_env

HERE = pathlib.Path(__file__).parent


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_smoke(backend):
    env = python_env(KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, str(HERE / "backend_smoke.py")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"OK {backend}" in result.stdout
