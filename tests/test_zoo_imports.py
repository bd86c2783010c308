"""The zoo's layout, checked from its source: one direction of imports, one owner per idea.

Walks every import statement, those inside functions included
(tests/import_graph.py). Run as a script (`python tests/test_zoo_imports.py`)
it prints the figures issue 20 measures.
"""

import ast
import pathlib
import re

import import_graph

REPO = pathlib.Path(__file__).resolve().parents[1]
ZOO = REPO / "zoo"
TOOLS = REPO / "tools"
# The entry points: `python -m zoo.<name>`. Other modules do not import them
# to reach a helper; the helpers live in the modules that own their idea.
COMMANDS = ("train", "evaluate", "export", "sweep", "analysis", "plot")
# (importer, command) pairs still to go: none (the preset tool asks the
# library's architecture decoder for the net inside a zoo model).
PENDING = set()
# The names of a run directory's files (zoo.run owns them).
RUN_FILES = ("config.json", "results.json", "history.csv", "model.keras", "classes.json",
             "mean.npy", "latest.weights.h5", "train.log", ".workers")


def zoo_imports(path):
    """The zoo modules `path` imports anywhere in it (module level or in a function)."""
    return import_graph.imports(path, "zoo", {p.stem for p in ZOO.glob("*.py")})


def graph():
    return import_graph.graph(ZOO)


def code_strings(path):
    """The string constants of a module's code (f-string parts included), docstrings not."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def modules_holding(name):
    pattern = re.compile(r"(^|[^\w.])" + re.escape(name) + r"($|[^\w])")
    sources = sorted(ZOO.glob("*.py")) + sorted(TOOLS.glob("*.py"))
    return [p.name for p in sources if any(pattern.search(s) for s in code_strings(p))]


def write_then_rename():
    """The functions of zoo/ that rename a file into place (os.replace / os.rename)."""
    found = []
    for path in sorted(ZOO.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for call in ast.walk(node):
                    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                            and call.func.attr in ("replace", "rename")
                            and isinstance(call.func.value, ast.Name) and call.func.value.id == "os"):
                        found.append(f"{path.stem}.{node.name}")
                        break
    return found


def test_the_walk_sees_the_imports():
    edges = graph()
    assert {"run", "recipes", "datasets"} <= edges["train"]
    assert "stream" in edges["scan_loop"] and "stream" in edges["fit_arrays"]


def test_no_import_cycle_in_zoo():
    assert import_graph.cycles(graph()) == []


def test_cycles_are_found_where_they_are():
    assert import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]


def test_no_module_imports_a_command_to_reach_a_helper():
    importers = {path.stem: zoo_imports(path) for path in [*ZOO.glob("*.py"), *TOOLS.glob("*.py")]}
    reached = sorted((name, command) for name, found in importers.items() for command in found
                     if command in COMMANDS and (name, command) not in PENDING)
    assert reached == []


def test_commands_define_their_flags_when_run_not_when_imported():
    for command in COMMANDS:
        tree = ast.parse((ZOO / f"{command}.py").read_text())
        at_import = [
            node.lineno for node in tree.body
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute) and isinstance(node.value.func.value, ast.Name)
            and node.value.func.value.id == "flags"
        ]
        assert at_import == [], f"zoo/{command}.py defines flags at import (lines {at_import})"
        assert any(isinstance(n, ast.FunctionDef) and n.name == "define_flags" for n in tree.body), command


def test_each_run_file_name_is_written_in_one_module():
    for name in RUN_FILES:
        assert modules_holding(name) == ["run.py"], name


def test_one_write_then_rename():
    assert write_then_rename() == ["files.staged"]


def test_no_zoo_test_module_imports_another_test_module():
    # Shared helpers live in helper modules (zoo_helpers, reference, import_graph)
    # or conftest.py. (The library's tests are the library side's, issue 20.)
    tests = REPO / "tests"
    for path in sorted(tests.glob("test_zoo_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.split(".")[0].startswith("test_")], (path.name, names)


def test_where_things_live_lists_every_module():
    import zoo

    listed = set(re.findall(r"^    ([a-z_]+(?:, [a-z_]+)*) ", zoo.__doc__, re.M))
    names = {name for entry in listed for name in entry.split(", ")}
    assert {p.stem for p in ZOO.glob("*.py")} - {"__init__", "__main__"} <= names


# The zoo's deprecated names (issue 20's aliases), removed by issue 30:
# module -> names that must not be there any more.
REMOVED = {
    "train": ("run_config", "finished_results", "check_same_run", "has_progress", "LOCK"),
    "evaluate": ("load_recipe", "load_model", "run_classes"),
    "export": ("load_run", "MODEL_FILE", "CLASSES_FILE", "RUN_ENTRIES"),
    "sweep": ("is_finished",),
    "seeds": ("replica_dir", "group_config", "is_group", "REPLICA_PREFIX", "KIND"),
    "history": ("write_atomic", "write_json", "read_json", "staging_name", "STAGING"),
}


def test_the_deprecated_zoo_names_are_gone_and_nothing_uses_them():
    import importlib

    left = [f"zoo.{module}.{name}" for module, names in REMOVED.items()
            for name in names if hasattr(importlib.import_module(f"zoo.{module}"), name)]
    assert left == []
    assert not (ZOO / "runs.py").exists()
    uses = re.compile(r"\b(zoo\.runs\b|from zoo import runs\b|"
                      + "|".join(rf"\b{module}(_lib)?\.{name}\b" for module, names in REMOVED.items()
                                 if module != "history" for name in names)
                      + r"|\bhistory\.(write_atomic|write_json|read_json|staging_name|STAGING)\b)")
    found = []
    for folder in ("zoo", "tools", "tests", "benchmarks", "examples"):
        for path in sorted((REPO / folder).glob("*.py")):
            if path.name == "test_zoo_imports.py":
                continue
            found += [f"{path.relative_to(REPO)}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1)
                      if uses.search(line)]
    assert found == []


def test_no_zoo_function_is_longer_than_80_lines():
    assert long_functions(80) == []


def test_a_dataset_spec_is_taken_apart_in_one_function():
    # The spec's separator is split off nowhere else: every module gets a
    # zoo.datasets.Dataset. (zoo.sweep's parse_run splits a RUN, name:overrides.)
    splitting = [f"{path.stem}.{node.name}" for path in sorted(ZOO.glob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)
                 for call in ast.walk(node)
                 if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                 and call.func.attr in ("partition", "split") and call.args
                 and isinstance(call.args[0], ast.Constant) and call.args[0].value == ":"]
    assert splitting == ["datasets.parse", "sweep.parse_run"]


def long_functions(limit=80):
    """[(lines, "module.function")] of zoo/'s functions over `limit` lines, longest first."""
    found = []
    for path in sorted(ZOO.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append((lines, f"{path.stem}.{node.name}"))
    return sorted(found, reverse=True)


# What parses a dataset spec ("digits", "folder:PATH", "tfds:NAME", "paper")
# into its parts, or rewrites it: the functions of zoo.datasets that take
# the string apart.
SPEC_PARSERS = ("parse", "canonical", "of_recipe")


def calls_of(path, owner, names):
    """[(function, line)] of the calls in `path` to `owner.<name>` (or `<name>` inside owner's module)."""
    found = []
    tree = ast.parse(path.read_text())
    for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        for call in ast.walk(function):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            named = (isinstance(func, ast.Attribute) and func.attr in names
                     and isinstance(func.value, ast.Name) and func.value.id == owner)
            local = path.stem == owner and isinstance(func, ast.Name) and func.id in names
            if named or local:
                found.append((function.name, call.lineno))
    return sorted(set(found), key=lambda item: item[1])


def spec_parse_sites():
    """{module: [(function, line)]}: where zoo/ takes a dataset spec string apart."""
    sites = {p.stem: calls_of(p, "datasets", SPEC_PARSERS) for p in sorted(ZOO.glob("*.py"))}
    return {module: found for module, found in sites.items() if found}


def _names_a_run_dir(node):
    return any(isinstance(n, ast.Name) and "workdir" in n.id for n in ast.walk(node))


def run_path_sites(expanded=True):
    """{module: [(function, line)]}: where a run directory's path is normalised.

    With `expanded`: a call of `cli.expand` on a name holding "workdir", or
    of `zoo.run.directory`, the one function that does it. Otherwise: a
    call of `pathlib.Path` on such a name (a str made a Path; one site for
    `pathlib.Path(cli.expand(workdir))`, counted with `expanded`).
    """
    wanted = (("cli", "expand"),) if expanded else (("pathlib", "Path"),)
    sites = {}
    for path in sorted(ZOO.glob("*.py")):
        tree = ast.parse(path.read_text())
        found = set()
        for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for call in ast.walk(function):
                func = getattr(call, "func", None)
                if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
                    continue
                if expanded and func.attr == "directory" and func.value.id in ("run", "run_lib"):
                    found.add((function.name, call.lineno))
                elif (func.value.id, func.attr) in wanted and call.args and _names_a_run_dir(call.args[0]):
                    inner = call.args[0]
                    nested = isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and (
                        inner.func.attr == "expand")
                    if expanded or not nested:
                        found.add((function.name, call.lineno))
        if found:
            sites[path.stem] = sorted(found, key=lambda item: item[1])
    return sites


# The library's helpers the zoo kept a copy of, because importing any library
# module imported Keras before a command's flags were parsed (issue 30):
# (zoo name, library name).
COPIES = (
    ("recipes.SHORTCUTS", "blocks.SHORTCUTS"),
    ("recipes.CIFAR", "specs.CIFAR"),
    ("recipes.IMAGENET", "specs.IMAGENET"),
    ("checks.as_int", "specs.integer"),
    ("lock.alive", "atomic.alive"),
    ("model.CLASSIFIER", "names.CLASSIFIER"),
    ("nonfinite.nonfinite_weights", "serving.nonfinite_weights"),
)
# The one kept, on purpose: the shortcut options live with their layers in
# keras_resnet.blocks, which imports Keras (test_zoo_recipes keeps them equal).
KEPT_COPIES = ["recipes.SHORTCUTS"]


def copies_of_library_code():
    """The `COPIES` still defined in zoo/ (a name assigned or defined there, not taken from the library)."""
    left = []
    for zoo_name, library_name in COPIES:
        module, name = zoo_name.split(".")
        path = ZOO / f"{module}.py"
        if not path.exists():
            continue
        tree = ast.parse(path.read_text())
        defined = any(
            (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name)
            or (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                and not (isinstance(node.value, ast.Attribute)))
            for node in tree.body
        )
        if defined:
            left.append(f"{zoo_name} (= keras_resnet.{library_name})")
    return left


def test_the_zoo_imports_the_library_helpers_it_copied():
    assert [copy.split(" ")[0] for copy in copies_of_library_code()] == KEPT_COPIES


def report():
    """The figures of issue 30's "Show it", for zoo/ (before/after a change)."""
    sizes = sorted((len(p.read_text().splitlines()), p.name) for p in ZOO.glob("*.py"))
    print(f"largest file in zoo/: {sizes[-1][1]}, {sizes[-1][0]} lines")
    long = long_functions()
    print(f"functions over 80 lines: {len(long)} " + ", ".join(f"{name} {n}" for n, name in long))
    for what, sites in (("parse the dataset spec", spec_parse_sites()),
                        ("expand a run's path (~)", run_path_sites()),
                        ("make a run's path a Path", run_path_sites(expanded=False))):
        total = sum(len(found) for found in sites.values())
        print(f"places that {what}: {total} in {len(sites)} modules")
        for module, found in sites.items():
            print(f"    {module}: " + ", ".join(f"{function}:{line}" for function, line in found))
    copies = copies_of_library_code()
    print(f"zoo copies of library code: {len(copies)} " + "; ".join(copies))
    print(f"import cycles in zoo: {len(import_graph.cycles(graph()))} {import_graph.cycles(graph())}")
    for name in RUN_FILES:
        print(f"{name!r}: in {len(modules_holding(name))} modules {modules_holding(name)}")
    print(f"write-then-rename implementations: {write_then_rename()}")


if __name__ == "__main__":
    report()
