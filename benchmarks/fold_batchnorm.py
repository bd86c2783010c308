"""Inference throughput of exported SavedModels, BN folded vs not.

    python benchmarks/fold_batchnorm.py                       # resnet20, resnet50
    python benchmarks/fold_batchnorm.py --models=resnet20 --rounds=5

For each model it exports two SavedModels with `keras_resnet.export`, one
with `fold_batchnorm=True`, reloads both with `tf.saved_model.load`, and
times the `serve` endpoint at batch 1 and batch 32. Timings are interleaved
(each round times both graphs, in alternating order), and the table reports
the median img/s over the rounds, so that load from other processes on the
machine hits both sides alike.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import keras_resnet
from keras_resnet import serving

SIZES = {"resnet20": 32, "resnet56": 32, "resnet110": 32, "resnet18": 224, "resnet50": 224}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet20,resnet50")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min_time", type=float, default=1.0,
                        help="seconds of calls per timing (at least one call)")
    parser.add_argument("--json", default=None, help="also write the results here")
    return parser.parse_args()


def images_per_second(fn, images, min_time):
    calls, start = 0, time.perf_counter()
    while True:
        fn(images)["probabilities"].numpy()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return calls * len(images) / elapsed


def randomize_batchnorm(model, seed=0):
    # Trained-like BN statistics; all-default ones (mean 0, var 1) would let
    # a folded graph look the same as an unfolded one in the weights.
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                               rng.normal(0, 0.1, n), rng.uniform(0.5, 2.0, n)])


def main():
    args = parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            size = SIZES[name]
            model = getattr(keras_resnet, name)()
            randomize_batchnorm(model)
            loaded = {}
            for folded in (False, True):
                path = os.path.join(tmp, f"{name}_{folded}")
                serving.export(model, path, fold_batchnorm=folded, endpoints=("serve",))
                loaded[folded] = tf.saved_model.load(path)
            for batch in (int(b) for b in args.batches.split(",")):
                images = np.random.default_rng(0).uniform(0, 1, (batch, size, size, 3)).astype("float32")
                for module in loaded.values():  # Warm up both graphs.
                    for _ in range(3):
                        module.serve(images)
                diff = np.abs(loaded[True].serve(images)["probabilities"].numpy()
                              - loaded[False].serve(images)["probabilities"].numpy()).max()
                timings = {False: [], True: []}
                for round_ in range(args.rounds):
                    order = (False, True) if round_ % 2 == 0 else (True, False)
                    for folded in order:
                        timings[folded].append(
                            images_per_second(loaded[folded].serve, images, args.min_time))
                row = {
                    "model": name, "size": size, "batch": batch,
                    "unfolded_img_s": statistics.median(timings[False]),
                    "folded_img_s": statistics.median(timings[True]),
                    "max_prob_diff": float(diff), "rounds": args.rounds,
                }
                row["speedup"] = row["folded_img_s"] / row["unfolded_img_s"]
                results.append(row)
                print(json.dumps(row), flush=True)

    print(f"\n{os.cpu_count()} CPUs, TF {tf.__version__}, median of {args.rounds} interleaved rounds")
    print("| model | input | batch | unfolded img/s | folded img/s | speedup |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['size']}x{r['size']} | {r['batch']} | "
              f"{r['unfolded_img_s']:.1f} | {r['folded_img_s']:.1f} | {r['speedup']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
