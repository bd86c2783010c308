"""The command-line checks every benchmark shares (argparse, no other imports)."""

import argparse


def require_positive(parser, args, names):
    """Stops with parser.error for the first of `names` (argparse dests) below 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1. Received {value}.")


def integer_list(flag, minimum=1, ranges=False):
    """An argparse type: '1,2,4' -> [1, 2, 4], each >= `minimum`.

    With `ranges`, 'A-B' is also taken, as [A, ..., B].
    """
    form = "'0-7' or '0,3,5'" if ranges else "comma-separated integers"

    def parse(text):
        try:
            if ranges and "-" in text:
                low, high = (int(part) for part in text.split("-"))
                values = list(range(low, high + 1))
            else:
                values = [int(part) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{flag} takes {form}. Received {text!r}.")
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"--{flag} must name integers >= {minimum}. Received {text!r}.")
        return values

    return parse
