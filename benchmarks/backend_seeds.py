"""The README's main command on TensorFlow and on JAX, seed by seed.

    python -m benchmarks.backend_seeds --seeds 0-7 --root /tmp/backend_seeds --markdown seeds.md

Runs `python -m zoo.train --recipe=cifar10_resnet20 --workdir=ROOT/<backend>/seed_<s>
--set=seed=<s>` (the digits demo, 300 steps) once per backend and seed, one
process at a time, alternating backends so that machine noise hits both, and
prints a markdown table of each run's test accuracy and wall time, the
lowest accuracy per backend and the median time. A statistical check, not a
test: issue 18's bar is no seed below 0.95 on either backend. Finished runs
under ROOT are read back, not retrained (delete ROOT to start over); each
run's process time is kept beside it in seed_<s>.seconds.json.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

from benchmarks import args as args_lib

BACKENDS = ("tensorflow", "jax")
REPO = pathlib.Path(__file__).resolve().parents[1]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    seeds = args_lib.integer_list("seeds", minimum=0, ranges=True)
    parser.add_argument("--seeds", type=seeds, default=seeds("0-7"))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--root", required=True, help="where the runs go (ROOT/<backend>/seed_<s>)")
    parser.add_argument("--recipe", default="cifar10_resnet20")
    parser.add_argument("--markdown", help="also write the table here")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    args.backends = args.backends.split(",")
    bad = [b for b in args.backends if b not in BACKENDS]
    if bad:
        parser.error(f"--backends takes {', '.join(BACKENDS)}. Received {bad}.")
    return args


def train(backend, seed, workdir, recipe):
    """One README main command; returns (results dict, wall seconds of the process)."""
    results = workdir / "results.json"
    timing = workdir.with_name(workdir.name + ".seconds.json")
    if results.exists():
        seconds = json.loads(timing.read_text())["process_s"] if timing.exists() else None
        return json.loads(results.read_text()), seconds
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "zoo.train", f"--recipe={recipe}", f"--workdir={workdir}",
               f"--set=seed={seed}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} (KERAS_BACKEND={backend}) failed:\n{done.stderr[-3000:]}")
    timing.write_text(json.dumps({"process_s": seconds}))
    return json.loads(results.read_text()), seconds


def cpu_name():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    args = parse_args(argv)
    root = pathlib.Path(args.root).expanduser()
    runs = {backend: {} for backend in args.backends}
    for seed in args.seeds:
        for backend in args.backends:
            result, seconds = train(backend, seed, root / backend / f"seed_{seed}", args.recipe)
            runs[backend][seed] = {"test_accuracy": result["test_accuracy"], "process_s": seconds}
            print(f"{backend} seed {seed}: test_accuracy={result['test_accuracy']:.4f} "
                  f"({seconds:.0f} s)", flush=True)
    header = "| seed | " + " | ".join(f"{b} test_accuracy | {b} s" for b in args.backends) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(args.backends))]
    for seed in args.seeds:
        cells = []
        for backend in args.backends:
            run = runs[backend][seed]
            cells += [f"{run['test_accuracy']:.4f}", f"{run['process_s']:.0f}" if run["process_s"] else "-"]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    summary = {}
    for backend in args.backends:
        accuracies = [r["test_accuracy"] for r in runs[backend].values()]
        times = [r["process_s"] for r in runs[backend].values() if r["process_s"]]
        summary[backend] = {
            "min_test_accuracy": min(accuracies),
            "mean_test_accuracy": statistics.mean(accuracies),
            "median_process_s": statistics.median(times) if times else None,
        }
    cells = []
    for backend in args.backends:
        median = summary[backend]["median_process_s"]
        cells += [f"{summary[backend]['min_test_accuracy']:.4f}", f"{median:.0f}" if median else "-"]
    lines.append("| lowest; median s | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(f"\n{args.recipe}, digits demo (300 steps), {os.cpu_count()} cores, {cpu_name()}\n")
    print(table)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(table + "\n")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"recipe": args.recipe, "cpu": cpu_name(), "runs": runs, "summary": summary}, indent=2))
    return {"runs": runs, "summary": summary}


if __name__ == "__main__":
    main()
