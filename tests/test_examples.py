"""The examples run as users run them."""

import pathlib
import runpy
import pytest

from conftest import python_env

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_fit_evaluate_learns_the_digits(capsys):
    module = runpy.run_path(str(EXAMPLES / "fit_evaluate.py"))
    accuracy = module["main"](["--depth", "8", "--epochs", "3"])
    # 10 classes: chance is 0.1. Three epochs of ResNet-8 reach well above.
    assert accuracy > 0.6, accuracy
    assert "test accuracy" in capsys.readouterr().out


_OFFLINE = '''
import socket

def _offline(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (offline, for the test)")

socket.getaddrinfo = _offline
'''


@pytest.mark.multiprocess
def test_fit_evaluate_on_cifar10_offline_fails_fast_with_a_sentence(tmp_path):
    # tfds retries a failed download 10 times with backoff (minutes), then
    # raises requests' ConnectionError. A sitecustomize makes the subprocess
    # offline whatever the machine is.
    import os
    import subprocess
    import sys

    (tmp_path / "sitecustomize.py").write_text(_OFFLINE)
    env = python_env(TFDS_DATA_DIR=str(tmp_path / "tensorflow_datasets"), TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    try:
        done = subprocess.run([sys.executable, str(EXAMPLES / "fit_evaluate.py"), "--dataset", "cifar10"],
                              env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("fit_evaluate.py --dataset cifar10 still retrying offline after 120 s")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "CIFAR-10" in last and "www.cs.toronto.edu" in last and "--dataset digits" in last, last
