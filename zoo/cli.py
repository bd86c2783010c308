"""What the zoo's command-line entry points share: errors first, paths expanded.

absl's `app.UsageError` prints the module docstring and every flag before
the message, so the one line that matters comes 40 lines down. `fail`
prints the message first and points to --help instead. `run` is the
entry points' `app.run`: --help exits 0, TensorFlow's start-up lines are
printed once, and Ctrl-C is one line and exit status 130.
"""

import importlib
import importlib.util
import os
import pathlib
import re
import sys
import tempfile

# absl's help flags; absl exits with status 1 after printing the help.
HELP_FLAGS = ("--help", "-help", "-?", "--helpshort", "-helpshort", "--helpfull", "-helpfull")
# TF's C++ start-up lines, logged before its log level is read ("I0000
# 00:00:1796178477.997109    6552 port.cc:153] ..."), and absl's notice.
_CPP_LOG = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ (.*)$")
_PRE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def fail(message, command=None):
    """Ends the program: `message` on stderr, exit status 2.

    Args:
        message: what went wrong, and what is valid.
        command: the module, e.g. "zoo.train", for the --help hint.
    """
    hint = f"\n(python -m {command} --help lists the flags.)" if command else ""
    sys.stderr.write(f"Error: {message}{hint}\n")
    sys.exit(2)


def expand(path):
    """`path` with `~` expanded and a trailing slash dropped; None stays None."""
    if path is None:
        return None
    path = os.path.expanduser(os.fspath(path))
    return os.path.normpath(path) if path else path


def os_error(error):
    """One sentence for an OSError: the path and the cause (its own text if it has one)."""
    if error.strerror is None:  # Raised with a message of the zoo's own.
        return str(error)
    if error.filename is not None:
        return f"Cannot use {error.filename}: {error.strerror}."
    return f"{error.strerror}."


def make_directory(path, what):
    """Creates directory `path` (and its parents) if missing.

    Raises:
        ValueError: one sentence naming `what` (e.g. "--workdir"), the path
            and the cause: a file in the way, a read-only disk, no permission.
    """
    path = pathlib.Path(path)
    for candidate in [path, *path.parents]:
        if candidate.exists() and not candidate.is_dir():
            where = "is a file" if candidate == path else f"is under {candidate}, which is a file"
            raise ValueError(f"{what}={path} {where}, not a directory: pass a directory path.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Cannot create {what}={path}: {error.strerror} ({error.filename or path})."
        ) from None


def check_writable(directory, what):
    """Raises ValueError (one sentence) unless a file can be written into `directory`.

    Args:
        directory: an existing directory.
        what: what would be written there, for the message.
    """
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise ValueError(f"Cannot write {what} into {directory}: {error.strerror}.") from None


def output_file(path, what):
    """`path` (`~` expanded), once its folder exists and takes files.

    For outputs written after long work: checked before it starts.

    Raises:
        ValueError: one sentence naming `what` (e.g. "--out"), the path and
            the cause: a directory at `path`, a file in the way, a
            read-only disk.
    """
    path = pathlib.Path(expand(path))
    if path.is_dir():
        raise ValueError(f"{what}={path} is a directory; give a file name in it.")
    make_directory(path.parent, f"the folder of {what}")
    check_writable(path.parent, path.name)
    return path


def import_backend():
    """Imports Keras (and TensorFlow, if installed) printing TF's start-up lines once.

    TensorFlow's two shared libraries each log the same lines while they load,
    before TF_CPP_MIN_LOG_LEVEL is read. They are caught here (file
    descriptor 2, where C++ writes), each distinct line is printed once,
    and the levels TF_CPP_MIN_LOG_LEVEL hides (1: info, 2: warnings, 3:
    errors) are dropped as TF itself would drop them.

    TensorFlow is imported here even under JAX or PyTorch, where Keras
    imports it later (`keras.utils.set_random_seed` seeds it too) and its
    lines would escape. Its devices are listed here too (without starting
    its runtime: a multi-worker strategy can still be made), which is when
    a CUDA build on a host without a GPU driver logs "failed call to cuInit";
    that line is dropped when TF said it found no driver.
    """
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    captured = tempfile.TemporaryFile()
    os.dup2(captured.fileno(), 2)
    try:
        importlib.import_module("keras")
        if importlib.util.find_spec("tensorflow") is not None:
            tensorflow = importlib.import_module("tensorflow")
            tensorflow.config.list_physical_devices()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        captured.seek(0)
        sys.stderr.write(_startup_lines(captured.read().decode(errors="replace")))
        sys.stderr.flush()
        captured.close()


# TF's line when it finds no CUDA driver, and the cuInit failure that follows it.
_NO_DRIVER = "Could not find cuda drivers on your machine"
_NO_CUINIT = "failed call to cuInit"


def _startup_lines(text):
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    hidden = "IWE"[: max(level, 0)]
    no_driver = _NO_DRIVER in text
    seen, kept, hide = set(), [], False
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        match = _CPP_LOG.match(body)
        if match:
            hide, key = match.group(1) in hidden, match.group(1) + match.group(2)
            # Expected on a host without a GPU driver: not an error there.
            hide = hide or (no_driver and _NO_CUINIT in body)
        elif body == _PRE_INIT:
            hide, key = level > 0, body
        elif body.startswith("To enable the following"):  # The line before continues.
            key = body
        else:  # Not TensorFlow's log: Python's own output, kept.
            hide, key = False, body
        if hide or key in seen:
            continue
        seen.add(key)
        kept.append(line)
    return "".join(kept)


# What an interrupted command says (Ctrl-C): every file is written whole or
# not at all, so an interruption loses nothing that was written.
INTERRUPTED = "interrupted. Nothing was written: every file is written whole, or not at all."


def run(main, command=None, interrupted=INTERRUPTED):
    """`absl.app.run(main)`, with --help exiting 0, TF's start-up lines once, Ctrl-C in one line.

    Keras is imported after the flags are parsed, so --help and flag errors
    come at once; absl's INFO log lines (TensorFlow's SavedModel writer logs
    a few kB of them) are hidden unless --verbosity asks for them. Ctrl-C
    (SIGINT) prints `interrupted` after the command's name, instead of a
    traceback, and exits with status 130 (128 + SIGINT), as a shell does.

    Args:
        main: the command's main(argv).
        command: its name for the Ctrl-C line, e.g. "zoo.train".
        interrupted: what the command says when interrupted: what is kept.
    """
    from absl import app
    from absl import flags
    from absl import logging

    def wrapped(argv):
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        import_backend()
        return main(argv)

    asked_for_help = any(arg in HELP_FLAGS for arg in sys.argv[1:])
    try:
        app.run(wrapped)
    except SystemExit as exit:
        if asked_for_help and exit.code == 1:
            raise SystemExit(0) from None
        raise
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.write(f"\n{command or 'zoo'}: {interrupted}\n")
        sys.stderr.flush()
        raise SystemExit(130) from None
