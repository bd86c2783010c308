"""Shared fixtures and the fast/slow split.

`python -m pytest` runs the fast tests. `python -m pytest --run-slow` runs
everything, including tests marked `slow`, `realdata` or `multiprocess`;
that is what CI and the README's test command run.
"""

import concurrent.futures
import os
import pathlib
import tarfile

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR_ARCHIVE = SHARED_DATA / "cifar10_jpeg.tar.gz"
# The first 846 original (lossless) CIFAR-10 test images, and akamaster's
# published CIFAR-10 checkpoints (see ../shared/data/README.md).
CIFAR_ORIGINAL_HEAD = SHARED_DATA / "cifar10_original_test_head.npz"
AKAMASTER_DIR = SHARED_DATA / "akamaster_cifar10"
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


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def deploy_runtime(module):
    """Imports a runtime of the `deploy` extra (onnxruntime, openvino, ...).

    Without it the test is skipped, naming the extra, except under CI
    (CI=true), where it fails: CI installs the extra, so these tests must run.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = f"needs {module} from the deploy extra: pip install '.[deploy]' ({error})"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


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


@pytest.fixture(scope="session")
def cifar_test_arrays(cifar_root):
    """The JPEG copy's 10,000 test images, decoded once per session.

    Returns:
        (images uint8 (10000, 32, 32, 3) RGB, labels int32 (10000,)), in
        class order, decoded with Pillow as the zoo decodes them.
    """
    from zoo import datasets

    test = cifar_root / "test"
    classes = sorted(p.name for p in test.iterdir() if p.is_dir())
    paths, labels = datasets.list_folder(test, classes)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        images = list(pool.map(lambda p: datasets.decode_file(p, 32), paths, chunksize=500))
    return np.stack(images), labels


def akamaster_checkpoint(depth):
    """The path of akamaster's published checkpoint for `depth`."""
    paths = sorted(AKAMASTER_DIR.glob(f"resnet{depth}-*.th"))
    if len(paths) != 1:
        raise FileNotFoundError(f"Expected one resnet{depth}-*.th in {AKAMASTER_DIR}, found {paths}.")
    return paths[0]
