"""Build time and ResNet-50 training throughput, ours beside keras.applications.

    python -m benchmarks.build_time                 # the full run (~10 min on 2 cores)
    python -m benchmarks.build_time --repeats 3 --steps 5 --json out.json

Everything is measured in one process, with the two models interleaved
repetition by repetition so that machine noise hits both; it reports
medians and ratios. Not a test: the numbers go to BENCHMARKS.md.
"""

import argparse
import json
import platform
import statistics
import time

import keras
import numpy as np

import keras_resnet


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


def train_throughput(builders, batch, steps, repeats):
    """Median images/s of `model.train_on_batch` for each builder, interleaved."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, 224, 224, 3)).astype("float32")
    y = rng.integers(0, 1000, batch)
    models = {}
    for name, build in builders.items():
        model = build()
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
        model.train_on_batch(x, y)  # trace and warm up
        model.train_on_batch(x, y)
        models[name] = model
    rates = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            seconds, _ = timed(lambda: [model.train_on_batch(x, y) for _ in range(steps)])
            rates[name].append(batch * steps / seconds)
    return {name: statistics.median(r) for name, r in rates.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="train steps per repetition")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--skip-1202", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    results = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
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
        seconds, _ = timed(lambda: keras_resnet.ResNet(1202))
        keras.backend.clear_session()
        results["build_s"]["resnet1202_ours"] = seconds
        print(f"ResNet-1202 build: {seconds:.2f} s")

    rates = train_throughput(
        {
            "ours": lambda: keras_resnet.ResNet(50),
            "keras_applications": lambda: keras.applications.ResNet50(weights=None),
        },
        args.batch, args.steps, args.repeats,
    )
    results["resnet50_train_images_per_s"] = dict(
        rates, batch=args.batch, ratio_ours_over_theirs=rates["ours"] / rates["keras_applications"]
    )
    print(f"ResNet-50 training, batch {args.batch}: ours {rates['ours']:.1f} img/s, "
          f"keras.applications {rates['keras_applications']:.1f} img/s "
          f"(ratio {rates['ours'] / rates['keras_applications']:.3f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
