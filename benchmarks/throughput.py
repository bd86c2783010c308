"""Training and inference images/s: our models beside their peers, in one run.

    python -m benchmarks.throughput --model resnet50 --mode train --batch 32 \
        --compare keras_applications,keras_hub,keras_cv --repeats 5
    python -m benchmarks.throughput --model resnet18 --mode infer --compare keras_hub,keras_cv
    python -m benchmarks.throughput --model resnet20 --image-size 32 --batch 128 --compare none
    python -m benchmarks.throughput --model resnet50 --backend jax --no-jit --mixed-precision

Every model gets the same architecture and head (global average pooling, a
1000-way softmax dense layer; 10-way for the CIFAR nets) and the same random
inputs. After warm-up, repetitions are interleaved (ours, peer, ours, peer,
...) so that machine noise hits all of them, and the medians are reported
with the ratio ours / peer. keras-hub strides its bottlenecks in the 3x3 conv
("v1.5"), so it is compared with our `variant="v1.5"`; keras.applications and
keras-cv stride in the 1x1 conv, like our default. A peer that lacks the
depth (keras.applications has no ResNet-18/34, no peer has the CIFAR nets) is
listed as skipped. Batch-1 `predict_on_batch` latency is timed as well.

Results go to stdout as a markdown table, and optionally to --json / --markdown.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

from benchmarks import args as args_lib

PEERS = ("keras_applications", "keras_hub", "keras_cv")
IMAGENET_BLOCKS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="resnet50", help="resnet<depth>, e.g. resnet50, resnet20")
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=None,
                        help="default 224 (ImageNet nets) or 32 (CIFAR nets)")
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default=None,
                        help="default: $KERAS_BACKEND or tensorflow")
    parser.add_argument("--compare", default="keras_applications,keras_hub,keras_cv",
                        help=f"comma-separated peers from {PEERS}, or 'none'")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps timed per repetition")
    parser.add_argument("--latency-calls", type=int, default=10)
    parser.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                        help="XLA/jit compile (default: Keras's 'auto')")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 policy")
    parser.add_argument("--json", help="write results as JSON here")
    parser.add_argument("--markdown", help="write the results table here")
    args = parser.parse_args(argv)

    if not args.model.startswith("resnet") or not args.model[6:].isdigit():
        parser.error(f"--model must look like resnet<depth>, e.g. resnet50. Received {args.model!r}.")
    args.depth = int(args.model[6:])
    peers = [] if args.compare in ("", "none") else args.compare.split(",")
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"--compare takes peers from {PEERS} or 'none'. Received {unknown}.")
    args.peers = peers
    args_lib.require_positive(parser, args, ("batch", "repeats", "steps", "latency_calls"))
    return args


def peer_builder(peer, depth, size, classes):
    """Returns a function that builds `peer`'s ResNet-`depth`, or a skip reason."""
    import keras

    if depth not in IMAGENET_BLOCKS:
        return f"{peer} has no ResNet-{depth} (CIFAR family)"
    block, counts = IMAGENET_BLOCKS[depth]
    shape = (size, size, 3)

    def with_head(backbone):
        x = keras.layers.GlobalAveragePooling2D()(backbone.output)
        outputs = keras.layers.Dense(classes, activation="softmax")(x)
        return keras.Model(backbone.input, outputs, name=f"{peer}_resnet{depth}")

    if peer == "keras_applications":
        constructor = getattr(keras.applications, f"ResNet{depth}", None)
        if constructor is None:
            return f"keras.applications has no ResNet-{depth}"
        return lambda: constructor(weights=None, input_shape=shape, classes=classes)
    if peer == "keras_hub":
        import keras_hub

        return lambda: with_head(keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7],
            stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=list(counts),
            stackwise_num_strides=[1, 2, 2, 2],
            block_type="basic_block" if block == "basic" else "bottleneck_block",
            use_pre_activation=False, image_shape=shape,
        ))
    if peer == "keras_cv":
        import keras_cv

        # Built from the stage table: keras-cv's named ResNet50Backbone()
        # fetches its preset config from the network.
        return lambda: with_head(keras_cv.models.ResNetBackbone(
            stackwise_filters=[64, 128, 256, 512], stackwise_blocks=list(counts),
            stackwise_strides=[1, 2, 2, 2], include_rescaling=False, input_shape=shape,
            block_type="basic_block" if block == "basic" else "block",
        ))
    raise AssertionError(peer)


def time_models(builders, args, size, classes):
    """Builds, warms up and times every model, interleaved; returns medians."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, size, size, 3)).astype("float32")
    y = rng.integers(0, classes, args.batch)
    one = x[:1]
    jit = "auto" if args.jit is None else args.jit
    models, results = {}, {}
    for name, build in builders.items():
        start = time.perf_counter()
        model = build()
        results[name] = {"build_s": time.perf_counter() - start, "params": model.count_params()}
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                      "sparse_categorical_crossentropy", jit_compile=jit)
        step = (lambda m=model: m.train_on_batch(x, y)) if args.mode == "train" else (
            lambda m=model: m.predict_on_batch(x))
        for _ in range(2):  # trace/compile, then one warm step
            step()
        model.predict_on_batch(one)
        models[name] = (model, step)

    rates = {name: [] for name in models}
    latencies = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, (model, step) in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name].append(args.batch * args.steps / (time.perf_counter() - start))
            for _ in range(args.latency_calls):
                start = time.perf_counter()
                model.predict_on_batch(one)
                latencies[name].append(1000 * (time.perf_counter() - start))
    for name in models:
        results[name].update(
            images_per_s=statistics.median(rates[name]),
            images_per_s_runs=rates[name],
            latency_ms_batch1=statistics.median(latencies[name]),
        )
    return results


def run(args):
    import keras

    import keras_resnet
    from keras_resnet import specs

    if args.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    family = specs.resolve_family(args.depth)
    size = args.image_size or (224 if family == specs.IMAGENET else 32)
    classes = 1000 if family == specs.IMAGENET else 10

    builders = {"ours": lambda: keras_resnet.ResNet(args.depth, input_shape=(size, size, 3))}
    comparisons, skipped = {}, {}
    for peer in args.peers:
        built = peer_builder(peer, args.depth, size, classes)
        if isinstance(built, str):
            skipped[peer] = built
            continue
        ours = "ours"
        if peer == "keras_hub" and IMAGENET_BLOCKS[args.depth][0] == "bottleneck":
            ours = "ours_v1.5"
            builders[ours] = lambda: keras_resnet.ResNet(
                args.depth, input_shape=(size, size, 3), variant="v1.5")
        builders[peer] = built
        comparisons[peer] = ours

    timings = time_models(builders, args, size, classes)
    ratios = {
        peer: timings[ours]["images_per_s"] / timings[peer]["images_per_s"]
        for peer, ours in comparisons.items()
    }
    versions = {"python": platform.python_version(), "keras": keras.__version__,
                "keras_resnet": keras_resnet.__version__}
    for module in ("tensorflow", "jax", "torch", "keras_hub", "keras_cv"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "?")
    return {
        "model": args.model, "mode": args.mode, "batch": args.batch, "image_size": size,
        "backend": keras.backend.backend(), "jit": "auto" if args.jit is None else args.jit,
        "dtype_policy": keras.config.dtype_policy().name, "repeats": args.repeats,
        "steps": args.steps,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "versions": versions,
        "results": timings, "ratios_ours_over_peer": ratios, "compared_with": comparisons,
        "skipped": skipped,
    }


def markdown(report):
    lines = [
        f"{report['model']} {report['mode']}, batch {report['batch']}, "
        f"{report['image_size']}x{report['image_size']}, backend {report['backend']}, "
        f"jit {report['jit']}, {report['dtype_policy']}, median of {report['repeats']}",
        "",
        "| model | img/s | batch-1 latency (ms) | build (s) | ours / peer |",
        "|---|---|---|---|---|",
    ]
    for name, r in report["results"].items():
        ratio = report["ratios_ours_over_peer"].get(name)
        ratio_text = f"{ratio:.3f} (vs {report['compared_with'][name]})" if ratio else ""
        lines.append(f"| {name} | {r['images_per_s']:.1f} | {r['latency_ms_batch1']:.1f} | "
                     f"{r['build_s']:.2f} | {ratio_text} |")
    for peer, why in report["skipped"].items():
        lines.append(f"| {peer} | skipped: {why} | | | |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    # The backend is fixed when keras is first imported.
    backend = args.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise SystemExit(f"keras is already imported with backend {current!r}; "
                             f"run in a fresh process for --backend {backend}.")
    os.environ["KERAS_BACKEND"] = backend
    report = run(args)
    table = markdown(report)
    print(table)
    for path, text in ((args.json, json.dumps(report, indent=2)), (args.markdown, table + "\n")):
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)
    return report


if __name__ == "__main__":
    main()
