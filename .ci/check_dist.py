"""What `twine check` does not check in the built distributions, and the index or users would miss.

    python .ci/check_dist.py DIST [--tag vX.Y.Z]

- exactly one sdist and one wheel, of keras-resnet-zoo at `keras_resnet.__version__` (read from the
  source, not imported), and at the tag's version when a tag is given (a release);
- every classifier is one the index knows (trove-classifiers): it refuses an upload with another;
- the wheel holds the licence, the package data (every file of keras_resnet/weights_data and labels_data) and the
  `keras-resnet` console script; the sdist holds the licence, README, changelog and pyproject.toml.

Exits 1 naming every problem.
"""

import argparse
import ast
import email.parser
import pathlib
import sys
import tarfile
import zipfile

from trove_classifiers import classifiers as KNOWN_CLASSIFIERS

REPO = pathlib.Path(__file__).resolve().parents[1]
NAME = "keras_resnet_zoo"


def source_version():
    tree = ast.parse((REPO / "keras_resnet" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]:
            return node.value.value
    raise SystemExit("keras_resnet/__init__.py assigns no __version__")


def check(dist, tag):
    problems = []
    version = source_version()
    if tag is not None and tag != f"v{version}":
        problems.append(f"the tag {tag!r} is not v{version} (keras_resnet.__version__)")
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    expected_wheel, expected_sdist = f"{NAME}-{version}-py3-none-any.whl", f"{NAME}-{version}.tar.gz"
    if [w.name for w in wheels] != [expected_wheel] or [s.name for s in sdists] != [expected_sdist]:
        return problems + [f"expected {expected_wheel} and {expected_sdist} in {dist}, found "
                           f"{[p.name for p in wheels + sdists]}"]
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        info = f"{NAME}-{version}.dist-info"
        metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    unknown = [c for c in metadata.get_all("Classifier", []) if c not in KNOWN_CLASSIFIERS]
    if unknown:
        problems.append(f"classifiers the index does not know: {unknown}")
    data = sorted(p.relative_to(REPO).as_posix() for folder in ("weights_data", "labels_data")
                  for p in (REPO / "keras_resnet" / folder).iterdir())
    wanted = [f"{info}/licenses/LICENSE", "zoo/command.py", *data]
    problems += [f"the wheel lacks {name}" for name in wanted if name not in names]
    if "keras-resnet = zoo.command:main" not in entry_points:
        problems.append(f"the wheel declares no keras-resnet console script: {entry_points!r}")
    with tarfile.open(sdists[0]) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    problems += [f"the sdist lacks {name}" for name in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml")
                 if name not in members]
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=pathlib.Path)
    parser.add_argument("--tag", help="the release tag, e.g. v1.0.0")
    args = parser.parse_args(argv)
    problems = check(args.dist, args.tag)
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: {args.dist}: {sorted(p.name for p in args.dist.iterdir())} OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
