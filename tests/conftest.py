"""Shared fixtures and the fast/slow split.

`python -m pytest` runs the fast tests. `python -m pytest --run-slow` runs
everything, including tests marked `slow`, `realdata` or `multiprocess`;
that is what CI and the README's test command run.
"""

import os
import pathlib
import tarfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
CIFAR_ARCHIVE = REPO.parent / "shared" / "data" / "cifar10_jpeg.tar.gz"
SLOW_MARKERS = ("slow", "realdata", "multiprocess")


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow, realdata or multiprocess",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow/realdata/multiprocess: pass --run-slow")
    for item in items:
        if any(marker in item.keywords for marker in SLOW_MARKERS):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory):
    """The real CIFAR-10 JPEG tree (train/<class>/*.jpg, test/<class>/*.jpg).

    Extracted once per session from ../shared/data. A missing archive is an
    error, not a skip: the real-data tests must not pass by not running.
    """
    archive = pathlib.Path(os.environ.get("CIFAR10_JPEG_ARCHIVE", CIFAR_ARCHIVE))
    if not archive.is_file():
        raise FileNotFoundError(
            f"Real-data tests need the CIFAR-10 JPEG archive at {archive} "
            "(set CIFAR10_JPEG_ARCHIVE to override)."
        )
    root = tmp_path_factory.mktemp("cifar10_jpeg")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    children = [p for p in root.iterdir() if p.is_dir()]
    # The archive may or may not have a top-level folder.
    if (root / "train").is_dir():
        return root
    if len(children) == 1 and (children[0] / "train").is_dir():
        return children[0]
    raise FileNotFoundError(f"No train/ folder in {archive}: found {children}")
