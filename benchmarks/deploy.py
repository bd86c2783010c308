"""Every deployment path on real images: error, agreement, speed (the table of docs/export.md).

    python -m benchmarks.deploy --zoo-run=/tmp/r20 --readme=docs/export.md --json=deploy.json
    python -m benchmarks.deploy --from-json=deploy.json --readme=docs/export.md   # tables again

For the shipped `cifar10` presets (ResNet-20 and ResNet-56, raw 0..255
pixels in) and optionally one zoo run (--zoo-run, exported with zoo.export
itself, int8 calibrated on its own training split), each model is exported
to every format and run in each format's own runtime:

    Keras float32 (the reference; `predict` and `predict_on_batch`),
    SavedModel (TensorFlow), ONNX Runtime (CPU), LiteRT float32, LiteRT
    dynamic-range, LiteRT int8 (full-integer, float in/out), OpenVINO
    float32 and OpenVINO bf16 (its CPU default on processors with bf16).

Accuracy: top-1 error on the 846 original test images and on the 10,000
test images of the JPEG q75 copy (../shared/data), top-1 agreement with
Keras and max |p - p_keras| over the 10,000, and whether an image with one
NaN pixel gets NaN out. The presets' int8 calibration images are --calibration
images of the JPEG copy's training split (a seeded sample, never test images).

Speed: images/s at batch 64 and batch-1 latency, real images, every runtime
timed in the same process, interleaved round by round so that machine noise
hits all of them; medians over --repeats rounds. ResNet-50 (ImageNet, 224,
random weights, int8 calibrated on random pixels) gets the speed columns
only. The CPU (lscpu) and the package versions are recorded.

--readme rewrites the block between the markers below in that file.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

from benchmarks import args as args_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CALIBRATION_RECORDS = {}
BEGIN = "<!-- benchmarks/deploy.py: begin -->"
END = "<!-- benchmarks/deploy.py: end -->"
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def rows():
    """[(row name, Format, Variant)]: a row per variant of every format in
    `keras_resnet.formats.TABLE` (after Keras's own two rows)."""
    from keras_resnet import formats

    return [(f"{fmt.row} {variant.label}".strip(), fmt, variant)
            for fmt in formats.TABLE.values() for variant in fmt.variants]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--depths", default="20,56", help="cifar10 preset depths")
    parser.add_argument("--zoo-run", help="a finished zoo.train workdir (CIFAR-10 classes)")
    parser.add_argument("--resnet50", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--limit", type=int, default=None, help="JPEG test images (default all)")
    parser.add_argument("--calibration", type=int, default=300, help="int8 calibration images")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--latency-calls", type=int, default=20, help="batch-1 calls per round")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--markdown", help="write the tables here")
    parser.add_argument("--readme", help="rewrite the generated block of this page (docs/export.md)")
    parser.add_argument("--from-json", help="make the tables from a saved --json report instead of running")
    args = parser.parse_args(argv)
    args_lib.require_positive(parser, args, ("repeats", "batch", "latency_calls", "calibration"))
    return args


def machine():
    """The CPU as lscpu names it, its vector/matrix flags, and the versions."""
    info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    from keras_resnet import formats

    versions = {}
    for package in ("tensorflow", "keras", *formats.deploy_packages()):
        try:
            from importlib import metadata

            versions[package] = metadata.version(package)
        except Exception:  # noqa: BLE001 - absent packages are listed as such
            versions[package] = None
    return {
        "cpu": fields.get("Model name", platform.processor()).strip(),
        "cpu_flags": [f for f in CPU_FLAGS if f in flags],
        "cores": len(os.sched_getaffinity(0)),
        # The machine is shared: its load while the benchmark starts.
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": versions,
    }


def read_jpeg_copy(archive, limit, calibration, seed=0):
    """(test images, labels) in class/file order, and `calibration` train images.

    Decoded with Pillow, as zoo.datasets decodes image folders; read in two
    sequential passes over the archive (a gzip stream seeks slowly).
    """
    import io

    from PIL import Image

    def split_of(name):
        return name.split("/")[-3]

    with tarfile.open(archive) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg"))
    classes = sorted({n.split("/")[-2] for n in names})
    test = [n for n in names if split_of(n) == "test"][:limit]
    train = [n for n in names if split_of(n) == "train"]
    chosen = [train[i] for i in sorted(np.random.default_rng(seed).choice(len(train), calibration, replace=False))]
    wanted = set(test) | set(chosen)
    data = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.name in wanted:
                data[member.name] = tar.extractfile(member).read()

    def decode(name):
        return np.asarray(Image.open(io.BytesIO(data[name])).convert("RGB"))

    images = np.stack([decode(n) for n in test])
    labels = np.array([classes.index(n.split("/")[-2]) for n in test])
    return images, labels, np.stack([decode(n) for n in chosen])


def export_all(model, root, calibration, zoo_run=None):
    """Every format of `model` in `root`: {row name: (path, load options)}.

    One file per format and export options; variants that differ only in
    how they are loaded (OpenVINO f32 / bf16) share it.
    """
    import keras_resnet

    files, paths = {}, {}
    for name, fmt, variant in rows():
        key = (fmt.name, tuple(sorted(variant.export_options.items())))
        if key not in files:
            options = dict(variant.export_options)
            if options.get("quantization") == "int8":
                options["calibration_images"] = calibration
            path = root / f"{fmt.name}_{variant.label or 'export'}{fmt.suffix or ''}"
            start = time.perf_counter()
            if zoo_run is not None:
                files[key] = zoo_export(zoo_run, fmt, path, options)
            else:
                files[key] = keras_resnet.export(model, path, format=fmt.name, **options)
            print(f"  exported {name} in {time.perf_counter() - start:.1f} s", flush=True)
        paths[name] = (files[key], variant.load_options)
    return paths


def zoo_export(workdir, fmt, path, options):
    """The zoo run's export through zoo.export itself (int8: its own calibration)."""
    from zoo import export

    # zoo.export's own options (it writes every SavedModel endpoint).
    extra = {"quantization": options["quantization"]} if "quantization" in options else {}
    written = export.export_run(workdir, **{fmt.zoo_flag: path}, **extra)
    if len(written) > 1:  # int8: the record of its calibration images
        record = json.loads(pathlib.Path(written[1]).read_text())
        CALIBRATION_RECORDS[str(workdir)] = {k: record[k] for k in ("images", "dataset", "split", "selection")}
    return written[0]


def runners(model, paths):
    """{row name: images -> probabilities} for every row."""
    from keras_resnet import runtimes

    found = {
        "Keras predict": lambda x: model.predict(x, batch_size=len(x), verbose=0),
        "Keras predict_on_batch": lambda x: np.asarray(model.predict_on_batch(x)),
    }
    for name, (path, load_options) in paths.items():
        found[name] = runtimes.load(path, **load_options)
    return found


def in_batches(fn, images, batch=500):
    return np.concatenate([fn(images[i:i + batch]) for i in range(0, len(images), batch)])


def accuracy(run, sets):
    """Error on each set, agreement and max |p - p_keras| on the last, NaN kept."""
    reference = {name: in_batches(run["Keras predict"], x) for name, (x, _) in sets.items()}
    last = list(sets)[-1]
    nan_image = sets[last][0][:2].astype(np.float32)
    nan_image[0, 5, 7, 1] = np.nan
    rows = {}
    for name, fn in run.items():
        if name == "Keras predict_on_batch":
            continue
        probs = {s: reference[s] if name == "Keras predict" else in_batches(fn, x) for s, (x, _) in sets.items()}
        nan_out = fn(nan_image)
        rows[name] = {
            **{f"error_{s}": float(np.mean(probs[s].argmax(1) != y)) for s, (_, y) in sets.items()},
            "agreement": float(np.mean(probs[last].argmax(1) == reference[last].argmax(1))),
            "max_abs_diff": float(np.abs(probs[last] - reference[last]).max()),
            "nan_out": bool(np.isnan(nan_out[0]).all() and np.isfinite(nan_out[1]).all()),
        }
    return rows


def speed(run, images, args):
    """Median images/s at --batch and ms at batch 1, rounds interleaved."""
    batch, one = images[: args.batch].astype(np.float32), images[:1].astype(np.float32)
    for fn in run.values():  # warm-up: first calls allocate and compile
        fn(batch), fn(one)
    rates = {name: [] for name in run}
    latencies = {name: [] for name in run}
    for _ in range(args.repeats):
        for name, fn in run.items():
            start = time.perf_counter()
            for _ in range(3):
                fn(batch)
            rates[name].append(3 * len(batch) / (time.perf_counter() - start))
            calls = []
            for _ in range(args.latency_calls):
                start = time.perf_counter()
                fn(one)
                calls.append(1000 * (time.perf_counter() - start))
            latencies[name].append(statistics.median(calls))
    return {
        name: {"images_per_s": statistics.median(rates[name]), "latency_ms": statistics.median(latencies[name]),
               "images_per_s_rounds": rates[name], "latency_ms_rounds": latencies[name]}
        for name in run
    }


def sizes(paths):
    """{row name: MB} of each file, once (the rows that share a file have none)."""
    def size(path):
        path = pathlib.Path(path)
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        return sum(p.stat().st_size for p in files) / 1e6

    return {name: size(path) for name, (path, load_options) in paths.items() if not load_options}


def benchmark_model(label, model, args, sets, calibration, speed_images, zoo_run=None, accuracy_too=True):
    print(f"{label}:", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_all(model, pathlib.Path(tmp), calibration, zoo_run)
        run = runners(model, paths)
        result = {"sizes_mb": sizes(paths)}
        if accuracy_too:
            result["accuracy"] = accuracy(run, sets)
        result["speed"] = speed(run, speed_images, args)
    return result


def run(args):
    import keras

    import keras_resnet

    report = {"machine": machine(), "args": vars(args), "models": {}}
    data = pathlib.Path(args.data_dir)
    head = np.load(data / "cifar10_original_test_head.npz")
    jpeg_x, jpeg_y, calibration = read_jpeg_copy(data / "cifar10_jpeg.tar.gz", args.limit, args.calibration)
    sets = {"original_846": (head["x"], head["y"]), "jpeg_10k": (jpeg_x, jpeg_y)}
    report["images"] = {"original_846": len(head["y"]), "jpeg_10k": len(jpeg_y),
                        "calibration": f"{len(calibration)} JPEG-copy training images (seeded sample)"}
    for depth in [int(d) for d in args.depths.split(",") if d]:
        model = keras_resnet.ResNet(depth, weights="cifar10", include_preprocessing=True)
        report["models"][f"cifar10 preset ResNet-{depth}"] = benchmark_model(
            f"ResNet-{depth}", model, args, sets, calibration, jpeg_x)
    if args.zoo_run:
        from zoo import run

        model, _ = run.load_run(run.directory(args.zoo_run))
        calibration_record = pathlib.Path(args.zoo_run)
        label = f"zoo run {calibration_record.name}"
        report["models"][label] = benchmark_model(label, model, args, sets, None, jpeg_x, zoo_run=args.zoo_run)
        results = json.loads((calibration_record / run.RESULTS).read_text())
        report["models"][label]["zoo_results"] = {k: results.get(k) for k in ("test_accuracy", "steps")}
        report["models"][label]["calibration"] = CALIBRATION_RECORDS.get(str(args.zoo_run))
    if args.resnet50:
        keras.utils.set_random_seed(0)
        model = keras_resnet.resnet50(weights=None)
        pixels = np.random.default_rng(0).integers(0, 256, (args.batch, 224, 224, 3)).astype(np.float32)
        report["models"]["ResNet-50 (random weights, 224x224)"] = benchmark_model(
            "ResNet-50", model, args, None, pixels[:32], pixels, accuracy_too=False)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def markdown(report):
    m = report["machine"]
    lines = [
        f"CPU: {m['cpu']}, {m['cores']} cores, flags {', '.join(m['cpu_flags'])}; load average "
        f"{' / '.join(map(str, m['load_average_1_5_15min']))} (1/5/15 min) at the start, "
        f"{' / '.join(map(str, report['load_average_at_end']))} at the end (a shared machine). "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ".",
        f"Speed: medians of {report['args']['repeats']} interleaved rounds; batch {report['args']['batch']} "
        f"images/s and batch-1 ms. Errors: on the {report['images']['original_846']} original test images and "
        f"the {report['images']['jpeg_10k']} JPEG-copy test images; agreement and max |p - p_keras| on the latter. "
        f"Preset int8 calibration: {report['images']['calibration']}.",
        "",
    ]
    for label, result in report["models"].items():
        lines += [f"**{label}**" + _zoo_note(result), ""]
        accuracy_too = "accuracy" in result
        head = ["runtime"]
        if accuracy_too:
            head += [f"error {report['images']['original_846']} orig.", f"error {report['images']['jpeg_10k']} JPEG",
                     "agreement", "max \\|p - p_keras\\|", "NaN out"]
        head += ["img/s (b64)", "ms (b1)", "x Keras predict (b64 / b1)", "MB"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        keras = result["speed"]["Keras predict"]
        for name, timing in result["speed"].items():
            cells = [name]
            if accuracy_too:
                a = result["accuracy"].get(name)
                cells += ["", "", "", "", ""] if a is None else [
                    f"{100 * a['error_original_846']:.2f}%", f"{100 * a['error_jpeg_10k']:.2f}%",
                    f"{100 * a['agreement']:.2f}%", "0 (reference)" if name == "Keras predict" else f"{a['max_abs_diff']:.1e}",
                    "yes" if a["nan_out"] else "**no**"]
            cells += [f"{timing['images_per_s']:.0f}", f"{timing['latency_ms']:.2f}",
                      f"{timing['images_per_s'] / keras['images_per_s']:.2f} / {keras['latency_ms'] / timing['latency_ms']:.2f}",
                      f"{result['sizes_mb'][name]:.1f}" if name in result["sizes_mb"] else ""]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _zoo_note(result):
    zoo = result.get("zoo_results")
    if not zoo:
        return ""
    note = f" (zoo.train, {zoo['steps']} steps, its own test accuracy {100 * zoo['test_accuracy']:.2f}%"
    calibration = result.get("calibration")
    if calibration:
        note += (f"; int8 calibrated by zoo.export on {calibration['images']} images of the run's training "
                 f"split, {calibration['selection']}")
    return note + ")"


def update_readme(path, table, command):
    text = pathlib.Path(path).read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} block to rewrite.")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = f"{BEGIN}\nGenerated by `{command}`.\n\n{table}\n{END}"
    pathlib.Path(path).write_text(head + block + tail)


def _command(used):
    """The command line that ran a report: its arguments that differ from the defaults."""
    defaults = vars(parse_args([]))
    skip = ("json", "markdown", "readme", "from_json")
    parts = []
    for name, value in used.items():
        if name in skip or defaults.get(name) == value:
            continue
        flag = "--" + name.replace("_", "-")
        parts.append(f"--no-{flag[2:]}" if value is False else flag if value is True else f"{flag}={value}")
    return " ".join(["python -m benchmarks.deploy"] + parts)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    report = json.loads(pathlib.Path(args.from_json).read_text()) if args.from_json else run(args)
    command = _command(report["args"])
    table = markdown(report)
    print(table)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        pathlib.Path(args.markdown).write_text(table + "\n")
    if args.readme:
        update_readme(args.readme, table, command)
    return report


if __name__ == "__main__":
    main()
