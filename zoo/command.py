"""`keras-resnet`: the one installed command, which runs the zoo's commands.

    keras-resnet train --recipe=cifar10_resnet20 --workdir=/tmp/r20
    keras-resnet evaluate --workdir=/tmp/r20
    keras-resnet recipes                 # the recipes, one line each
    keras-resnet predict --weights=cifar10 --depth=56 photos/
    keras-resnet train --help            # a command's flags

`keras-resnet NAME ARGS...` is exactly `python -m MODULE ARGS...` for the
module that `COMMANDS` gives NAME: the module runs as `__main__` with
`sys.argv` as `python -m` sets it (its file, then ARGS), so it sees the same
flags and exits with the same status (`--help` exits 0, a bad flag 2).
Without a command, with an unknown or misspelled one, it prints the
commands (and the nearest name) and exits 2; `keras-resnet --help` prints
them and exits 0. Nothing here imports Keras, TensorFlow or a command's
module before the command is chosen, so the list comes at once.

Before it runs a command it refuses, as `import keras_resnet` does, to run
beside the unrelated `keras-resnet` distribution, and it checks that itself:
when that package is installed after this one, its `keras_resnet/__init__.py`
replaces ours, so `import keras_resnet` no longer holds our check.
"""

import difflib
import importlib.metadata
import runpy
import sys

# command -> (the module it runs as `python -m MODULE`, one line about it).
COMMANDS = {
    "train": ("zoo.train", "train a recipe into a run directory (or resume it)"),
    "evaluate": ("zoo.evaluate", "evaluate a finished run again (centre crop, ten crops, ...)"),
    "export": ("zoo.export", "export a run: SavedModel, ONNX, LiteRT, OpenVINO"),
    "sweep": ("zoo.sweep", "several runs (recipes or seeds) on one machine, a few at a time"),
    "plot": ("zoo.plot", "error curves of runs (the paper's Fig. 6)"),
    "analysis": ("zoo.analysis", "layer-response statistics of runs and presets (Fig. 7)"),
    "recipes": ("zoo", "list the recipes (python -m zoo)"),
    "presets": ("keras_resnet.model_cards", "list the pretrained presets: depths, source, licence, test error"),
    "predict": ("keras_resnet.predict", "top classes of image files, folders or globs (a preset, model, run or export)"),
}
HELP_FLAGS = ("-h", "--help", "help")
VERSION_FLAGS = ("-V", "--version")


def usage():
    """The list of commands, as printed without one.

    Returns:
        The text: how to call, then one line per command.
    """
    width = max(map(len, COMMANDS))
    lines = [f"  {name:{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join([
        "usage: keras-resnet COMMAND [FLAGS...]    (keras-resnet COMMAND --help: its flags)",
        "",
        "commands:",
        *lines,
        "",
    ])


def main(argv=None):
    """Runs `keras-resnet COMMAND ARGS...` as `python -m MODULE ARGS...`.

    Args:
        argv: the command line after the program name; `sys.argv[1:]` by
            default.

    Returns:
        0 after the usage (`--help`) or the version (`--version`); otherwise
        the command's own exit (it raises SystemExit, or returns None for 0).

    Raises:
        SystemExit: with status 2 and the list of commands on stderr when
            there is no command or an unknown one; the command's own exit
            status otherwise.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in HELP_FLAGS:
        sys.stdout.write(usage())
        return 0
    if argv and argv[0] in VERSION_FLAGS:
        from keras_resnet import __version__

        sys.stdout.write(f"keras-resnet (keras-resnet-zoo) {__version__}\n")
        return 0
    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write(_unknown(argv[0] if argv else None) + usage())
        raise SystemExit(2)
    _refuse_other_distribution()
    module = COMMANDS[argv[0]][0]
    # As `python -m MODULE ARGS`: runpy puts the module's file in argv[0].
    sys.argv = [sys.argv[0], *argv[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return None


def _refuse_other_distribution():
    # keras_resnet/_startup.py says why; this copy needs no keras_resnet/__init__.py.
    try:
        other = importlib.metadata.distribution("keras-resnet")
    except importlib.metadata.PackageNotFoundError:
        return
    if _is_this_checkout(other.locate_file("")):
        return
    raise SystemExit(
        f"keras-resnet: the distribution 'keras-resnet' {other.version} is installed in this environment "
        f"(in {other.locate_file('')}): an unrelated Keras 2 project that also imports as `keras_resnet` and "
        "replaces this package's files. Run `pip uninstall keras-resnet`, then "
        "`pip install --force-reinstall keras-resnet-zoo`.")


def _is_this_checkout(folder):
    # A checkout where `pip install .` once ran under the pre-1.0 name keeps a
    # keras_resnet.egg-info folder that importlib.metadata reports as
    # `keras-resnet`: not the other package when it is the checkout this
    # command runs from (keras_resnet/_startup.py's check says the same).
    import pathlib

    try:
        folder = pathlib.Path(folder).resolve()
        project = (folder / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return folder == pathlib.Path(__file__).resolve().parent.parent and 'name = "keras-resnet-zoo"' in project


def _unknown(name):
    if name is None:
        return "keras-resnet: no command given.\n"
    close = difflib.get_close_matches(name, COMMANDS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"keras-resnet: unknown command {name!r}.{hint}\n"


if __name__ == "__main__":
    sys.exit(main())
