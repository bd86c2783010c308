"""Several seeds of one recipe in one compiled program: `zoo.train --seeds=0,1,2`.

    KERAS_BACKEND=jax python -m zoo.train --recipe=cifar10_resnet110 --workdir=runs/r110 \\
        --dataset=folder:/data/cifar10_jpeg --seeds=0,1,2,3,4

The paper reports ResNet-110 as the best of 5 runs with mean +- std. A CIFAR
ResNet step is latency-bound on a GPU, so K runs one after another cost K
times the time; here the K replicas train side by side: their states are
stacked on a leading axis and every step is `jax.vmap` of the one training
step over them, inside `zoo.scan_loop`'s epoch program.

Each replica is exactly the single run `--set=seed=k` would be: its own
initial weights (built under `keras.utils.set_random_seed(k)`), its own
train/val split, batch order and augmentation draws (`zoo.stream`, from k
and the global step), and `DIR/seed_k/` holds the files a single run
writes (config, history, checkpoints, results, classes, model.keras), so
`zoo.evaluate`, `zoo.export`, `zoo.plot`, `zoo.analysis` and the preset
tool work on it unchanged. The images are decoded once and held on the
device once; each replica indexes its own split of them.

- **Resume:** the replicas continue from one step, the latest epoch every
  replica has a whole checkpoint of (a kill between two replicas' saves
  leaves them one epoch apart: the one ahead resumes from its backup).
- **Divergence:** a replica whose loss or weights become NaN or infinite
  stops the group with `NonFiniteError` naming its seed and step, before
  any replica writes that epoch: every replica keeps its last checkpoint.
- **Summary:** `DIR/results.json` holds each seed's figures and the mean and
  sample std of the test error; `zoo.plot DIR` draws the seeds as a band.
- **Where it runs:** `KERAS_BACKEND=jax`, one device, CIFAR-family recipes.
  With `--loop=auto` an epoch is one program on a GPU or TPU and one
  program per step on a CPU (`zoo.scan_loop.epoch_function`); `--loop=fit`
  (Keras's `fit` trains one model) is refused, as are TensorFlow, several
  devices and ImageNet recipes, each with what to use instead.
"""

import contextlib
import dataclasses
import math
import pathlib
import statistics
import time

import numpy as np

from zoo import datasets
from zoo import recipes
from zoo import run

def parse(text):
    """'0,1,2' -> (0, 1, 2): distinct seeds >= 0, in the order given.

    Raises:
        ValueError: naming what was received.
    """
    try:
        seeds = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise ValueError(f"--seeds takes comma-separated integers, e.g. 0,1,2. Received {text!r}.") from None
    if any(seed < 0 for seed in seeds):
        raise ValueError(f"--seeds must be >= 0. Received {text!r}.")
    too_large = [seed for seed in seeds if seed > recipes.MAX_SEED]
    if too_large:
        raise ValueError(
            f"--seeds must be <= {recipes.MAX_SEED} (2**32 - 1, the largest seed numpy takes). "
            f"Received {text!r}, which holds {too_large[0]}."
        )
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds names a seed twice: the replicas would be the same run. Received {text!r}.")
    return seeds


def check_possible(recipe, loop, backend, devices):
    """Refuses, saying what to use instead, where the replicas cannot train in one program.

    Args:
        recipe: the `Recipe`.
        loop: zoo.train's --loop.
        backend: the Keras backend's name.
        devices: the devices JAX would train on.
    """
    instead = (
        f"train one run per seed instead (python -m zoo.train ... --set=seed=k, or "
        f"python -m zoo.sweep {recipe.name}:seed=0 {recipe.name}:seed=1 ...)"
    )
    if backend != "jax":
        raise ValueError(
            f"--seeds trains the replicas in one JAX program and needs KERAS_BACKEND=jax; on "
            f"KERAS_BACKEND={backend}, {instead}."
        )
    if recipe.family != recipes.CIFAR:
        raise ValueError(
            f"--seeds trains CIFAR-family recipes (in-memory data); {recipe.name} is an "
            f"{recipe.family} recipe: {instead}."
        )
    if len(devices) != 1:
        raise ValueError(
            f"--seeds trains on one device; JAX sees {len(devices)} ({', '.join(map(str, devices))}). "
            "Make one visible (e.g. CUDA_VISIBLE_DEVICES=0), or run one zoo.train per seed per "
            f"device: {instead}."
        )
    if loop == "fit":
        raise ValueError(
            "--loop=fit trains one model with Keras's fit; --seeds needs zoo.scan_loop's programs "
            f"(--loop=auto or scan). To train with fit, {instead}."
        )
    if recipe.run_eagerly:
        raise ValueError(f"--seeds compiles the replicas' step; run_eagerly=True cannot: {instead}.")


def train_and_evaluate(recipe, seeds, workdir, dataset, data_dir, mixed_precision, verbose, loop):
    """Trains `recipe` once per seed in one program; writes the replicas and the summary.

    Called by `zoo.train.train_and_evaluate(..., seeds=...)` after its own
    checks of the arguments. Finished replicas are not trained again; a
    finished group on a read-only disk reports its results.

    Args:
        recipe: the resolved `Recipe` (its own seed is not used).
        seeds: the seeds, one replica each.
        workdir: the group's directory (`zoo.run.directory`).
        dataset: a `zoo.datasets.Dataset`; data_dir: tfds data directory.
        mixed_precision, verbose, loop: as `zoo.train.train_and_evaluate` takes them.

    Returns:
        The summary (also written to workdir/results.json).
    """
    import keras

    devices = keras.distribution.list_devices() if keras.backend.backend() == "jax" else []
    check_possible(recipe, loop, keras.backend.backend(), devices)
    seeds = parse(",".join(str(s) for s in seeds))
    replicas = {seed: dataclasses.replace(recipe, seed=seed) for seed in seeds}
    with contextlib.ExitStack() as stack:
        group = run.make_group_config(recipe, dataset, data_dir, mixed_precision)
        writable = stack.enter_context(run.opened_group(workdir, group))
        results = {}
        for seed, replica in replicas.items():
            config = run.make_config(replica, dataset, data_dir, mixed_precision)
            results[seed] = stack.enter_context(run.opened(run.replica_dir(workdir, seed), config, replica))
        if not writable:  # Every replica is finished (else `opened` refused): report, write nothing.
            return run.group_results(workdir, seeds) or summarize(recipe, results, 0.0)
        todo = [seed for seed in seeds if results[seed] is None]
        start = time.perf_counter()
        if todo:
            keras.config.set_dtype_policy(mixed_precision)
            results.update(_train({s: replicas[s] for s in todo}, workdir, dataset, data_dir, verbose, loop))
        summary = summarize(recipe, {seed: results[seed] for seed in seeds}, time.perf_counter() - start,
                            trained=todo)
        run.write_group_results(workdir, summary)
    return summary


@dataclasses.dataclass
class _Replica:
    seed: int
    recipe: recipes.Recipe
    workdir: pathlib.Path
    split: datasets.SplitIndices
    model: object
    train_model: object
    callbacks: object  # keras.callbacks.CallbackList
    val: tuple


def _train(replicas, workdir, dataset, data_dir, verbose, loop):
    """Trains the replicas (seed -> Recipe) together; returns seed -> results."""
    import keras

    first = next(iter(replicas.values()))
    pool = datasets.decode(dataset, first.image_size, data_dir)
    group = [_replica(seed, recipe, pool, workdir) for seed, recipe in replicas.items()]
    epoch = _restore_together(group, first.epoch_steps)
    for replica in group:
        replica.train_model.stop_training = False
        replica.callbacks.on_train_begin()
    device = keras.distribution.list_devices()[0]
    per_step = loop == "auto" and device.lower().startswith("cpu")
    _train_epochs(group, pool, epoch, per_step, verbose)
    for replica in group:
        replica.callbacks.on_train_end()
    return {replica.seed: _finish(replica, group[0].train_model, pool.classes) for replica in group}


def _replica(seed, recipe, pool, workdir):
    """Replica `seed`: its split of `pool`, its model built as a single run builds it, its callbacks."""
    import keras

    from zoo import callbacks as callbacks_lib
    from zoo import model as model_lib
    from zoo import scan_loop

    batch = recipe.batch_size
    split = datasets.split_indices(pool, recipe)
    if len(split.train) < batch:
        raise ValueError(
            f"Seed {seed}'s training split has {len(split.train)} images, fewer than one "
            f"batch (batch_size={batch})."
        )
    # As zoo.train seeds a single run: the same initial weights.
    keras.utils.set_random_seed(seed)
    mean = pool.images[split.train].mean(axis=0, dtype=np.float64).astype(np.float32)
    model, train_model, schedule = model_lib.build_training(recipe, mean)
    directory = run.replica_dir(workdir, seed)
    callbacks = keras.callbacks.CallbackList(
        callbacks_lib.callbacks(directory, schedule, tensorboard=False),
        model=train_model, epochs=recipe.epochs, steps=recipe.epoch_steps,
    )
    x = pool.images[split.train[:batch]].astype(np.float32)
    scan_loop.prepare(train_model, x, pool.labels[split.train[:batch]])
    val = (pool.images[split.val].astype(np.float32), pool.labels[split.val])
    return _Replica(seed, recipe, directory, split, model, train_model, callbacks, val)


def _train_epochs(group, pool, first_epoch, per_step, verbose):
    """The epochs from `first_epoch` on: every replica's steps in one program, then each its epoch's end."""
    import jax

    from zoo import scan_loop

    recipe = group[0].recipe
    run_epoch = scan_loop.epoch_function(group[0].train_model, recipe.pad, replicas=True, per_step=per_step)
    images, labels = jax.device_put(pool.images), jax.device_put(pool.labels)
    for epoch in range(first_epoch, recipe.epochs):
        start = time.perf_counter()
        step = epoch * recipe.epoch_steps
        for replica in group:
            replica.train_model.reset_metrics()
            replica.callbacks.on_epoch_begin(epoch)
        state = scan_loop.stack_states([scan_loop.get_state(r.train_model) for r in group])
        state, logs, losses = run_epoch(state, images, labels, *_draws(group, step))
        _check_finite_losses(group, np.asarray(losses), step, epoch)
        for r, replica in enumerate(group):
            scan_loop.set_state(replica.train_model, scan_loop.unstack_state(state, r))
        _check_finite_weights(group, step + recipe.epoch_steps, epoch)
        train_time = time.perf_counter() - start
        shown = _end_epoch(group, epoch, {key: np.asarray(value) for key, value in logs.items()})
        if verbose:
            images_per_s = len(group) * recipe.epoch_steps * recipe.batch_size / train_time
            print(f"epoch {epoch + 1}/{recipe.epochs} step {step + recipe.epoch_steps}: " + "; ".join(shown)
                  + f" ({images_per_s:.0f} img/s over {len(group)} replicas)", flush=True)


def _draws(group, step):
    """The epoch from global `step`: each replica's batch indices, crop offsets and flips, stacked on axis 1."""
    from zoo import stream

    indices, offsets, flips = [], [], []
    for replica in group:
        recipe = replica.recipe
        local = stream.batch_indices(len(replica.split.train), recipe.batch_size, replica.seed, step,
                                     recipe.epoch_steps)
        indices.append(replica.split.train[local])
        o, f = stream.crop_offsets_and_flips(recipe.batch_size, replica.seed, step, recipe.epoch_steps,
                                             recipe.pad, recipe.flip)
        offsets.append(o)
        flips.append(f)
    return np.stack(indices, 1), np.stack(offsets, 1), np.stack(flips, 1)


def _end_epoch(group, epoch, logs):
    """Each replica's validation and epoch-end callbacks (history, checkpoint); returns the lines to show."""
    for replica in group:
        replica.callbacks.on_test_begin()  # Each run's history: the same train time.
    shown = []
    for r, replica in enumerate(group):
        epoch_logs = {key: float(value[r]) for key, value in logs.items()}
        if replica.recipe.val_size:
            val = _evaluate_as(group[0].train_model, replica.train_model, *replica.val, replica.recipe.batch_size)
            epoch_logs.update({f"val_{k}": v for k, v in val.items()})
        replica.callbacks.on_epoch_end(epoch, epoch_logs)
        shown.append(f"seed {replica.seed}: " + " ".join(f"{k}={v:.4f}" for k, v in epoch_logs.items()))
    return shown


def _finish(replica, evaluator, classes):
    """Replica's test split evaluated (through `evaluator`'s compiled step), and its run's files written."""
    from zoo import results as results_lib

    start = time.perf_counter()
    test = _evaluate_as(evaluator, replica.train_model, replica.split.test[0].astype(np.float32),
                        replica.split.test[1], replica.recipe.batch_size)
    test["seconds"] = time.perf_counter() - start
    return results_lib.finish(replica.workdir, replica.recipe, replica.model, replica.train_model, None,
                              classes, test=test)


def _restore_together(group, epoch_steps):
    """Restores every replica at the latest epoch all of them have a checkpoint of.

    Returns:
        That epoch (0: a new start).
    """
    from zoo import checkpoint as checkpoint_lib

    checkpoints = []
    for replica in group:
        (checkpoint,) = [c for c in replica.callbacks.callbacks if isinstance(c, checkpoint_lib.Checkpoint)]
        checkpoint.set_model(replica.train_model)
        checkpoint.set_params({"steps": epoch_steps})
        checkpoints.append(checkpoint)
    found = [set(c.epochs()) | {0} for c in checkpoints]
    epoch = max(set.intersection(*found))
    ahead = [f"seed {r.seed} at epoch {max(f)}" for r, f in zip(group, found) if max(f) > epoch]
    if ahead:
        print(f"zoo: the replicas resume together from epoch {epoch} ({', '.join(ahead)} had gone "
              "further: a kill between the replicas' saves)")
    for checkpoint in checkpoints:
        checkpoint.restore_epoch(epoch)
    return epoch


def _check_finite_losses(group, losses, first_step, epoch):
    """Raises NonFiniteError for the first replica whose loss was NaN or infinite this epoch."""
    for r, replica in enumerate(group):
        bad = np.flatnonzero(~np.isfinite(losses[:, r]))
        if bad.size:
            _diverged(group, replica, f"at step {first_step + int(bad[0]) + 1}: its training loss is "
                      f"{float(losses[bad[0], r])}", epoch)


def _check_finite_weights(group, step, epoch):
    from keras_resnet import serving

    for replica in group:
        bad = serving.nonfinite_weights(replica.train_model)
        if bad:
            _diverged(group, replica, f"by step {step}: its weights {', '.join(bad[:3])} hold NaN or "
                      "infinite values", epoch)


def _diverged(group, replica, what, epoch):
    from zoo import nonfinite

    others = [r.seed for r in group if r is not replica]
    keep = ",".join(str(s) for s in others)
    raise nonfinite.NonFiniteError(
        f"Replica seed={replica.seed} diverged {what}. The group stops before any replica "
        f"writes epoch {epoch + 1}: every replica keeps its last checkpoint (epoch {epoch}) in "
        f"its {run.REPLICA_PREFIX}k/{run.CHECKPOINTS}. "
        + (f"Rerun the same command with --seeds={keep} to go on without it, or " if others else "")
        + "train it in a new --workdir with a smaller learning rate (e.g. --set=lr=0.01)."
    )


def _evaluate_as(evaluator, model, x, y, batch_size):
    """`model`'s evaluate, through `evaluator`'s compiled test step.

    The replicas' models have the same layers, so one compiled evaluation
    serves all: `model`'s weights are swapped into `evaluator` for the
    call. Returns {"loss", "accuracy"} as `model.evaluate` would.
    """
    import jax

    variables = evaluator.trainable_variables + evaluator.non_trainable_variables
    sources = model.trainable_variables + model.non_trainable_variables
    own = [v.value for v in variables] if evaluator is not model else None
    try:
        if own is not None:
            for variable, source in zip(variables, sources):
                # A copy: Keras's evaluate donates the arrays it is given.
                variable.assign(jax.numpy.array(source.value, copy=True))
        return evaluator.evaluate(x, y, batch_size=batch_size, return_dict=True, verbose=0)
    finally:
        if own is not None:
            for variable, value in zip(variables, own):
                variable.assign(value)


def summarize(recipe, results, wall_time_s, trained=()):
    """DIR/results.json of a group: each seed's figures, and the test error's mean and sample std.

    Args:
        recipe: the group's recipe.
        results: seed -> that replica's results.json.
        wall_time_s: this invocation's wall time.
        trained: the seeds trained by this invocation (the others had finished).
    """
    per_seed = {}
    for seed, result in results.items():
        per_seed[str(seed)] = {
            "test_accuracy": result["test_accuracy"],
            "test_error": 1.0 - result["test_accuracy"],
            "val_accuracy": result.get("val_accuracy"),
            "steps": result["steps"],
            "wall_time_s": result["wall_time_s"],
        }
    errors = [entry["test_error"] for entry in per_seed.values()]
    return {
        "kind": run.GROUP_KIND,
        "recipe": recipe.name,
        "seeds": [int(s) for s in per_seed],
        "per_seed": per_seed,
        "test_accuracy": statistics.mean(1.0 - e for e in errors),
        "test_error_mean": statistics.mean(errors),
        # The sample std (n - 1), as the paper's "mean +- std" of 5 runs; none for one seed.
        "test_error_std": statistics.stdev(errors) if len(errors) > 1 else None,
        "steps": recipe.steps,
        "wall_time_s": wall_time_s,
        "trained_now": [int(s) for s in trained],
    }


def describe(summary):
    """One line for the console: mean +- std of the test error, per seed."""
    std = summary["test_error_std"]
    spread = f" +- {100 * std:.2f}" if std is not None and math.isfinite(std) else ""
    seeds = ", ".join(f"{seed}: {100 * e['test_error']:.2f}" for seed, e in summary["per_seed"].items())
    return (f"{summary['recipe']}, seeds {', '.join(map(str, summary['seeds']))}: test error "
            f"{100 * summary['test_error_mean']:.2f}{spread}% ({seeds})")
