"""Step time of K seeds trained in one program (`zoo.train --seeds`), against one.

    KERAS_BACKEND=jax python -m benchmarks.seeds --depths 20,56,110 --replicas 1,2,4,8 --json seeds.json

Builds K replicas of `cifar10_resnet<d>` exactly as `zoo.seeds` does (seeds
0..K-1, each its own initial weights, the paper's crop and flip cut on the
device) and times the program `zoo.train --seeds` runs: every step
`jax.vmap` of the training step over the replicas, as one `lax.scan` per
`--steps` steps on an accelerator or one program per step on a CPU
(`--program=auto`; `scan` and `step` force one). Repetitions of each K
follow one another after a warm-up call that compiles; medians are
reported, with the time per replica-step and the speed-up over K separate
runs (K x the K=1 step time / the K-replica step time). Runs on any JAX
machine; the images are random uint8 (speed does not depend on them).
"""

import argparse
import json
import os
import statistics
import sys
import time

from benchmarks import args as args_lib

os.environ.setdefault("KERAS_BACKEND", "jax")

PROGRAMS = ("auto", "scan", "step")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=args_lib.integer_list("depths"), default=[20, 56, 110])
    parser.add_argument("--replicas", type=args_lib.integer_list("replicas"), default=[1, 2, 4, 8])
    parser.add_argument("--program", choices=PROGRAMS, default="auto")
    parser.add_argument("--policy", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    args_lib.require_positive(parser, args, ("batch", "steps", "repeats", "train_size"))
    return args


def time_group(depth, k, images, labels, args):
    """Median ms per step of k replicas of ResNet-`depth` in one program."""
    import jax
    import keras
    import numpy as np

    from zoo import model as model_lib
    from zoo import recipes
    from zoo import scan_loop
    from zoo import stream

    recipe = recipes.get(f"cifar10_resnet{depth}")
    mean = images.mean(axis=0, dtype=np.float64).astype(np.float32)
    models = []
    for seed in range(k):
        keras.utils.set_random_seed(seed)
        _, train_model, _ = model_lib.build_training(recipe, mean)
        scan_loop.prepare(train_model, images[: args.batch].astype(np.float32), labels[: args.batch])
        models.append(train_model)
    device = jax.devices()[0]
    per_step = args.program == "step" or (args.program == "auto" and device.platform == "cpu")
    run = scan_loop.epoch_function(models[0], recipe.pad, replicas=True, per_step=per_step)
    state = scan_loop.stack_states([scan_loop.get_state(m) for m in models])
    device_images, device_labels = jax.device_put(images), jax.device_put(labels)
    times = []
    for repeat in range(args.repeats + 1):
        first = repeat * args.steps
        indices = np.stack([stream.batch_indices(len(labels), args.batch, s, first, args.steps)
                            for s in range(k)], 1)
        draws = [stream.crop_offsets_and_flips(args.batch, s, first, args.steps, recipe.pad, True)
                 for s in range(k)]
        offsets, flips = np.stack([d[0] for d in draws], 1), np.stack([d[1] for d in draws], 1)
        start = time.perf_counter()
        state, logs, losses = run(state, device_images, device_labels, indices, offsets, flips)
        np.asarray(losses)  # waits for the device
        times.append((time.perf_counter() - start) / args.steps * 1e3)
    return {"program": "step" if per_step else "scan", "first_call_ms_per_step": times[0],
            "ms_per_step": times[1:], "median_ms": statistics.median(times[1:])}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import jax
    import keras
    import numpy as np

    if keras.backend.backend() != "jax":
        sys.exit(f"Run with KERAS_BACKEND=jax. Received {keras.backend.backend()!r}.")
    import keras_resnet  # noqa: F401  (NaN-keeping XLA option before JAX starts)

    keras.config.set_dtype_policy(args.policy)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.train_size, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.train_size).astype(np.int32)
    device = jax.devices()[0]
    rows = []
    for depth in args.depths:
        for k in args.replicas:
            row = {"depth": depth, "replicas": k, **time_group(depth, k, images, labels, args)}
            rows.append(row)
            print(f"ResNet-{depth} x {k}: {row['median_ms']:.1f} ms/step ({row['program']})", flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"args": vars(args), "device": str(device.device_kind),
                               "cpu_count": os.cpu_count(), "results": rows}, f, indent=2)
    print(f"\n{device.device_kind} ({device.platform}), {args.policy}, batch {args.batch} per replica, "
          f"median of {args.repeats} x {args.steps} steps\n")
    print("| net | K | ms per step | ms per replica-step | speed-up over K separate runs |")
    print("|---|---|---|---|---|")
    for row in rows:
        single = next((r["median_ms"] for r in rows if r["depth"] == row["depth"] and r["replicas"] == 1), None)
        speedup = f"{row['replicas'] * single / row['median_ms']:.2f}x" if single else "-"
        print(f"| ResNet-{row['depth']} | {row['replicas']} | {row['median_ms']:.1f} | "
              f"{row['median_ms'] / row['replicas']:.1f} | {speedup} |")
    return rows


if __name__ == "__main__":
    main()
