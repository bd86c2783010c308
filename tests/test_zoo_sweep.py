"""zoo.sweep: several zoo.train runs, a few at a time, resumable."""

import json
import subprocess
import sys

import pytest

from zoo import run
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
    status = sweep.sweep(runs, tmp_path, parallel=1, extra_flags=[], deadline=1e-9)
    assert status == {"cifar10_resnet20": "not started", "cifar10_plain20": "not started"}
    assert not any(tmp_path.iterdir())


# --- Issue 19: runs taking over runs, and the sweep's own errors -------------

class FakeProcess:
    """Stands in for a zoo.train process: runs until killed."""

    started = []

    def __init__(self, command, **kwargs):
        self.command, self.killed = command, False
        FakeProcess.started.append(self)

    def poll(self):
        return -9 if self.killed else None

    def kill(self):
        self.killed = True

    def wait(self):
        return -9


@pytest.fixture
def fake_train(monkeypatch):
    FakeProcess.started = []
    monkeypatch.setattr(sweep.subprocess, "Popen", FakeProcess)
    return FakeProcess.started


def write_run(workdir, name, steps=4):
    """A finished run's config.json and results.json, as zoo.train writes them."""
    from zoo import recipes

    workdir.mkdir(parents=True)
    recipe = recipes.get(name)
    config = {"recipe": {**recipe.to_dict(), "steps": steps}, "dataset": "digits"}
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "results.json").write_text(json.dumps({"recipe": name, "steps": steps, "test_accuracy": 0.5}))


def test_a_run_of_another_recipe_is_not_finished_before(tmp_path, fake_train):
    write_run(tmp_path / "cifar10_plain20", "cifar10_resnet20")  # ResNet-20 under plain-20's name
    write_run(tmp_path / "cifar10_resnet20_seed1", "cifar10_resnet20")  # seed 0 under seed 1's name
    write_run(tmp_path / "cifar10_resnet20", "cifar10_resnet20")
    runs = [sweep.parse_run(s) for s in ("cifar10_plain20", "cifar10_resnet20:seed=1", "cifar10_resnet20")]
    status = sweep.sweep(runs, tmp_path, parallel=3, extra_flags=[], deadline=0.05, poll_s=0.01)
    # Was: all three "finished" (only the step counts were compared). The
    # first two go to zoo.train, which refuses a directory of another run.
    assert status == {"cifar10_plain20": "stopped", "cifar10_resnet20_seed1": "stopped",
                      "cifar10_resnet20": "finished"}
    assert [p.command[3] for p in fake_train] == ["--recipe=cifar10_plain20", "--recipe=cifar10_resnet20"]
    assert not run.is_finished(tmp_path / "cifar10_resnet20", "cifar10_resnet20", dataset="tfds:cifar10")


def test_the_same_run_twice_is_refused_before_anything_starts(tmp_path, fake_train):
    runs = [sweep.parse_run("cifar10_resnet20:seed=1"), sweep.parse_run("cifar10_resnet20:seed=1")]
    # Was: the second process handle replaced the first, which then trained on untracked.
    with pytest.raises(ValueError, match=r"Two RUNs train in .*cifar10_resnet20_seed1"):
        sweep.sweep(runs, tmp_path, parallel=2, extra_flags=[], deadline=0.5, poll_s=0.01)
    assert fake_train == []


def test_a_stopped_sweep_stops_its_runs(tmp_path, fake_train, monkeypatch):
    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep.time, "sleep", interrupt)
    runs = [sweep.parse_run("cifar10_resnet20"), sweep.parse_run("cifar10_plain20")]
    with pytest.raises(KeyboardInterrupt):
        sweep.sweep(runs, tmp_path, parallel=2, extra_flags=[])
    assert len(fake_train) == 2 and all(p.killed for p in fake_train)


@pytest.mark.parametrize("spec, message", [
    # Not a dataset spec: the recipe field refuses it (it took any string).
    ("cifar10_resnet20:dataset=/../../../escape", r"`dataset` .* must be a dataset spec"),
    ("cifar10_resnet20:shortcut=A,dataset=digits/../../x", r"`dataset` .* must be a dataset spec"),
    # A spec, but not a directory name.
    ("cifar10_resnet20:dataset=folder:/../../../escape",
     r"the value of 'dataset' becomes part of the run's directory name.*Received dataset='folder:/../../../escape'"),
])
def test_an_override_cannot_put_the_run_outside_the_root(spec, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse_run(spec)


def test_a_tuple_override_keeps_its_commas():
    name, overrides, dirname = sweep.parse_run("cifar10_resnet20:lr_decay_at=0.5,0.75,seed=2")
    assert overrides == ["lr_decay_at=0.5,0.75", "seed=2"]
    assert dirname == "cifar10_resnet20_lr_decay_at0.5,0.75_seed2"


@pytest.mark.parametrize("deadline", [-1, 0])
def test_a_deadline_that_is_not_positive_is_refused(tmp_path, deadline, fake_train):
    with pytest.raises(ValueError, match=r"--deadline must be a number of seconds > 0"):
        sweep.sweep([sweep.parse_run("cifar10_resnet20")], tmp_path, 1, [], deadline=deadline)


def test_summary_names_a_damaged_results_file(tmp_path):
    for name, text in [("null", "null"), ("cut", '{"test_acc'), ("partial", '{"steps": 4}'),
                       ("good", json.dumps({"test_accuracy": 0.91, "val_accuracy": 0.9012345,
                                            "steps": 4, "wall_time_s": 12.3, "images_per_s": 100.0}))]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(text)
    table = sweep.summary(tmp_path, ["null", "cut", "partial", "good", "missing"]).splitlines()
    assert f"| null | {tmp_path / 'null' / 'results.json'} is damaged" in table[2]
    assert f"| cut | {tmp_path / 'cut' / 'results.json'} is damaged" in table[3]
    assert table[4] == "| partial | - | - | 4 | - | - |"
    assert table[5] == "| good | 0.9100 | 0.9012 | 4 | 12 | 100 |"
    assert table[6] == "| missing | - | - | - | - | - |"


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
