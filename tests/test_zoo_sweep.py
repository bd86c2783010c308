"""zoo.sweep: several zoo.train runs, a few at a time, resumable."""

import json
import subprocess
import sys

import pytest

from zoo import sweep

from conftest import REPO


def test_parse_run():
    assert sweep.parse_run("cifar10_resnet20") == ("cifar10_resnet20", [], "cifar10_resnet20")
    assert sweep.parse_run("cifar10_resnet20:seed=1,epoch_steps=100") == (
        "cifar10_resnet20", ["seed=1", "epoch_steps=100"], "cifar10_resnet20_seed1_epoch_steps100")
    with pytest.raises(ValueError, match="Unknown recipe 'resnet20'"):
        sweep.parse_run("resnet20")
    with pytest.raises(ValueError, match="Unknown recipe key 'sede'"):
        sweep.parse_run("cifar10_resnet20:sede=1")
    with pytest.raises(ValueError, match="takes a int. Received 'x'|takes a int"):
        sweep.parse_run("cifar10_resnet20:seed=x")


def test_deadline_starts_nothing_after_it(tmp_path):
    runs = [sweep.parse_run("cifar10_resnet20"), sweep.parse_run("cifar10_plain20")]
    status = sweep.sweep(runs, tmp_path, parallel=1, extra_flags=[], deadline=-1)
    assert status == {"cifar10_resnet20": "not started", "cifar10_plain20": "not started"}
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_runs_at_once_then_skipped(tmp_path):
    tiny = "batch_size=8,val_size=8,epoch_steps=1"
    command = [sys.executable, "-m", "zoo.sweep", f"--root={tmp_path}", "--parallel=2", "--flag=steps=2",
               f"cifar10_resnet20:seed=0,{tiny}", f"cifar10_plain20:{tiny}"]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    dirs = ["cifar10_resnet20_seed0_batch_size8_val_size8_epoch_steps1",
            "cifar10_plain20_batch_size8_val_size8_epoch_steps1"]
    for name in dirs:
        assert json.loads((tmp_path / name / "results.json").read_text())["steps"] == 2
        assert "test_accuracy=" in (tmp_path / name / "train.log").read_text()
        assert f"| {name} |" in first.stdout
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.count("finished before") == 2
    bad = subprocess.run(command[:4] + ["cifar10_resnet20:seed=x"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert "Received 'x'" in bad.stderr.split("Error: ", 1)[1].splitlines()[0]  # the message first, no help
