"""`keras-resnet COMMAND` (zoo/command.py): exactly `python -m zoo.COMMAND`, and a clear list otherwise.

Under CI the processes run the installed console script (conftest.keras_resnet_command);
from a clone, `python -m zoo.command`, the same `main`.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

from zoo import command

from conftest import INSTALLED, REPO, keras_resnet_command, python_env
from helpers_package import fake_distribution, with_site

ZOO = pathlib.Path(command.__file__).resolve().parent


def run(argv, cwd):
    return subprocess.run(argv, cwd=cwd, env=python_env(TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("argv, said", [
    ([], "keras-resnet: no command given."),
    (["trian"], "keras-resnet: unknown command 'trian'. Did you mean 'train'?"),
    (["evalute", "--workdir=x"], "keras-resnet: unknown command 'evalute'. Did you mean 'evaluate'?"),
    (["frobnicate"], "keras-resnet: unknown command 'frobnicate'.\n"),
])
def test_no_unknown_or_misspelled_command_lists_the_commands_and_exits_2(argv, said, capsys):
    with pytest.raises(SystemExit) as exit:
        command.main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(said) and err.count("Did you mean") == ("Did you mean" in said)
    assert [line.split()[0] for line in err.split("commands:\n")[1].strip().splitlines()] == list(command.COMMANDS)


def test_help_lists_the_commands_and_exits_0(capsys):
    assert command.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out == command.usage() and all(f"  {name} " in out for name in command.COMMANDS)


def test_every_zoo_command_has_a_row():
    # The modules with flags and a __main__ block are the zoo's commands.
    commands = set()
    for path in ZOO.glob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "define_flags" for n in tree.body):
            commands.add(f"zoo.{path.stem}")
    assert commands and commands <= {module for module, _ in command.COMMANDS.values()}
    assert command.COMMANDS["recipes"][0] == "zoo"


def test_the_console_script_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"keras-resnet": "zoo.command:main"}
    if INSTALLED:
        assert pathlib.Path(keras_resnet_command()[0]).is_file()


# zoo.evaluate imports TensorFlow before it parses its flags (seconds each
# run); every row runs the same way (runpy), so the others show it.
QUICK = [name for name in command.COMMANDS if name != "evaluate"]


@pytest.mark.multiprocess
def test_each_command_is_python_m_of_its_module(tmp_path):
    """Same output and exit status, from a directory outside the clone."""
    cases = [(name, ["--help"] if name != "recipes" else []) for name in QUICK] + [("train", ["--no_such_flag"])]
    for name, args in cases:
        ours = run(keras_resnet_command(name, *args), tmp_path)
        theirs = run([sys.executable, "-m", command.COMMANDS[name][0], *args], tmp_path)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (name, args, ours.stderr)
        assert ours.returncode == (1 if "--no_such_flag" in args else 0), (name, args, ours.stderr[-500:])
    listed = run(keras_resnet_command(), tmp_path)
    assert listed.returncode == 2 and listed.stderr.startswith("keras-resnet: no command given.")


def test_a_command_refuses_the_other_keras_resnet(tmp_path):
    # Installed after ours, that package's keras_resnet/__init__.py replaces
    # ours, so the command checks by itself.
    site = fake_distribution(tmp_path / "site", "keras-resnet", "0.2.0")
    result = subprocess.run(keras_resnet_command("recipes"), cwd=tmp_path, env=with_site(site),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("keras-resnet: the distribution 'keras-resnet' 0.2.0 is installed"), result.stderr
    assert "pip uninstall keras-resnet" in result.stderr and str(site) in result.stderr
