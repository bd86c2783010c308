"""What the check of every export costs: export time, and the check's time.

    python -m benchmarks.export_check                        # resnet20, resnet50
    python -m benchmarks.export_check --models=resnet20 --rounds=3 --json=out.json

`keras_resnet.export` loads every file it writes in its runtime and compares
it with Keras on a few images before it is declared written
(`keras_resnet.export_check`). For each model and each format variant of the
table (`keras_resnet.formats.TABLE`; LiteRT int8 calibrated on 32 random
pixel images) this times the export with `verify=False`, then the check
alone (`export_check.verify_file` on the written file: the runtime's load,
the check images through the runtime, and Keras's outputs and logits), and
reports the medians over the rounds. Random weights with trained-looking BN
statistics; raw 0..255 pixels in (a Rescaling in front).
"""

import argparse
import json
import pathlib
import statistics
import tempfile
import time

import numpy as np

from benchmarks import args as args_lib

SIZES = {"resnet20": 32, "resnet56": 32, "resnet110": 32, "resnet18": 224, "resnet50": 224}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,resnet50", help=f"of {sorted(SIZES)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    args_lib.require_positive(parser, args, ("rounds",))
    unknown = sorted(set(args.models.split(",")) - set(SIZES))
    if unknown:
        parser.error(f"--models takes names from {sorted(SIZES)}. Received {unknown}.")
    return args


def pixel_model(name):
    """The named net behind a Rescaling: raw pixels in."""
    import keras

    import keras_resnet

    keras.utils.set_random_seed(0)
    size = SIZES[name]
    net = getattr(keras_resnet, name)(input_shape=(size, size, 3))
    rng = np.random.default_rng(0)
    for layer in net._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                               rng.normal(0, 0.1, n), rng.uniform(0.5, 2.0, n)])
    inputs = keras.Input((size, size, 3))
    return keras.Model(inputs, net(keras.layers.Rescaling(1 / 255)(inputs)), name=name)


def time_one(model, fmt, variant, root, calibration):
    """(export seconds with verify=False, check seconds) of one variant."""
    import keras_resnet
    from keras_resnet import export_check, formats, serving

    options = dict(variant.export_options)
    if options.get("quantization") == "int8":
        options["calibration_images"] = calibration
    path = root / f"{fmt.name}_{variant.label or 'export'}{fmt.suffix or ''}"
    start = time.perf_counter()
    keras_resnet.export(model, path, format=fmt.name, overwrite=True, verify=False, **options)
    exported = time.perf_counter() - start
    # The job export() would check, then the check alone on the written file.
    plan = serving._Plan(model, None, None, None, None, False)
    own = formats.format_options(fmt, options)
    own = fmt.check_options(own, plan) if fmt.check_options else own
    job = formats.ExportJob(plan, own, formats.metadata(fmt, plan, own), path)
    start = time.perf_counter()
    export_check.verify_file(fmt, job, path)
    return exported, time.perf_counter() - start


def run(args):
    from keras_resnet import formats

    report = {}
    for name in args.models.split(","):
        model = pixel_model(name)
        size = SIZES[name]
        calibration = np.random.default_rng(1).integers(0, 256, (32, size, size, 3)).astype(np.uint8)
        calibration[0, 0, 0], calibration[1, 0, 0] = 0, 255
        rows = [(f"{fmt.row} {variant.label}".strip(), fmt, variant)
                for fmt in formats.TABLE.values() for variant in fmt.variants if not variant.load_options]
        times = {row: [] for row, _, _ in rows}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):  # rounds interleaved over the formats
                for row, fmt, variant in rows:
                    times[row].append(time_one(model, fmt, variant, pathlib.Path(tmp), calibration))
                    print(f"{name} {row}: export {times[row][-1][0]:.2f} s, check {times[row][-1][1]:.2f} s",
                          flush=True)
        report[name] = {row: {"export_s": statistics.median(t[0] for t in runs),
                              "check_s": statistics.median(t[1] for t in runs)} for row, runs in times.items()}
    return report


def markdown(report, rounds):
    lines = [f"Medians of {rounds} rounds, seconds.", "",
             "| model | format | export (verify=False) | the check | check / export |", "|---|---|---|---|---|"]
    for name, rows in report.items():
        for row, t in rows.items():
            lines.append(f"| {name} | {row} | {t['export_s']:.2f} | {t['check_s']:.2f} | "
                         f"{t['check_s'] / t['export_s']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    report = run(args)
    print(markdown(report, args.rounds))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
