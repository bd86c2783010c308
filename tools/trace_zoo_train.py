"""Traces a recipe from `python -m zoo.train` to results.json: the zoo files it passes through.

    python tools/trace_zoo_train.py            # the figures
    python tools/trace_zoo_train.py --show     # and every stop, in order

Runs `python -m zoo.train` in this process (a 4-step ResNet-8 on the
digits, two epochs, TensorFlow's `fit`) under `sys.setprofile` and records,
from the moment zoo.train's `main` starts (imports aside), every call from a
function of zoo/ into a function of *another* zoo/ file: a stop. Calls
within a file, and calls into zoo/ from Keras (its callback hooks), are not
stops (a `with` block's context manager counts as called from the block's
code); comprehensions and lambdas are not functions here; the same call
repeated in a row (a loop) is one stop. A stop that enters a file entered
before is a return into a file already visited. The same command gives the same figures, so they can be
compared before and after a change of the code (issue 30).
"""

import collections
import contextlib
import pathlib
import runpy
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
ZOO = REPO / "zoo"
FLAGS = ["--recipe=cifar10_resnet20", "--set=depth=8", "--set=batch_size=8", "--set=val_size=16",
         "--steps=4", "--set=epoch_steps=2"]


def _zoo_file(code):
    path = pathlib.Path(code.co_filename)
    return path.name if path.parent == ZOO and not code.co_name.startswith("<") else None


def trace(workdir):
    """The stops of one `zoo.train` run into `workdir`: [(from file, to file, function)]."""
    stops = []
    started = []

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = _zoo_file(frame.f_code)
        caller = frame.f_back
        # A `with` block's context manager is entered from contextlib: the
        # stop is from the code that wrote the `with`.
        while caller is not None and caller.f_code.co_filename == contextlib.__file__:
            caller = caller.f_back
        if callee is None or caller is None:
            return
        if not started:
            if (callee, frame.f_code.co_name) == ("train.py", "main"):
                started.append(True)
            return
        source = pathlib.Path(caller.f_code.co_filename)
        stop = (source.name, callee, frame.f_code.co_name)
        if source.parent == ZOO and source.name != callee and (not stops or stops[-1] != stop):
            stops.append(stop)

    sys.argv = ["zoo.train", *FLAGS, f"--workdir={workdir}"]
    sys.path.insert(0, str(REPO))
    sys.setprofile(profile)
    try:
        runpy.run_module("zoo.train", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        if exit.code:
            raise
    finally:
        sys.setprofile(None)
    from zoo import run

    if not (pathlib.Path(workdir) / run.RESULTS).is_file():
        raise SystemExit(f"zoo.train wrote no {run.RESULTS} in {workdir}")
    return stops


def figures(stops):
    """(stops, returns into a file already visited, {file: times entered})."""
    seen, returns = set(), 0
    for _, callee, _ in stops:
        returns += callee in seen
        seen.add(callee)
    return len(stops), returns, collections.Counter(callee for _, callee, _ in stops)


def main():
    show = "--show" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        stops = trace(pathlib.Path(tmp) / "run")
    count, returns, entered = figures(stops)
    if show:
        for i, (caller, callee, function) in enumerate(stops, 1):
            print(f"{i:3d} {caller} -> {callee}.{function}")
    print(f"zoo.train to the end of the run: {count} stops, {returns} of them back into a file already visited")
    print("entered: " + ", ".join(f"{name} {n}" for name, n in entered.most_common()))


if __name__ == "__main__":
    main()
