"""Shared fixtures, the fast/slow split, and which keras_resnet the tests import.

`python -m pytest` runs the fast tests. `python -m pytest --run-slow` runs
everything, including tests marked `slow`, `realdata` or `multiprocess`;
that is what CI and the README's test command run.

**Which keras_resnet and zoo.** From a clone, the tests import the
checkout's packages, as `python -m pytest` puts the clone first on
`sys.path`, and the Python processes they start get the clone first on
`PYTHONPATH` (`python_env`). Under CI (`CI=true`, `INSTALLED`) they import
the installed wheel instead, so the suite tests what users get: here and in
every Python the tests start, the clone comes after site-packages. This
module, loaded before any test module, moves the clone to the end of
`sys.path` (so `benchmarks` still imports from it; it holds nothing of the
wheel's), sets `PYTHONSAFEPATH=1` (Python 3.11+: `python -m zoo.train` or
`python -c` with `cwd=REPO` no longer puts the clone first) and puts only
`tests/` on `PYTHONPATH` (for the scripts in tests/, whose own folder
PYTHONSAFEPATH leaves out). tests/test_package.py fails under CI unless
`keras_resnet` and `zoo` come from site-packages, here and in such a child.
"""

import concurrent.futures
import os
import pathlib
import sys
import tarfile

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR_ARCHIVE = SHARED_DATA / "cifar10_jpeg.tar.gz"
# The first 846 original (lossless) CIFAR-10 test images, and akamaster's
# published CIFAR-10 checkpoints (see ../shared/data/README.md).
CIFAR_ORIGINAL_HEAD = SHARED_DATA / "cifar10_original_test_head.npz"
AKAMASTER_DIR = SHARED_DATA / "akamaster_cifar10"
SLOW_MARKERS = ("slow", "realdata", "multiprocess")




def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


# Under CI the tests import the installed wheel, not the checkout (see above).
INSTALLED = in_ci()


def _is_repo(entry):
    return pathlib.Path(entry or ".").resolve() == REPO


def _checkout_after_site_packages():
    sys.path[:] = [entry for entry in sys.path if not _is_repo(entry)] + [str(REPO)]
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and not _is_repo(p)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), *paths])
    os.environ["PYTHONSAFEPATH"] = "1"


if INSTALLED:
    _checkout_after_site_packages()


def python_env(**variables):
    """The environment for a Python process the tests start (os.environ plus `variables`).

    Such a process imports the keras_resnet and zoo the tests import: from a
    clone, the checkout (first on PYTHONPATH); under CI, the installed wheel
    (os.environ already says so, see the module docstring).

    Args:
        **variables: environment variables to set or replace.

    Returns:
        A dict for `subprocess.run(..., env=...)`.
    """
    env = {**os.environ, **variables}
    if not INSTALLED:
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *rest])
    return env


def checkout_module_command(module, *args):
    """The command line of `python -m MODULE ARGS` for a module of the checkout only (benchmarks).

    Under CI the checkout comes after site-packages (it is not on the
    child's PYTHONPATH), so the module is run by runpy with the checkout
    appended to `sys.path`, as `python -m` would run it.
    """
    if not INSTALLED:
        return [sys.executable, "-m", module, *args]
    code = ("import runpy, sys; sys.path.append(sys.argv.pop(1)); module = sys.argv.pop(1); "
            "runpy.run_module(module, run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", code, str(REPO), module, *args]


def keras_resnet_command(*args):
    """The command line of `keras-resnet ARGS`: the installed console script under CI.

    From a clone, where nothing is installed, it is `python -m zoo.command
    ARGS`, which runs the same `zoo.command.main`.
    """
    if INSTALLED:
        return [str(pathlib.Path(sys.executable).with_name("keras-resnet")), *args]
    return [sys.executable, "-m", "zoo.command", *args]


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
