"""What the modules of a package import from each other, read from their source (a test helper).

Every import statement counts, those inside functions included: a cycle
through an import inside a function still means two modules can only be
understood together. Generic over the package, so that tests/test_imports.py
(keras_resnet) and tests/test_zoo_imports.py (zoo) can share it.
"""

import ast
import pathlib


def imports(path, package, modules):
    """The modules of `package` (names in `modules`) that the file `path` imports anywhere."""
    found = set()
    for node in ast.walk(ast.parse(pathlib.Path(path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == package:
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(package + ".")}
    found.discard(pathlib.Path(path).stem)
    return found


def graph(folder):
    """{module: the package's modules it imports} for the package in `folder`."""
    folder = pathlib.Path(folder)
    modules = {path.stem for path in folder.glob("*.py")}
    return {path.stem: imports(path, folder.name, modules) for path in folder.glob("*.py")}


def cycles(edges):
    """Every elementary import cycle of `edges`, each once, as a tuple of module names."""
    found = set()

    def visit(start, name, path):
        for dependency in edges.get(name, ()):
            if dependency == start:
                found.add(tuple(path))
            elif dependency not in path and dependency > start:
                visit(start, dependency, path + [dependency])

    for start in edges:
        visit(start, start, [start])
    return sorted(found)
