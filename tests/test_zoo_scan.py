"""zoo.scan_loop (the JAX on-device loop) trains as Keras's fit does.

Runs tests/zoo_scan_check.py under KERAS_BACKEND=jax in its own process.
"""

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent


@pytest.mark.slow
@pytest.mark.multiprocess
def test_scan_loop_matches_fit_and_resumes():
    env = dict(os.environ, KERAS_BACKEND="jax", CUDA_VISIBLE_DEVICES="", XLA_FLAGS="")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, str(HERE / "zoo_scan_check.py")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "OK scan" in result.stdout
