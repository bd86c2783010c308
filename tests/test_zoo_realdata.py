"""A short ResNet-20 run on the real CIFAR-10 (JPEG q75 copy) learns."""

import json
import subprocess

import pytest

from zoo_helpers import ENV, train_command

# Chance is 10%. 300 steps of batch 64 (19,200 images, under half an
# epoch; ~2 min on 2 cores) are enough to clear 30%, three times chance.
# Measured: 200 steps gave 34.2% (recorded in the report); with 10k test
# images the std of a measured accuracy is < 0.5%, so 30% cannot be
# reached by a net that has not learned.
BAR = 0.30


@pytest.mark.slow
@pytest.mark.realdata
def test_resnet20_learns_cifar10_well_above_chance(cifar_root, tmp_path):
    command = train_command(tmp_path, f"--dataset=folder:{cifar_root}", "--steps=300", "--set=batch_size=64")
    # From outside the clone: under CI, the installed `keras-resnet train` (zoo_helpers.train_command).
    result = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    print(results)
    assert results["steps"] == 300
    assert results["test_accuracy"] > BAR, results
    classes = json.loads((tmp_path / "classes.json").read_text())
    assert classes == sorted(classes) and classes[0] == "airplane"
