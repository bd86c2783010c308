"""The examples run as users run them."""

import pathlib
import runpy
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_fit_evaluate_learns_the_digits(capsys):
    module = runpy.run_path(str(EXAMPLES / "fit_evaluate.py"))
    accuracy = module["main"](["--depth", "8", "--epochs", "3"])
    # 10 classes: chance is 0.1. Three epochs of ResNet-8 reach well above.
    assert accuracy > 0.6, accuracy
    assert "test accuracy" in capsys.readouterr().out
