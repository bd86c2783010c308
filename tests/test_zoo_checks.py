"""The one "an integer, or nothing" of the zoo's argument checks: the library's `specs.integer`.

(It was zoo.checks.as_int, a copy; issue 30.)
"""

import dataclasses

import numpy as np
import pytest

from keras_resnet import specs
from zoo import calibration
from zoo import recipes
from zoo import sweep


@pytest.mark.parametrize("value, expected", [
    (3, 3), (0, 0), (-2, -2), (np.int64(7), 7), (np.uint8(5), 5),
    (True, None), (False, None), (3.0, None), ("3", None), (None, None), (np.float32(2), None),
])
def test_as_int(value, expected):
    got = specs.integer(value)
    assert got == expected and (got is None or type(got) is int)


def test_every_count_check_refuses_what_as_int_refuses():
    recipe = recipes.get("cifar10_resnet20")
    for bad in (True, 2.0, "2", 0):
        with pytest.raises(ValueError, match=r"calibration images must be an int >= 1 .*Received"):
            calibration.draw(recipe, {"dataset": "digits"}, count=bad)
        with pytest.raises(ValueError, match=r"--parallel must be an int >= 1. Received"):
            sweep.sweep([], "/nonexistent-root", bad, [])
        with pytest.raises(ValueError, match=r"`batch_size` must be an int >= 1. Received"):
            dataclasses.replace(recipe, batch_size=bad)
