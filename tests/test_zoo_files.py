"""zoo.files: every JSON file of a run is strict JSON, written whole, with normal permissions.

Moved from tests/test_zoo_misuse.py (issue 20).
"""

import json
import math
import os
import stat

import pytest

from zoo import files


def test_results_and_every_zoo_json_are_strict_json(tmp_path):
    path = tmp_path / "results.json"
    files.write_json(path, {"test_loss": math.nan, "x": [math.inf, 1.0], "y": {"z": -math.inf}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "test_loss": None, "x": [None, 1.0], "y": {"z": None}}


def test_files_the_zoo_writes_have_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        files.write_json(tmp_path / "a.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
