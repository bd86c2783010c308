"""CIFAR ResNet step time at batch 128 through the zoo's JAX path.

    KERAS_BACKEND=jax python -m benchmarks.gpu_cifar --depths 20,56,110 --json cifar.json

Builds each net exactly as `python -m zoo.train --recipe=cifar10_resnet<d>`
does under JAX (mean subtraction, SGD on the recipe's schedule, coupled
weight decay, the loss on the logits) and times one training step three
ways, to say where the time goes:

- `scan`: `zoo.scan_loop`'s compiled epoch (data on the device, one
  program per `--epoch-steps` steps, the paper's crop and flip cut on the
  device): what the zoo runs on one GPU;
- `step`: the same jitted `train_step` called from a Python loop on a batch
  already on the device (no augmentation): device time plus per-step
  dispatch;
- `fit`: Keras's `model.fit` on `zoo.fit_arrays.Batches` (batches sliced
  and augmented in host memory, copied per step): the zoo's path off GPUs.

Evaluation (the 5k validation split after each epoch, the 10k test set at
the end) is timed as well, and the paper's 64k-step schedule is projected
from the parts: steps x scan step + 160 validations + one test pass. The
images are random uint8 (speed does not depend on their content).
"""

import argparse
import json
import os
import statistics
import sys
import time

from benchmarks import args as args_lib

os.environ.setdefault("KERAS_BACKEND", "jax")

MODES = ("scan", "step", "fit")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="20,56,110", help="comma-separated CIFAR depths")
    parser.add_argument("--plain", action="store_true", help="the plain nets instead")
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {MODES}")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epoch-steps", type=int, default=400, help="steps per scan epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-steps", type=int, default=200, help="steps per `step`/`fit` repetition")
    parser.add_argument("--train-size", type=int, default=45000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    try:
        args.depths = [int(d) for d in args.depths.split(",")]
    except ValueError:
        parser.error(f"--depths takes comma-separated integers. Received {args.depths!r}.")
    args.policies = args.policies.split(",")
    bad = [p for p in args.policies if p not in ("float32", "mixed_bfloat16", "mixed_float16")]
    if bad:
        parser.error(f"--policies takes float32, mixed_bfloat16, mixed_float16. Received {bad}.")
    args.modes = args.modes.split(",")
    if not set(args.modes) <= set(MODES):
        parser.error(f"--modes takes {MODES}. Received {args.modes}.")
    args_lib.require_positive(parser, args, ("batch", "epoch_steps", "repeats", "step_steps", "train_size"))
    return args


def build(recipe, images):
    """The compiled training model `zoo.train` builds under JAX, seeded."""
    import keras

    from zoo import fit_arrays

    keras.utils.set_random_seed(0)
    return fit_arrays.build_train_model(recipe, images)[1]


def time_scan(model, images, labels, args):
    """ms per step of scan_loop's epoch program, and the first epoch's time."""
    import jax

    from zoo import scan_loop
    from zoo import stream

    scan_loop.prepare(model, images[: args.batch].astype("float32"), labels[: args.batch])
    run_epoch = scan_loop.epoch_function(model, pad=4)
    device_images, device_labels = jax.device_put(images), jax.device_put(labels)
    state = scan_loop.get_state(model)
    times = []
    for repeat in range(args.repeats + 1):
        first = repeat * args.epoch_steps
        indices = stream.batch_indices(len(labels), args.batch, 0, first, args.epoch_steps)
        offsets, flips = stream.crop_offsets_and_flips(args.batch, 0, first, args.epoch_steps, 4, True)
        start = time.perf_counter()
        state, logs, _ = run_epoch(state, device_images, device_labels, indices, offsets, flips)
        float(logs["loss"])
        times.append(time.perf_counter() - start)
    scan_loop.set_state(model, state)
    return {
        "first_epoch_s": times[0],
        "ms_per_step": [t / args.epoch_steps * 1e3 for t in times[1:]],
    }


def time_step(model, images, labels, args):
    """ms per step of the jitted train_step called from Python."""
    import jax

    from zoo import scan_loop

    x = jax.device_put(images[: args.batch].astype("float32"))
    y = jax.device_put(labels[: args.batch])
    scan_loop.prepare(model, images[: args.batch].astype("float32"), labels[: args.batch])
    step = jax.jit(model.train_step, donate_argnums=0)
    state = scan_loop.get_state(model)
    start = time.perf_counter()
    logs, state = step(state, (x, y))
    float(logs["loss"])
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.step_steps):
            logs, state = step(state, (x, y))
        float(logs["loss"])
        times.append((time.perf_counter() - start) / args.step_steps * 1e3)
    scan_loop.set_state(model, state)
    return {"first_step_s": first, "ms_per_step": times}


def time_fit(model, images, labels, args):
    """ms per step of Keras fit on host-memory Batches (after a warm-up epoch)."""
    import keras

    from zoo import fit_arrays

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    batches = fit_arrays.Batches(images, labels, args.batch, args.step_steps, 0, 4, True)
    timer = Timer()
    model.fit(
        batches, epochs=args.repeats + 1, shuffle=False, verbose=0,
        callbacks=[batches.epoch_callback, timer],
    )
    return {
        "first_epoch_s": timer.times[0],
        "ms_per_step": [t / args.step_steps * 1e3 for t in timer.times[1:]],
    }


def time_eval(model, images, labels, args):
    """Seconds to evaluate 5,000 and 10,000 images (second call; first compiles)."""
    x = images[:10000].astype("float32")
    y = labels[:10000]
    model.evaluate(x[:5000], y[:5000], batch_size=args.batch, verbose=0)
    out = {}
    for n in (5000, 10000):
        start = time.perf_counter()
        model.evaluate(x[:n], y[:n], batch_size=args.batch, verbose=0)
        out[f"eval_{n}_s"] = time.perf_counter() - start
    return out


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import jax
    import keras
    import numpy as np

    from zoo import recipes

    if keras.backend.backend() != "jax":
        sys.exit(f"Run with KERAS_BACKEND=jax. Received {keras.backend.backend()!r}.")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.train_size, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.train_size).astype(np.int32)
    rows = []
    for depth in args.depths:
        for policy in args.policies:
            keras.config.set_dtype_policy(policy)
            kind = "plain" if args.plain else "resnet"
            recipe = recipes.get(f"cifar10_{kind}{depth}")
            row = {"net": f"{kind}-{depth}", "policy": policy, "device": jax.devices()[0].device_kind}
            for mode in args.modes:
                model = build(recipe, images)
                row[mode] = {"scan": time_scan, "step": time_step, "fit": time_fit}[mode](
                    model, images, labels, args
                )
                row[mode]["median_ms"] = statistics.median(row[mode]["ms_per_step"])
                print(f"{row['net']} {policy} {mode}: {row[mode]['median_ms']:.3f} ms/step", flush=True)
            row.update(time_eval(model, images, labels, args))
            if "scan" in row:
                steps = recipe.steps
                row["projected_64k_min"] = (
                    steps * row["scan"]["median_ms"] / 1e3
                    + recipe.epochs * row["eval_5000_s"]
                    + row["eval_10000_s"]
                ) / 60
            rows.append(row)
            keras.config.set_dtype_policy("float32")
            if args.json:  # after every row, so a run cut short keeps what it measured
                with open(args.json, "w") as f:
                    f.write(json.dumps({"args": vars(args), "results": rows}, indent=2))
    print("\n| net | policy | " + " | ".join(f"{m} ms/step" for m in args.modes) + " | eval 5k s | 64k steps, min |")
    print("|---|---|" + "---|" * len(args.modes) + "---|---|")
    for row in rows:
        cells = " | ".join(f"{row[m]['median_ms']:.3f}" for m in args.modes)
        projected = f"{row['projected_64k_min']:.2f}" if "projected_64k_min" in row else "-"
        print(f"| {row['net']} | {row['policy']} | {cells} | {row['eval_5000_s']:.2f} | {projected} |")


if __name__ == "__main__":
    main()
