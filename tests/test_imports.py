"""The modules of keras_resnet import each other in one direction only.

A cycle, even through an import inside a function, means two modules can
only be understood together; this walks every import statement.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_resnet"


def _imports():
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "keras_resnet":
                found |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_resnet."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("keras_resnet.")}
        graph[name] = found
    return graph


def test_no_import_cycle():
    graph = _imports()
    assert graph["weights"] and graph["models"]  # the walk finds imports at all

    def visit(name, path):
        for dependency in sorted(graph[name]):
            assert dependency not in path, f"import cycle: {' -> '.join(path + [dependency])}"
            visit(dependency, path + [dependency])

    for name in graph:
        visit(name, [name])


def test_library_never_imports_torch_or_zoo():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in ("torch", "zoo"), (path.name, name)


def _cycles(graph):
    """Every import cycle in `graph` (module -> modules it imports), each once."""
    found = set()

    def visit(name, path):
        for dependency in sorted(graph.get(name, ())):
            if dependency in path:
                cycle = path[path.index(dependency):]
                start = cycle.index(min(cycle))
                found.add(tuple(cycle[start:] + cycle[:start]))
            else:
                visit(dependency, path + [dependency])

    for name in graph:
        visit(name, [name])
    return sorted(found)


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_library():
    graph = _imports()
    assert graph["weights"] and graph["models"]  # the walk sees the modules
    assert _cycles(graph) == []


def test_no_test_module_imports_another_test_module():
    tests = pathlib.Path(__file__).resolve().parent
    modules = {path.stem for path in tests.glob("test_*.py")}
    for path in tests.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            shared = sorted(n for n in names if n.split(".")[0] in modules)
            assert not shared, (
                f"{path.name} imports {shared}: shared helpers belong in tests/helpers_*.py, "
                "tests/reference.py or conftest.py")
