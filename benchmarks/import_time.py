"""What `python -c "import keras_resnet"` costs, for one or more checkouts side by side.

    python -m benchmarks.import_time                      # this checkout, median of 5
    python -m benchmarks.import_time /tmp/old .           # two checkouts, interleaved run by run

Each run is a fresh interpreter started in the checkout (so it imports that
checkout's keras_resnet), timed from start to exit: the wall-clock time a user
waits. Runs alternate between the checkouts so that machine noise hits all of
them. It also prints which of Keras, TensorFlow and JAX the import loaded.
Not a test: the numbers go to BENCHMARKS.md.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

from benchmarks import args as args_lib

PROBE = "import json, sys, keras_resnet; print(json.dumps(sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules))))"


def one_run(checkout, code="import keras_resnet"):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=checkout, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="*", type=pathlib.Path, default=[pathlib.Path(".")])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    args_lib.require_positive(parser, args, ["repeats"])
    checkouts = [path.resolve() for path in args.checkouts]
    times = {path: [] for path in checkouts}
    for _ in range(args.repeats):
        for path in checkouts:
            times[path].append(one_run(path))
    for path in checkouts:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(path)}
        loaded = subprocess.run([sys.executable, "-c", PROBE], cwd=path, env=env, check=True,
                                capture_output=True, text=True).stdout.split("\n")[-2]
        runs = " ".join(f"{t:.3f}" for t in sorted(times[path]))
        print(f"{path}: median {statistics.median(times[path]):.3f} s over {args.repeats} runs ({runs}); "
              f"loads {json.loads(loaded) or 'none of keras, tensorflow, jax'}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
