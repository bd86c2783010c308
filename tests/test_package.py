"""keras-resnet-zoo as a package (issue 27): what `import keras_resnet` loads, its public names,
the other `keras-resnet`, saved models in either import order, the version, the removed paths,
and, under CI, that the tests run the installed wheel."""

import ast
import fnmatch
import importlib
import importlib.metadata
import inspect
import json
import pathlib
import re
import subprocess
import sys
import sysconfig

import pytest

import keras_resnet
from keras_resnet import _startup
from keras_resnet import xla_cpu

from conftest import INSTALLED, REPO, TESTS, python_env
from helpers_package import fake_distribution, with_site

PACKAGE = pathlib.Path(keras_resnet.__file__).resolve().parent
# Imported by none of `import keras_resnet` (each costs from 0.1 s to seconds).
HEAVY = {"keras", "tensorflow", "jax", "jaxlib", "torch", "numpy", "h5py"}
# The library's paths removed in 1.0 (kept only for old callers), as CHANGELOG.md lists them.
REMOVED = {
    "keras_resnet.weights": [
        "architecture", "ALIASES", "PRESETS", "get_preset", "load_registry", "pin_hash", "preset_names",
        "presets_of", "register_preset", "file_sha256", "FILE_SUFFIXES", "describe_preprocessing",
        "file_preprocessing", "positional_keys"],
    "keras_resnet.models": [
        "check_graph_model", "feature_extractor", "stage_output_names", "recursion_headroom", "ResNetModel",
        "DeepResNet"],
    "keras_resnet.convert": [
        "TORCHVISION_BN_EPSILON", "assign", "fold_batch_norm", "keras_applications_arrays", "load_safetensors",
        "option_a_channel_orders", "torchvision_arrays"],
    "keras_resnet.preprocessing": ["MODES"],
    "keras_resnet.specs": ["PAPER_CIFAR_DEPTHS", "PAPER_IMAGENET_DEPTHS"],
}


def run_python(code, *args, env=None, cwd=None):
    """`python -c code args`, started as the tests start Python, from `cwd` (default: tests/)."""
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env or python_env(),
                          cwd=cwd or TESTS, capture_output=True, text=True, timeout=300)


# --- import keras_resnet: light, everything reachable --------------------------

def test_import_keras_resnet_imports_neither_keras_nor_tensorflow():
    code = ("import json, os, sys, keras_resnet; "
            "print(json.dumps([sorted({m.split('.')[0] for m in sys.modules}), os.environ.get('XLA_FLAGS')]))")
    result = run_python(code, env=python_env(KERAS_BACKEND="jax", XLA_FLAGS=""))
    assert result.returncode == 0, result.stderr[-2000:]
    loaded, flags = json.loads(result.stdout.splitlines()[-1])
    assert "keras_resnet" in loaded and not HEAVY & set(loaded), sorted(HEAVY & set(loaded))
    # keep_nan still ran: it read the backend from KERAS_BACKEND, not from Keras.
    try:
        jaxlib = tuple(int(part) for part in importlib.metadata.version("jaxlib").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        jaxlib = None
    checked = jaxlib is not None and xla_cpu.CHECKED_JAXLIB[0] <= jaxlib < xla_cpu.CHECKED_JAXLIB[1]
    assert (flags == xla_cpu.OPTION) if checked else not flags, (jaxlib, flags)


def test_a_submodule_is_an_attribute_after_a_bare_import():
    # The README's `keras_resnet.runtimes.load(...)` raised AttributeError.
    code = ("import sys, keras_resnet; assert 'keras_resnet.runtimes' not in sys.modules; "
            "print(keras_resnet.runtimes.load.__module__, 'runtimes' in dir(keras_resnet))")
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["keras_resnet.runtimes", "True"]


def test_every_public_name_and_module_is_reachable():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))
    assert set(dir(keras_resnet)) >= set(keras_resnet.__all__) | set(modules)
    for name in modules:
        assert getattr(keras_resnet, name) is importlib.import_module(f"keras_resnet.{name}"), name
    for name in keras_resnet.__all__:
        value = getattr(keras_resnet, name)
        assert value.__module__.startswith("keras_resnet."), name
        assert getattr(importlib.import_module(value.__module__), name) is value, name
    with pytest.raises(AttributeError, match="module 'keras_resnet' has no attribute 'no_such_name'"):
        keras_resnet.no_such_name  # noqa: B018
    with pytest.raises(ImportError, match="no_such_name"):
        from keras_resnet import no_such_name  # noqa: F401


def test_every_public_name_is_documented():
    undocumented = []
    for name in keras_resnet.__all__:
        value = getattr(keras_resnet, name)
        doc = inspect.getdoc(value) or ""
        if inspect.isclass(value):
            # A dataclass documents its fields (its constructor's arguments) as Attributes.
            wanted = ["Attributes:"] if hasattr(value, "__dataclass_fields__") else ["Args:"]
        else:
            wanted = (["Args:"] if inspect.signature(value).parameters else []) + ["Returns:"]
        missing = [section for section in wanted if section not in doc]
        if missing or len(doc.splitlines()[0]) < 10:
            undocumented.append((name, missing))
    assert undocumented == []


# --- the other keras-resnet --------------------------------------------------

def test_the_other_keras_resnet_is_refused_by_name(tmp_path):
    site = fake_distribution(tmp_path / "site", "keras-resnet", "0.2.0")
    result = run_python("import keras_resnet", env=with_site(site))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: keras_resnet: the distribution 'keras-resnet' 0.2.0 is installed"), last
    assert str(site) in last and "pip uninstall keras-resnet" in last, last
    assert "pip install --force-reinstall keras-resnet-zoo" in last, last


def test_only_that_name_is_refused(tmp_path):
    site = fake_distribution(tmp_path / "site", "keras-resnet-zoo", "9.9.9")
    fake_distribution(site, "keras-resnet-extras", "0.1")
    result = run_python("import keras_resnet; print('imported')", env=with_site(site))
    assert result.returncode == 0 and result.stdout.split() == ["imported"], result.stderr[-2000:]


def test_a_checkouts_own_old_build_folder_is_not_the_other_package(tmp_path):
    # `pip install .` in a pre-1.0 checkout left keras_resnet.egg-info beside keras_resnet/; with the
    # checkout on sys.path, importlib.metadata reports it as an installed keras-resnet 0.1.0.
    # The keras-resnet command (zoo/command.py) has its own copy of the check.
    from zoo import command

    checkout = PACKAGE.parent
    assert pathlib.Path(command.__file__).resolve().parent.parent == checkout
    for is_this_checkout in (_startup._is_this_checkout, command._is_this_checkout):
        assert is_this_checkout(checkout) == (checkout / "pyproject.toml").is_file()
    # The same leftover anywhere else (here: a folder with our pyproject.toml but not our package) is
    # another install, and refused.
    site = fake_distribution(tmp_path / "site", "keras-resnet", "0.1.0")
    (site / "pyproject.toml").write_text('[project]\nname = "keras-resnet-zoo"\n')
    assert not _startup._is_this_checkout(site) and not command._is_this_checkout(site)
    result = run_python("import keras_resnet", env=with_site(site))
    assert result.returncode == 1 and "'keras-resnet' 0.1.0 is installed" in result.stderr


# --- saved models load whichever of keras and keras_resnet comes first --------

LOAD = """
import json, sys
first, path, images, expected = sys.argv[1:5]
names = sys.argv[5:]
if first == "keras":
    import keras
    import keras_resnet
else:
    import keras_resnet
    import keras
import numpy as np
model = keras.saving.load_model(path, safe_mode=True)
outputs = model.predict(np.load(images), verbose=0)
print(json.dumps({
    "max_difference": float(np.abs(outputs - np.load(expected)).max()),
    "unregistered": [n for n in names if keras.saving.get_registered_object(n) is None],
}))
"""


def registered_names():
    """keras.saving names of every class the modules in `_startup.SERIALIZABLE_MODULES` register."""
    import keras

    names = []
    for module_name in _startup.SERIALIZABLE_MODULES:
        module = importlib.import_module(f"keras_resnet.{module_name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            registered = keras.saving.get_registered_name(value)
            if value.__module__ == module.__name__ and registered.startswith("keras_resnet>"):
                names.append(registered)
    return sorted(names)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A .keras file that holds ResNet-8's layers, the preprocessing and the stem's max-pool."""
    import keras
    import numpy as np

    folder = tmp_path_factory.mktemp("saved")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras_resnet.Preprocessing("torch")(inputs)
    x = keras_resnet.NaNPropagatingMaxPooling2D(pool_size=1)(x)
    outputs = keras_resnet.ResNet(8, input_shape=(8, 8, 3))(x)
    model = keras_resnet.ResNetModel(inputs, outputs)
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    model.save(folder / "m.keras")
    np.save(folder / "images.npy", images)
    np.save(folder / "expected.npy", model.predict(images, verbose=0))
    return folder


@pytest.mark.multiprocess
@pytest.mark.parametrize("first", ["keras", "keras_resnet"])
def test_saved_models_load_in_either_import_order(saved_model, first):
    names = registered_names()
    assert {"keras_resnet>ZeroPadShortcut", "keras_resnet>ResNetModel", "keras_resnet>Preprocessing"} <= set(names)
    result = run_python(LOAD, first, saved_model / "m.keras", saved_model / "images.npy",
                        saved_model / "expected.npy", *names, env=python_env(TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["unregistered"] == []
    # Same weights, same TensorFlow kernels: equal up to float32 rounding of
    # probabilities <= 1 (a few ulps of 6e-8).
    assert found["max_difference"] <= 1e-6, found


def test_every_registered_class_has_its_stand_in():
    registered = {}
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    "register_keras_serializable" in ast.unparse(decorator) for decorator in node.decorator_list):
                registered[node.name] = path.stem
    assert registered == _startup.SERIALIZABLE


def test_a_stand_in_loads_its_class_without_a_cycle():
    # Keras imported first by one of our modules (here keras_resnet.specs, through presets): the
    # registration runs inside that import, and must neither import our modules there (they would
    # meet the half-imported one) nor warn; a file saved with our layers then loads.
    code = (
        "import warnings, sys; warnings.simplefilter('error')\n"
        "import keras_resnet.presets\n"
        "import keras\n"
        "stand_in = keras.saving.get_custom_objects()['keras_resnet>ZeroPadShortcut']\n"
        "assert 'keras_resnet.layers' not in sys.modules, sorted(m for m in sys.modules if 'resnet' in m)\n"
        "layer = keras.layers.deserialize({'module': 'keras_resnet.layers', 'class_name': 'ZeroPadShortcut',"
        " 'config': {'filters': 8, 'strides': 2}, 'registered_name': 'keras_resnet>ZeroPadShortcut'})\n"
        "print(type(stand_in).__name__, type(layer).__module__, type(layer).__name__,"
        " keras.saving.get_custom_objects()['keras_resnet>ZeroPadShortcut'] is type(layer))\n"
    )
    result = run_python(code, env=python_env(TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-4:] == ["_Deferred", "keras_resnet.layers", "ZeroPadShortcut", "True"]


# --- version, removed paths, package data -------------------------------------

def test_the_version_is_written_once_and_released_in_the_changelog():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "keras_resnet.__version__"}
    version = keras_resnet.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d\d-\d\d$", (REPO / "CHANGELOG.md").read_text(), re.M)
    if INSTALLED:
        assert importlib.metadata.version("keras-resnet-zoo") == version


def test_removed_paths_are_gone_and_named_nowhere():
    for module_name, names in REMOVED.items():
        module = importlib.import_module(module_name)
        assert [name for name in names if hasattr(module, name)] == [], module_name
    paths = [f"{module}.{name}" for module, names in REMOVED.items() for name in names]
    pattern = re.compile("|".join(re.escape(path) + r"\b" for path in paths))
    sources = [REPO / "README.md", REPO / "BENCHMARKS.md", REPO / "RESULTS.md"] + [
        path for folder in ("keras_resnet", "zoo", "tests", "examples", "tools", "benchmarks")
        for path in sorted((REPO / folder).rglob("*.py"))]
    found = [(path.name, match.group()) for path in sources if path != pathlib.Path(__file__).resolve()
             for match in pattern.finditer(path.read_text())]
    assert found == []


def test_every_shipped_data_file_is_declared_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    data = sorted(p.relative_to(REPO / "keras_resnet").as_posix()
                  for p in (REPO / "keras_resnet").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))
    assert data and [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns["keras_resnet"])] == []
    if INSTALLED:  # and the wheel holds them
        assert [f for f in data if not (PACKAGE / f).is_file()] == []


# --- under CI: the installed wheel, here and in the processes the tests start --

def site_packages():
    paths = sysconfig.get_paths()
    return {pathlib.Path(paths[key]).resolve() for key in ("purelib", "platlib")}


def test_ci_tests_the_installed_wheel():
    import zoo

    code = "import keras_resnet, zoo; print(keras_resnet.__file__); print(zoo.__file__)"
    child = run_python(code, cwd=REPO)  # cwd=REPO: what `python -c` / `-m` would put first
    assert child.returncode == 0, child.stderr[-2000:]
    files = [keras_resnet.__file__, zoo.__file__, *child.stdout.split()]
    if INSTALLED:
        outside = [f for f in files if not any(pathlib.Path(f).resolve().is_relative_to(s) for s in site_packages())]
        assert outside == [], f"under CI=true the tests must import the installed wheel, not {outside}"
        distribution = importlib.metadata.distribution("keras-resnet-zoo")
        assert any(str(f).endswith("LICENSE") for f in distribution.files)
        scripts = {e.name: e.value for e in distribution.entry_points if e.group == "console_scripts"}
        assert scripts == {"keras-resnet": "zoo.command:main"}
    else:
        assert all(pathlib.Path(f).resolve().is_relative_to(REPO) for f in files), files
