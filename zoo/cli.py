"""What the zoo's command-line entry points share: errors first, paths expanded.

absl's `app.UsageError` prints the module docstring and every flag before
the message, so the one line that matters comes 40 lines down. `fail`
prints the message first and points to --help instead.
"""

import os
import sys


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
