"""The documentation says what the code does: its examples run, its commands exist.

- Every Python block of the README, RESULTS.md, BENCHMARKS.md and docs/*.md runs: a page's blocks in
  order, in one namespace, in a fresh folder that holds `ship.png` and `cat.png` (the first ship and cat
  of CIFAR-10's original test set, from ../shared/data). A block whose first line is `# needs: download`
  or `# needs: GPU` is shown, not run. A ```` ```text title="Output" ```` block right after a Python block
  is what that block prints, compared as doctest compares (ELLIPSIS, NORMALIZE_WHITESPACE).
- Every command of a `bash` block exists, with the flags it passes: `keras-resnet COMMAND`, `python -m
  MODULE` and `python SCRIPT` are read from their source (absl `DEFINE_*` and argparse `add_argument`),
  `python -m pytest` from pytest's own parser, and `pip install ".[EXTRA]"` from pyproject.toml.
- The README, which is also the package index page: at most ~150 lines, the two commands first (those CI
  runs), only absolute links (into the published site, each to a page that exists), and its results
  table as recorded in the registry, RESULTS.md and the constructors' docstrings.
- "Where things live": each package docstring names every public module of the package.

docs/contributing.md ("The documentation") says this to writers.
"""

import ast
import contextlib
import doctest
import io
import pkgutil
import re
import shlex

import numpy as np
import pytest
from markdown_it import MarkdownIt

from conftest import CIFAR_ORIGINAL_HEAD, REPO, in_ci

DOCS = REPO / "docs"
PAGES = [REPO / "README.md", REPO / "RESULTS.md", REPO / "BENCHMARKS.md", *sorted(DOCS.glob("*.md"))]
SITE_URL = re.search(r"^site_url:\s*(\S+)", (REPO / "mkdocs.yml").read_text(), re.M)[1]
NEEDS = re.compile(r"#\s*needs:\s*(.*)")
NEEDS_KINDS = ("download", "GPU")
# Images the examples open, written from the original CIFAR-10 test images: {file: (class id, name)}.
IMAGES = {"ship.png": (8, "ship"), "cat.png": (3, "cat")}


def blocks(path):
    """The fenced code blocks of a Markdown file: [(language, title, first line number, code)]."""
    found = []
    for token in MarkdownIt("commonmark").parse(path.read_text()):
        if token.type == "fence":
            language, _, attributes = token.info.partition(" ")
            title = re.search(r'title="([^"]*)"', attributes)
            found.append((language, title and title[1], token.map[0] + 1, token.content))
    return found


def examples(path):
    """The Python examples of a page: [(line, code, expected output or None, needs or None)]."""
    found = []
    page = blocks(path)
    for i, (language, _, line, code) in enumerate(page):
        if language != "python":
            continue
        following = page[i + 1] if i + 1 < len(page) else None
        output = following[3] if following and following[0] == "text" and following[1] == "Output" else None
        first = code.lstrip().splitlines()[0] if code.strip() else ""
        needs = NEEDS.fullmatch(first.strip())
        found.append((line, code, output, needs and needs[1].strip()))
    return found


def test_the_pages_have_examples_and_known_markers():
    counted = {path.relative_to(REPO).as_posix(): examples(path) for path in PAGES}
    assert sum(map(len, counted.values())) >= 15, counted  # the parser finds them
    unknown = [(page, line, needs) for page, found in counted.items() for line, _, _, needs in found
               if needs is not None and needs not in NEEDS_KINDS]
    assert unknown == [], f"`# needs:` takes {NEEDS_KINDS}"
    outputs = [(path.name, line) for path in PAGES for (language, title, line, _) in blocks(path)
               if title == "Output" and language != "text"]
    assert outputs == [], "an Output block is ```text title=\"Output\""


@pytest.fixture
def image_folder(tmp_path, monkeypatch):
    """A fresh working folder holding the images the examples open (None when the data is missing)."""
    monkeypatch.chdir(tmp_path)
    if not CIFAR_ORIGINAL_HEAD.is_file():
        return None
    from PIL import Image

    data = np.load(CIFAR_ORIGINAL_HEAD)
    for name, (label, _) in IMAGES.items():
        first = int(np.flatnonzero(data["y"] == label)[0])
        Image.fromarray(data["x"][first]).save(tmp_path / name)
    return tmp_path


@contextlib.contextmanager
def global_state_restored():
    """The registry (register_preset) and Keras's dtype policy as they were, after a page's examples."""
    import keras

    from keras_resnet import registry

    saved = {table: {key: dict(value) for key, value in getattr(registry, table).items()}
             for table in ("PRESETS", "ALIASES")}
    policy = keras.config.dtype_policy()
    try:
        yield
    finally:
        for table, entries in saved.items():
            getattr(registry, table).clear()
            getattr(registry, table).update(entries)
        keras.config.set_dtype_policy(policy)


# Pages whose examples take more than ~20 s here: export.md converts to LiteRT twice and to OpenVINO
# (18-28 s on 2 shared cores).
SLOW_PAGES = ("docs/export.md",)


@pytest.mark.parametrize("page", [
    pytest.param(p, marks=[pytest.mark.slow] if p.relative_to(REPO).as_posix() in SLOW_PAGES else [])
    for p in PAGES if any(n is None for *_, n in examples(p))], ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_python_examples_run(page, image_folder):
    name = page.relative_to(REPO).as_posix()
    runnable = [example for example in examples(page) if example[3] is None]
    if image_folder is None and any(image in code for _, code, _, _ in runnable for image in IMAGES):
        message = f"{name}'s examples open images written from {CIFAR_ORIGINAL_HEAD}, which is missing"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    namespace = {"__name__": "__docs__"}
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    with global_state_restored():
        for line, code, expected, _ in runnable:
            printed = io.StringIO()
            # Blank lines keep the traceback's line numbers those of the page.
            compiled = compile("\n" * line + code, str(page), "exec")
            with contextlib.redirect_stdout(printed):
                exec(compiled, namespace)  # noqa: S102 - the documentation's own examples
            if expected is not None and not checker.check_output(expected, printed.getvalue(), flags):
                pytest.fail(f"{name}, the block at line {line} printed\n{printed.getvalue()}\n"
                            f"where its Output block says\n{expected}")


# --- shell blocks: the commands and flags exist ------------------------------------

ABSL_FLAGS = {"--help", "--helpfull", "--helpshort", "--flagfile", "--verbosity", "--logtostderr",
              "--alsologtostderr", "--log_dir", "--only_check_args"}


def defined_flags(source):
    """{--flag: allowed values or None} that a module defines (absl DEFINE_*, argparse add_argument)."""
    found, absl = {}, False
    for node in ast.walk(ast.parse(source.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Attribute, ast.Name)):
            continue
        function = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        strings = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        if function.startswith("DEFINE_") and strings:
            absl = True
            values = None
            if function in ("DEFINE_enum", "DEFINE_multi_enum") and len(node.args) > 2:
                try:
                    values = set(ast.literal_eval(node.args[2]))
                except ValueError:
                    values = None  # computed: not checked
            found[f"--{strings[0]}"] = values
            if function in ("DEFINE_bool", "DEFINE_boolean"):
                found[f"--no{strings[0]}"] = None
        elif function == "add_argument":
            found.update((option, None) for option in strings if option.startswith("-"))
    found.update(dict.fromkeys(ABSL_FLAGS if absl else ("-h", "--help")))
    return found


def module_source(module):
    """The file of `python -m MODULE` in this repository, or None for one from elsewhere."""
    parts = module.split(".")
    if parts[0] not in ("keras_resnet", "zoo", "benchmarks", "examples", "tools"):
        return None
    path = REPO.joinpath(*parts)
    return path / "__main__.py" if path.is_dir() else path.with_suffix(".py")


def commands(code):
    """The commands of a shell block, each a list of words, without variable assignments in front."""
    text = re.sub(r"\\\n", " ", code)
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        command = []
        for word in words + [";"]:
            if word in (";", "&&", "||", "|"):
                while command and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", command[0]):
                    command.pop(0)
                if command:
                    yield command
                command = []
            else:
                command.append(word)


def table_flags(source):
    """Flags a module defines in a loop over a table, which `defined_flags` cannot read: zoo.export's
    path flag per export format (keras_resnet.formats.TABLE)."""
    if source == REPO / "zoo" / "export.py":
        from keras_resnet import formats

        return {f"--{fmt.zoo_flag}": None for fmt in formats.TABLE.values()}
    return {}


def check_flags(where, program, source, words):
    assert source.is_file(), f"{where}: `{program}` runs {source}, which does not exist"
    flags = {**defined_flags(source), **table_flags(source)}
    for word in words:
        if not word.startswith("-") or word == "--":
            continue
        flag, _, value = word.partition("=")
        assert flag in flags, f"{where}: `{program}` has no flag {flag} ({source.relative_to(REPO)})"
        allowed = flags[flag]
        if allowed is not None and value and "$" not in value:
            assert set(value.split("|")) <= allowed, f"{where}: {word}: {flag} takes {sorted(allowed)}"


# pytest-xdist's (the test extra) options, for a run of this file without it (`-p no:xdist`).
XDIST_OPTIONS = ("-n", "--numprocesses", "--dist", "--maxprocesses")


def check_command(where, words, pytest_parser, extras, pytest_plugin_options=()):
    from zoo import command as command_lib

    program, *rest = words
    if program == "keras-resnet":
        if not rest or rest[0] in ("-h", "--help", "-V", "--version"):
            return
        name, *rest = rest
        assert name in command_lib.COMMANDS, f"{where}: keras-resnet has no command {name!r}"
        check_flags(where, f"keras-resnet {name}", module_source(command_lib.COMMANDS[name][0]), rest)
    elif program in ("python", "python3") and rest[:1] == ["-m"] and len(rest) > 1:
        module, *rest = rest[1:]
        if module == "pytest":
            _, unknown = pytest_parser.parse_known_and_unknown_args(rest)
            unknown = [flag for flag in unknown if flag not in pytest_plugin_options]
            assert unknown == [], f"{where}: pytest has no option {unknown}"
        elif module_source(module) is not None:
            check_flags(where, f"python -m {module}", module_source(module), rest)
    elif program in ("python", "python3") and rest and rest[0].endswith(".py"):
        check_flags(where, f"python {rest[0]}", REPO / rest[0], rest[1:])
    elif program == "bash" and rest and not rest[0].startswith("-"):
        assert (REPO / rest[0]).is_file(), f"{where}: {rest[0]} does not exist"
    elif program == "pip" and rest[:1] == ["install"]:
        for word in rest[1:]:
            named = re.search(r"\[([^\]]+)\]", word)
            unknown = sorted(set(named[1].split(",")) - extras) if named else []
            assert unknown == [], f"{where}: {word}: pyproject.toml declares no extra {unknown}"


def test_the_shell_commands_exist(request):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pytest_parser = request.config._parser  # pytest's options, its plugins' and conftest's
    unloaded = () if request.config.pluginmanager.hasplugin("xdist") else XDIST_OPTIONS
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    checked = 0
    for path in PAGES:
        for language, _, line, code in blocks(path):
            if language not in ("bash", "sh", "shell", "console"):
                continue
            for words in commands(code):
                check_command(f"{path.relative_to(REPO)}:{line}", words, pytest_parser, extras, unloaded)
                checked += 1
    assert checked >= 30


def test_the_extras_table_is_pyproject_toml():
    """Getting started's table of extras names every extra and every package pyproject.toml gives it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {"(none)": project["dependencies"], **project["optional-dependencies"]}
    table = {}
    for line in (DOCS / "getting-started.md").read_text().split("| extra | brings |")[1].splitlines()[2:]:
        if not line.startswith("|"):
            break
        extra, brings = (cell.strip() for cell in line.strip("|").split("|"))
        table[extra.strip("`")] = brings
    assert sorted(table) == sorted(declared)
    for extra, requirements in declared.items():
        names = {re.split(r"[\[<>=!~ ;]", requirement)[0] for requirement in requirements}
        missing = [name for name in names if name not in table[extra] and not (
            extra == "test" and name in declared["zoo"] and "`zoo` extra" in table[extra])]
        assert missing == [], f"the `{extra}` row does not name {missing}"


# --- the README, also the package index page -----------------------------------

def site_pages():
    """The site's page URLs (relative to site_url): the pages in docs/ and those docs/hooks.py generates."""
    import keras_resnet
    import zoo

    pages = {"model-cards/", "api/"}
    pages |= {"" if p.stem == "index" else f"{p.stem}/" for p in DOCS.glob("*.md")}
    for package in (keras_resnet, zoo):
        pages |= {f"api/{package.__name__}/{info.name}/" for info in pkgutil.iter_modules(package.__path__)
                  if not info.name.startswith("_")}
    return pages


def test_the_readme_is_a_landing_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    language, _, _, first = blocks(REPO / "README.md")[0]
    two = [line.split("#")[0].strip() for line in first.strip().splitlines()]
    assert language == "bash" and len(two) == 2, first
    ci = (REPO / ".ci" / "run").read_text()
    # The main job and the test command, as CI runs them.
    assert two[0].replace("/tmp/r20", '"$work/r20"') in ci and f"{two[1]}\n" in ci, two
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert links and [link for link in links if not link.startswith("https://")] == [], links
    pages = site_pages()
    broken = [link for link in links if link.startswith(SITE_URL) and link[len(SITE_URL):].split("#")[0] not in pages]
    assert broken == [], f"not a page of the site: {broken}"


def test_the_readme_results_are_the_recorded_ones():
    from keras_resnet import models
    from keras_resnet import presets
    from keras_resnet import registry

    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| ")}
    depths = [20, 32, 44, 56, 110, 1202]
    paper = [re.search(r"(\d+\.\d+)% error", getattr(models, f"resnet{d}").__doc__)[1] for d in depths]
    assert rows["the paper"] == paper
    preset = next(cells for label, cells in rows.items() if label.startswith("`cifar10` preset"))
    recorded = [registry.get_preset("cifar10", d).test_error[presets.ORIGINAL_HEAD] for d in depths]
    assert preset == ["" if error is None else f"{error:.2f}" for error in recorded]
    ours = next(cells for label, cells in rows.items() if label.startswith("trained here"))
    table6 = next(line for line in (REPO / "RESULTS.md").read_text().splitlines() if line.startswith("| ResNet-20 ("))
    assert ours[0] and ours[0] in table6.replace("*", "") and ours[1:] == [""] * 5


def test_each_package_docstring_names_its_modules():
    """docs/contributing.md's "Where things live" is these docstrings: every module is on the map."""
    import keras_resnet
    import zoo

    for package in (keras_resnet, zoo):
        names = [info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")]
        missing = [name for name in names if not re.search(rf"\b{name}\b", package.__doc__)]
        assert missing == [], f"{package.__name__}'s docstring does not say what {missing} hold"


# --- the pages the site generates -------------------------------------------------

def test_the_site_generates_the_model_cards_and_a_page_per_module(monkeypatch):
    """docs/hooks.py, as `mkdocs build` runs it: the model cards are the registry's, every module has a page."""
    try:
        from mkdocs.config import load_config
        from mkdocs.structure.files import get_files
    except ImportError as error:
        message = f"needs mkdocs, from the docs extra: pip install '.[docs]' ({error})"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    import keras_resnet
    import zoo
    from keras_resnet import model_cards

    monkeypatch.setattr("sys.path", list(__import__("sys").path))  # the hook puts the checkout first
    config = load_config(str(REPO / "mkdocs.yml"))
    config = config.plugins.on_config(config)  # the plugins and hooks, as `mkdocs build` runs them
    files = config.plugins.on_files(get_files(config), config=config)
    assert files.get_file_from_path("model-cards.md").content_string == model_cards.page()
    nav = next(entry["API reference"] for entry in config.nav if isinstance(entry, dict) and "API reference" in entry)
    for package in (keras_resnet, zoo):
        modules = [info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")]
        section = next(entry[package.__name__] for entry in nav
                       if isinstance(entry, dict) and package.__name__ in entry)
        assert [list(entry) for entry in section] == [[name] for name in modules]
        for name in modules:
            page = files.get_file_from_path(f"api/{package.__name__}/{name}.md")
            assert page.content_string == f"::: {package.__name__}.{name}\n"
    index = files.get_file_from_path("api/index.md").content_string
    assert [name for name in keras_resnet.__all__ if f"[`{name}`][keras_resnet." not in index] == []
