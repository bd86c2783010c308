"""Build time: our ResNet-152 beside keras.applications', and our ResNet-1202.

    python -m benchmarks.build_time                 # about 2 minutes on 2 cores
    python -m benchmarks.build_time --repeats 3 --json out.json

Both ResNet-152s are built in one process, interleaved repetition by
repetition so that machine noise hits both; it reports medians and the
ratio. Training throughput is benchmarks/throughput.py's job. Not a test:
the numbers go to BENCHMARKS.md.
"""

import argparse
import json
import os
import platform
import statistics
import time

import keras

import keras_resnet

from benchmarks import args as args_lib


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def build_times(repeats):
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(timed(lambda: keras_resnet.ResNet(152))[0])
        keras.backend.clear_session()
        theirs.append(timed(lambda: keras.applications.ResNet152(weights=None))[0])
        keras.backend.clear_session()
    return statistics.median(ours), statistics.median(theirs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--repeats-1202", type=int, default=3)
    parser.add_argument("--skip-1202", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    args_lib.require_positive(parser, args, ("repeats", "repeats_1202"))

    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "versions": {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "keras_resnet": keras_resnet.__version__,
        },
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        results["versions"]["tensorflow"] = tf.__version__

    ours, theirs = build_times(args.repeats)
    results["build_s"] = {"resnet152_ours": ours, "resnet152_keras_applications": theirs,
                          "ratio_theirs_over_ours": theirs / ours}
    print(f"ResNet-152 build: ours {ours:.2f} s, keras.applications {theirs:.2f} s "
          f"(ours is {theirs / ours:.2f}x as fast)")
    if not args.skip_1202:
        runs = []
        for _ in range(args.repeats_1202):
            runs.append(timed(lambda: keras_resnet.ResNet(1202))[0])
            keras.backend.clear_session()
        seconds = statistics.median(runs)
        results["build_s"]["resnet1202_ours"] = seconds
        results["build_s"]["resnet1202_ours_runs"] = runs
        print(f"ResNet-1202 build: {seconds:.2f} s (median of {', '.join(f'{r:.2f}' for r in runs)})")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
