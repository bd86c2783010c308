"""What keeping NaN costs under JAX on a CPU (keras_resnet/xla_cpu.py).

    python -m benchmarks.xla_nan_cost --rounds 3 --depth 20 --batch 64

`import keras_resnet` turns XLA's YNNPACK reduction fusions off on CPUs
(`--xla_cpu_experimental_ynn_fusion_type=-reduce`), because they drop NaN.
This times the zoo's JAX training step and inference with and without that
option: `benchmarks.gpu_cifar --modes step,fit` (a jitted `train_step` on a
batch already on the device, and Keras's `fit` on `zoo.fit_arrays.Batches`)
in fresh processes, alternating the two settings round by round so that
machine noise hits both, and reports medians and the ratio. Without the
option means XLA's default (`+reduce` is passed, so keras_resnet leaves
XLA_FLAGS alone).
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from benchmarks import args as args_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = {
    "NaN kept (-reduce, keras_resnet's)": "--xla_cpu_experimental_ynn_fusion_type=-reduce",
    "XLA default (+reduce)": "--xla_cpu_experimental_ynn_fusion_type=+reduce",
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--step-steps", type=int, default=10)
    args = parser.parse_args(argv)
    args_lib.require_positive(parser, args, ("rounds", "depth", "batch", "step_steps"))
    return args


def one_run(flags, args, out):
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": flags, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "benchmarks.gpu_cifar", f"--depths={args.depth}",
               "--policies=float32", "--modes=step,fit", f"--batch={args.batch}",
               f"--step-steps={args.step_steps}", "--repeats=3", "--train-size=2048",
               f"--json={out}"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(pathlib.Path(out).read_text())


def main(argv=None):
    args = parse_args(argv)
    times = {name: {"step": [], "fit": []} for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, flags in SETTINGS.items():
                report = one_run(flags, args, f"{tmp}/r{round_}.json")
                (result,) = report["results"]
                for mode in ("step", "fit"):
                    times[name][mode] += result[mode]["ms_per_step"]
                print(f"round {round_ + 1}: {name}: step "
                      f"{statistics.median(result['step']['ms_per_step']):.0f} ms, fit "
                      f"{statistics.median(result['fit']['ms_per_step']):.0f} ms", flush=True)
    names = list(SETTINGS)
    print(f"\nResNet-{args.depth}, batch {args.batch}, float32, JAX on {os.cpu_count()} CPU cores: "
          "ms per training step, medians\n")
    print("| | " + " | ".join(names) + " | ratio |")
    print("|---|---|---|---|")
    for mode in ("step", "fit"):
        medians = [statistics.median(times[name][mode]) for name in names]
        print(f"| {mode} | {medians[0]:.0f} | {medians[1]:.0f} | {medians[0] / medians[1]:.3f} |")
    return times


if __name__ == "__main__":
    main()
