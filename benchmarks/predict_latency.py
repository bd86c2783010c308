"""Latency of `model.predict` on small arrays: before and after issue 28, beside `predict_on_batch`.

    python -m benchmarks.predict_latency                     # ResNet-20 and -50, batches 1 and 64
    python -m benchmarks.predict_latency --models resnet20 --batches 1 --rounds 5
    KERAS_BACKEND=jax python -m benchmarks.predict_latency --json out.json

For each model and batch, three calls on the same random images, one after
the other in every round (interleaved, so that machine noise hits all
three; each round starts with the next one, so that no call always follows
the same one), after two warm-up rounds:

    before            what `ResNetModel.predict` ran before issue 28: its
                      image checks, then `keras.Model.predict` (the data
                      adapter, the epoch iterator and the callbacks of
                      every call)
    predict           `model.predict(x, verbose=0)` now
    predict_on_batch  `model.predict_on_batch(x)`: the network alone

Medians over the rounds, in milliseconds. Targets (issue 28): `predict`
within 1.5x of `predict_on_batch` at batch 1, and no slower than `before`
at batch 64 (64 images are two of Keras's default batches of 32, so they go
to Keras's predict, as before). A call taking over a second gets at most
--slow-rounds rounds. Not a test: the numbers go to BENCHMARKS.md.
"""

import argparse
import json
import os
import platform
import statistics
import time

from benchmarks import args as args_lib

CALLS = ("before", "predict", "predict_on_batch")
SLOW_CALL_S = 1.0


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet20,resnet50",
                        help="comma-separated resnet<depth>, e.g. resnet20,resnet50")
    parser.add_argument("--batches", type=args_lib.integer_list("batches"), default=[1, 64],
                        help="comma-separated batch sizes (default 1,64)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="default 224 (ImageNet nets) or 32 (CIFAR nets)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--slow-rounds", type=int, default=5,
                        help="rounds for a configuration whose call takes over a second")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    args.depths = []
    for name in args.models.split(","):
        if not name.startswith("resnet") or not name[6:].isdigit():
            parser.error(f"--models takes names like resnet20,resnet50. Received {name!r}.")
        args.depths.append(int(name[6:]))
    args_lib.require_positive(parser, args, ("rounds", "slow_rounds", "image_size"))
    return args


def calls(model):
    """The three calls timed, by name (see the module docstring)."""
    import keras

    from keras_resnet import model_classes

    def before(x):
        model_classes._check_images(model, x)
        return keras.Model.predict(model, x, verbose=0)

    return {
        "before": before,
        "predict": lambda x: model.predict(x, verbose=0),
        "predict_on_batch": model.predict_on_batch,
    }


def measure(model, x, rounds, slow_rounds):
    """Median milliseconds per call, interleaved over `rounds` rounds."""
    timed = calls(model)
    for _ in range(2):  # warm-up: traces and compiles each shape
        for fn in timed.values():
            start = time.perf_counter()
            fn(x)
            last = time.perf_counter() - start
    if last > SLOW_CALL_S:
        rounds = min(rounds, slow_rounds)
    times = {name: [] for name in timed}
    names = list(timed)
    for round_ in range(rounds):
        # Each round starts with the next call, so that no call always follows the same one.
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            start = time.perf_counter()
            timed[name](x)
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}, rounds


def cpu_model():
    """lscpu's model name and the AVX-512 / AMX features of this CPU."""
    name, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name in ("", platform.machine()):
                    name = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = sorted(f for f in line.split(":", 1)[1].split()
                                   if f.startswith(("avx512", "amx")))
                    break
    except OSError:
        pass
    return name, flags


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    import keras_resnet

    rng = np.random.default_rng(0)
    rows = []
    for depth in args.depths:
        size = args.image_size or (224 if depth in (18, 34, 50, 101, 152) else 32)
        model = keras_resnet.ResNet(depth, input_shape=(size, size, 3))
        for batch in args.batches:
            x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
            medians, rounds = measure(model, x, args.rounds, args.slow_rounds)
            rows.append({"model": f"resnet{depth}", "image_size": size, "batch": batch, "rounds": rounds,
                         "ms": medians,
                         "predict_over_predict_on_batch": medians["predict"] / medians["predict_on_batch"],
                         "before_over_predict": medians["before"] / medians["predict"]})
            print(_row(rows[-1]), flush=True)
    name, flags = cpu_model()
    report = {"backend": keras.backend.backend(), "keras": keras.__version__, "cpu": name, "cpu_flags": flags,
              "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
              "load_average": os.getloadavg()[0], "rows": rows}
    print()
    print(table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


def _row(row):
    ms = row["ms"]
    return (f"| {row['model']} | {row['image_size']}x{row['image_size']} | {row['batch']} | {row['rounds']} | "
            f"{ms['before']:.1f} | {ms['predict']:.1f} | {ms['predict_on_batch']:.1f} | "
            f"{row['predict_over_predict_on_batch']:.2f}x | {row['before_over_predict']:.1f}x |")


def table(report):
    """The results as a markdown table, with the machine they came from."""
    lines = [
        f"{report['backend']} backend, Keras {report['keras']}, {report['cpu']} ({report['cores']} cores; "
        f"{', '.join(report['cpu_flags']) or 'no AVX-512'}), load average {report['load_average']:.1f}",
        "",
        "| model | input | batch | rounds | before (ms) | predict (ms) | predict_on_batch (ms) | "
        "predict / predict_on_batch | before / predict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [_row(row) for row in report["rows"]])


if __name__ == "__main__":
    main()
