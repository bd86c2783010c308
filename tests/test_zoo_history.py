"""zoo.history: history.csv, and the errors that name it.

Moved from tests/test_zoo_misuse.py (issue 20).
"""

import pytest

from zoo import history


def test_damaged_history_is_named(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,step,lr\n0,4,0.1\n1,oops,0.1\n")
    with pytest.raises(ValueError, match=r"history.csv \(line 3\) is not a readable training history.*delete it"):
        history.read(path)
