"""The one "an integer, or nothing" of the zoo's argument checks."""

import operator


def as_int(value):
    """`value` as a Python int if it is an integer (numpy's included), else None.

    A bool is not an integer here (`True` is not a count), nor is a float
    with an integral value (`3.0`): the callers refuse what gets None,
    naming the value received.
    """
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None
