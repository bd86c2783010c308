"""`zoo.train --seeds` under KERAS_BACKEND=jax: each replica is its single run, and a group resumes.

    KERAS_BACKEND=jax python tests/seeds_check.py FOLDER ROOT

Run by tests/test_zoo_seeds.py in its own process (Keras fixes the backend
at import) on a small real image folder. Prints "OK seeds" when every check
passed.

1. Three seeds trained side by side (`seeds=(0, 1, 2)`, one vmapped program
   per step on this CPU) against three single runs with `--set=seed=k`
   (Keras's `fit`): each replica's history.csv, its checkpoint (weights, BN
   moving statistics, SGD's momentum slots, step counter) and its results
   match its single run's.
2. The group, killed after the second epoch in the middle of its saves
   (replica 0 has saved that epoch, replicas 1 and 2 not) and run again,
   resumes every replica from epoch 1 and ends bit for bit where the
   uninterrupted group ends.

Where the tolerances come from. A replica computes its single run's
arithmetic batched over the replicas by `jax.vmap`, which XLA reduces in
other orders (BN statistics, gradients): at one state the gradients agree
to ~5e-6 relative (float32 rounding). SGD amplifies such differences, the
more the larger its steps: on these 16-image batches, after 16 to 24
steps the weights differ by O(1) at the recipe's lr 0.1, by 3-6% at 0.01
and by 2e-4 to 5e-4 at 0.001 (measured), so these runs use lr 1e-4, where
the differences only accumulate. Measured over 16 steps, against the bounds:

- weights and BN moving statistics, all arrays together: 1.4e-6 to 4.5e-6
  (bound 1e-4);
- SGD's momentum slots: 0.8e-3 to 2.7e-3 (bound 2e-2), larger because a
  gradient at slightly different weights differs more than the weights do;
- each epoch's training and validation loss: 2.6e-6 (bound 5e-5);
- accuracies: at most one image apart.

Breaking the replica stream once (seeds 1 and 2 given seed 0's
augmentation, or its batch order, or its initial weights) moved the
weights by 1.2e-2 to 1.5 and the momentum slots by 0.41 to 1.9, so the
bounds tell a mixed-up replica from rounding by two orders of magnitude.
A resumed group runs the same programs from the same saved state, so it is
checked for equality.
"""

import csv
import json
import pathlib
import sys

import h5py
import keras
import numpy as np

from zoo import callbacks as zoo_callbacks
from zoo import run as zoo_run
from zoo import train

SEEDS = (0, 1, 2)
WEIGHTS = 1e-4
MOMENTUM = 2e-2
LOSS = 5e-5


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def recipe(seed=0):
    return train.resolve(
        "cifar10_resnet20", DATASET, steps=16,
        assignments=["batch_size=16", "val_size=50", "epoch_steps=4", "lr=0.0001", f"seed={seed}"],
    )


def arrays(checkpoint):
    """{dataset path: array} of a .weights.h5 file."""
    out = {}
    with h5py.File(checkpoint, "r") as f:
        f.visititems(lambda name, item: out.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return out


def history(workdir):
    with open(workdir / "history.csv") as f:
        return list(csv.DictReader(f))


def relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def compare_to_single(replica_dir, single_dir, seed):
    """Checks replica `seed` against its single run; returns what was measured."""
    a, b = arrays(replica_dir / "checkpoints" / "latest.weights.h5"), arrays(single_dir / "checkpoints" / "latest.weights.h5")
    check(sorted(a) == sorted(b), f"seed {seed}: the checkpoints hold different arrays")
    floats = [k for k in b if np.issubdtype(b[k].dtype, np.floating)]
    for key in b:
        if key not in floats:  # The step counter.
            check(np.array_equal(a[key], b[key]), f"seed {seed}: {key} {a[key]} vs {b[key]}")
    joined = lambda d, keys: np.concatenate([d[k].ravel() for k in keys])
    weights = [k for k in floats if not k.startswith("optimizer")]
    slots = [k for k in floats if k.startswith("optimizer")]
    measured = {
        "weights_and_bn": relative(joined(a, weights), joined(b, weights)),
        "momentum": relative(joined(a, slots), joined(b, slots)),
        "loss": 0.0,
    }
    check(measured["weights_and_bn"] < WEIGHTS,
          f"seed {seed}: weights and BN statistics differ by {measured['weights_and_bn']:.2e} (bound {WEIGHTS})")
    check(measured["momentum"] < MOMENTUM,
          f"seed {seed}: SGD's momentum slots differ by {measured['momentum']:.2e} (bound {MOMENTUM})")
    rows_a, rows_b = history(replica_dir), history(single_dir)
    check([r["step"] for r in rows_a] == [r["step"] for r in rows_b], f"seed {seed}: history steps")
    for row_a, row_b in zip(rows_a, rows_b):
        for key in ("loss", "val_loss"):
            loss = abs(float(row_a[key]) / float(row_b[key]) - 1)
            measured["loss"] = max(measured["loss"], loss)
            check(loss < LOSS, f"seed {seed}, step {row_b['step']}: {key} {row_a[key]} vs {row_b[key]}")
        check(abs(float(row_a["accuracy"]) - float(row_b["accuracy"])) <= 1 / (16 * 4) + 1e-9,
              f"seed {seed}: accuracy {row_a['accuracy']} vs {row_b['accuracy']}")
        check(abs(float(row_a["val_accuracy"]) - float(row_b["val_accuracy"])) <= 1 / 50 + 1e-9,
              f"seed {seed}: val_accuracy {row_a['val_accuracy']} vs {row_b['val_accuracy']}")
    results_a = json.loads((replica_dir / "results.json").read_text())
    results_b = json.loads((single_dir / "results.json").read_text())
    check(results_a["steps"] == results_b["steps"] == 16, "steps")
    check(abs(results_a["test_accuracy"] - results_b["test_accuracy"]) <= 1 / 300 + 1e-9,
          f"seed {seed}: test_accuracy {results_a['test_accuracy']} vs {results_b['test_accuracy']}")
    return measured


class CrashInReplica0(keras.callbacks.Callback):
    """Raises after replica 0 has saved its second epoch, before the others have."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill between the replicas' saves")


def resumed_group(root):
    real_callbacks = zoo_callbacks.callbacks

    def with_crash(workdir, *args, **kwargs):
        extra = [CrashInReplica0()] if pathlib.Path(workdir).name == "seed_0" else []
        return real_callbacks(workdir, *args, **kwargs) + extra

    zoo_callbacks.callbacks = with_crash
    try:
        train.train_and_evaluate(recipe(), root / "resumed", DATASET, verbose=0, seeds=SEEDS)
        raise AssertionError("the crash did not stop the group")
    except KeyboardInterrupt:
        pass
    finally:
        zoo_callbacks.callbacks = real_callbacks
    epochs = [json.loads((root / "resumed" / f"seed_{s}" / "checkpoints" / "training_metadata.json").read_text())["epoch"]
              for s in SEEDS]
    check(epochs == [2, 1, 1], f"the crash left the replicas at epochs {epochs}, not [2, 1, 1]")
    return train.train_and_evaluate(recipe(), root / "resumed", DATASET, verbose=0, seeds=SEEDS)


def main(folder, root):
    global DATASET
    DATASET = f"folder:{folder}"
    root = pathlib.Path(root)
    check(keras.backend.backend() == "jax", "needs KERAS_BACKEND=jax")
    group = train.train_and_evaluate(recipe(), root / "group", DATASET, verbose=0, seeds=SEEDS)
    check(group["kind"] == "seeds" and group["seeds"] == list(SEEDS), f"summary {group}")
    errors = [group["per_seed"][str(s)]["test_error"] for s in SEEDS]
    check(abs(group["test_error_mean"] - np.mean(errors)) < 1e-12, "mean")
    check(abs(group["test_error_std"] - np.std(errors, ddof=1)) < 1e-12, "sample std")
    measured = {}
    for seed in SEEDS:
        single = train.train_and_evaluate(recipe(seed), root / f"single_{seed}", DATASET, verbose=0)
        check(single["steps"] == 16, "single run steps")
        measured[seed] = compare_to_single(zoo_run.replica_dir(root / "group", seed), root / f"single_{seed}", seed)
    resumed = resumed_group(root)
    for seed in SEEDS:
        a = arrays(root / "resumed" / f"seed_{seed}" / "checkpoints" / "latest.weights.h5")
        b = arrays(root / "group" / f"seed_{seed}" / "checkpoints" / "latest.weights.h5")
        check(sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in b),
              f"seed {seed}: the resumed group does not end where the uninterrupted one does")
        rows = history(root / "resumed" / f"seed_{seed}")
        check([int(r["step"]) for r in rows] == [4, 8, 12, 16], f"seed {seed}: history {rows}")
        same = history(root / "group" / f"seed_{seed}")
        check([r["loss"] for r in rows] == [r["loss"] for r in same], f"seed {seed}: resumed losses")
    check(resumed["per_seed"] == group["per_seed"] or all(
        resumed["per_seed"][k]["test_accuracy"] == group["per_seed"][k]["test_accuracy"] for k in group["per_seed"]),
        "resumed test accuracies")
    print(json.dumps({"replica_vs_single": measured}))
    print("OK seeds")


if __name__ == "__main__":
    main(*sys.argv[1:3])
