"""Trains a recipe: `python -m zoo.train --recipe=NAME --workdir=DIR`.

    python -m zoo.train --recipe=cifar10_resnet20 --workdir=/tmp/r20
        Offline demo: the embedded digits with a short schedule, a few
        minutes on 2 CPU cores; prints the test accuracy.
    python -m zoo.train --recipe=cifar10_resnet20 --workdir=/tmp/r20 --dataset=tfds:cifar10
        The paper's experiment (64k steps).

The default `--dataset=digits` is scikit-learn's bundled 8x8 digits, which
ships with an installed dependency and needs no download. Because it is a
demo, it brings a short schedule (`demo_schedule`): 300 steps of batch
64 (about 14 passes over the 1,437 training digits), no flips (digits are
not mirror-symmetric), a 200-image val split. Any other
dataset runs the recipe as registered. `--steps` and `--set` apply last.

`--dataset=paper` trains on the recipe's own data (`Recipe.dataset`, the
paper's: tfds:cifar10 or tfds:imagenet2012).

The run writes into DIR: config.json (the resolved recipe), .lock (while
it trains), checkpoints/ (Keras BackupAndRestore every `epoch_steps`
steps, with the model's per-pixel mean), logs/ (TensorBoard), history.csv,
results.json, model.keras (raw 0..255 RGB in, probabilities out, mean
subtraction inside) and classes.json. Running the same command again
resumes from the last checkpoint, repeats at most `epoch_steps` steps and
ends with the weights an uninterrupted run ends with (the batches follow
from the global step; see `zoo.pipeline` for the one exception).
"""

import dataclasses
import importlib
import math

from absl import flags

from zoo import cli
from zoo import datasets
from zoo import distribute
from zoo import recipes
from zoo import run

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
LOOPS = ("auto", "scan", "fit")
DEMO_STEPS = 300
COMMAND = "zoo.train"

FLAGS = flags.FLAGS


def demo_schedule(recipe):
    """The short schedule the embedded digits run with (a `runlocal` switch)."""
    return dataclasses.replace(
        recipe,
        classes=len(datasets.class_names(datasets.Dataset(datasets.DIGITS))),
        steps=DEMO_STEPS,
        batch_size=64,
        epoch_steps=50,
        val_size=200,
        flip=False,
        warmup_steps=min(recipe.warmup_steps, DEMO_STEPS // 5),
    )


def resolve(name, dataset=datasets.DIGITS, steps=None, assignments=()):
    """The recipe a command line asks for.

    Args:
        name: recipe name.
        dataset: dataset spec; the digits demo shortens the schedule.
        steps: total steps; `epoch_steps` shrinks to divide it if needed.
        assignments: "key=value" overrides, applied last.

    Raises:
        ValueError: unknown recipe, bad dataset spec or bad override.
    """
    recipe = recipes.get(name)
    if datasets.parse(dataset, recipe).kind == datasets.DIGITS:
        recipe = demo_schedule(recipe)
    if steps is not None:
        if steps < 1:
            raise ValueError(f"`--steps` must be >= 1. Received steps={steps}.")
        recipe = dataclasses.replace(
            recipe, steps=steps, epoch_steps=math.gcd(steps, recipe.epoch_steps)
        )
    return recipes.override(recipe, list(assignments))


def train_and_evaluate(
    recipe,
    workdir,
    dataset=datasets.DIGITS,
    data_dir=None,
    strategy="auto",
    mixed_precision="float32",
    tpu=None,
    verbose=1,
    loop="auto",
    seeds=None,
):
    """Trains `recipe`, evaluates it on the test split and writes the run.

    Resumes from `workdir` if it holds an unfinished run of the same
    config; returns the stored results if the run is already complete.

    Args:
        recipe: the resolved `Recipe`.
        workdir: output directory (`~` expanded).
        dataset: a spec (digits, paper, tfds:NAME, folder:PATH) or a
            `zoo.datasets.Dataset`, taken apart here once.
        data_dir: tfds data directory.
        strategy: a `zoo.distribute` strategy name (TensorFlow backend).
        mixed_precision: a Keras dtype policy name.
        tpu: TPU address for strategy="tpu".
        verbose: Keras verbosity; 1 shows a progress bar.
        loop: without TensorFlow, "scan" trains with `zoo.scan_loop` (data
            on the device, an epoch per compiled program), "fit" with
            Keras's `fit`; "auto" picks scan on one GPU/TPU, fit otherwise
            (XLA's CPU backend runs loops of convolutions ~25x slower).
            Both draw the same batches, so a run may resume with either.
        seeds: several seeds (e.g. (0, 1, 2)) to train side by side in one
            program, replica k in workdir/seed_k (`zoo.seeds`); the recipe's
            own seed is then not used.

    Returns:
        The results dict (also written to workdir/results.json); with
        `seeds`, the group's summary.

    Raises:
        ValueError: a bad argument, a missing dataset, or a workdir that
            holds a different run.
        run.WorkdirBusy: another process trains in `workdir`.
        nonfinite.NonFiniteError: the loss or weights became NaN or infinite.
    """
    import keras

    # Before the first JAX computation: XLA's CPU reductions must keep NaN
    # (keras_resnet/xla_cpu.py).
    importlib.import_module("keras_resnet")

    backend = keras.backend.backend()
    # First, before any TF op: multi-worker collectives must be configured
    # at program start.
    tf_strategy = distribute.get_strategy(strategy, tpu) if backend == "tensorflow" else None
    _check_arguments(backend, strategy, mixed_precision, loop)
    dataset = datasets.parse(dataset, recipe)
    config = run.make_config(recipe, dataset, data_dir, mixed_precision)
    data_dir = config["data_dir"]
    _check_model_args(recipe)
    datasets.check_source(dataset, data_dir)
    _check_classes(recipe, dataset, data_dir)
    workdir = run.directory(workdir)
    if seeds is not None:
        from zoo import seeds as seeds_lib

        return seeds_lib.train_and_evaluate(
            recipe, seeds, workdir, dataset, data_dir, mixed_precision, verbose, loop
        )
    with run.opened(workdir, config, recipe, _worker(tf_strategy)) as results:
        if results is not None:
            return results
        keras.config.set_dtype_policy(mixed_precision)
        keras.utils.set_random_seed(recipe.seed)
        return _fit(recipe, workdir, dataset, data_dir, (tf_strategy, strategy), verbose, loop)


def _fit(recipe, workdir, dataset, data_dir, strategy, verbose, loop):
    """Trains in the opened run with the backend's loop; returns the results.

    `strategy` is (the tf.distribute strategy or None, its --strategy name).
    """
    tf_strategy, name = strategy
    if tf_strategy is not None:
        from zoo import fit_tf

        return fit_tf.run(recipe, workdir, dataset, data_dir, tf_strategy, verbose, name)
    from zoo import fit_arrays

    return fit_arrays.run(recipe, workdir, dataset, data_dir, verbose, loop)


def _check_arguments(backend, strategy, mixed_precision, loop):
    """Refuses a precision, loop or strategy this backend cannot train with, saying what can."""
    if mixed_precision not in POLICIES:
        raise ValueError(
            f"`mixed_precision` must be one of {POLICIES}. Received {mixed_precision!r}."
        )
    if loop not in LOOPS:
        raise ValueError(f"`loop` must be one of {LOOPS}. Received {loop!r}.")
    if backend == "tensorflow" and loop == "scan":
        raise ValueError(
            "--loop=scan needs KERAS_BACKEND=jax; the TensorFlow backend trains with "
            "Keras's fit under tf.distribute (--loop=auto or fit)."
        )
    if backend != "tensorflow" and strategy != "auto":
        raise ValueError(
            f"--strategy={strategy} needs the TensorFlow backend; KERAS_BACKEND={backend} "
            "uses keras.distribution.DataParallel over all devices with --strategy=auto."
        )


def _worker(tf_strategy):
    """The task id of a multi-worker run's worker that is not the chief (it locks a file of its own), else None."""
    if tf_strategy is None or distribute.is_chief(tf_strategy):
        return None
    return tf_strategy.cluster_resolver.task_id


def _check_classes(recipe, dataset, data_dir):
    """Refuses a dataset whose class count is not the recipe's `classes` (its head)."""
    found = len(datasets.class_names(dataset, data_dir))
    if found != recipe.classes:
        raise ValueError(
            f"--dataset={dataset} has {found} classes, but recipe {recipe.name} trains a "
            f"{recipe.classes}-way classifier: its labels would not match the head. Pass "
            f"--set=classes={found} (or fix the dataset's class folders)."
        )


def _check_model_args(recipe):
    """The network's own checks (depth, family), before any data is read."""
    from keras_resnet import specs

    specs.get_spec(recipe.depth, recipe.family)


def main(argv):
    if len(argv) > 1:
        cli.fail(f"Unexpected arguments: {' '.join(argv[1:])}", COMMAND)
    if not FLAGS.recipe or not FLAGS.workdir:
        cli.fail(
            "--recipe and --workdir are required. Valid recipes: " + ", ".join(recipes.names()),
            COMMAND,
        )
    try:
        recipe = resolve(FLAGS.recipe, FLAGS.dataset, FLAGS.steps, FLAGS.set)
        seeds = None
        if FLAGS.seeds is not None:
            from zoo import seeds as seeds_lib

            seeds = seeds_lib.parse(FLAGS.seeds)
            if any(item.partition("=")[0].strip() == "seed" for item in FLAGS.set):
                raise ValueError(
                    "--seeds sets every replica's seed; drop --set=seed=... (or train one run "
                    "with --set=seed=k and no --seeds)."
                )
    except ValueError as error:
        cli.fail(str(error), COMMAND)
    from zoo import checkpoint
    from zoo import nonfinite

    try:
        results = train_and_evaluate(
            recipe,
            FLAGS.workdir,
            FLAGS.dataset,
            FLAGS.data_dir,
            FLAGS.strategy,
            FLAGS.mixed_precision,
            FLAGS.tpu,
            loop=FLAGS.loop,
            seeds=seeds,
        )
    except (ValueError, ImportError, nonfinite.NonFiniteError, run.WorkdirBusy,
            checkpoint.CheckpointNotWritten) as error:
        cli.fail(str(error))
    except OSError as error:
        cli.fail(cli.os_error(error))
    if seeds is not None:
        print(f"{seeds_lib.describe(results)} on {FLAGS.dataset}; each seed's run in "
              f"{FLAGS.workdir}/{run.REPLICA_PREFIX}<seed>")
        return
    print(describe(recipe, FLAGS.dataset, results))


def describe(recipe, dataset, results):
    """The line zoo.train ends with: the run's figures (a figure it does not have: "-")."""
    return (
        f"{recipe.name} on {dataset}: test_accuracy={_rounded(results.get('test_accuracy'), 4)} "
        f"val_accuracy={_rounded(results.get('val_accuracy'), 4)} steps={results.get('steps')} "
        f"wall_time_s={_rounded(results.get('wall_time_s'), 0)} "
        f"images_per_s={_rounded(results.get('images_per_s'), 0)}"
    )


def _rounded(value, digits):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else value
    return f"{value:.{digits}f}"


def define_flags():
    """Defines the command-line flags (only when run as a program)."""
    flags.DEFINE_string("recipe", None, "Registered recipe name (see zoo.recipes.names()).")
    flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
    flags.DEFINE_string(
        "dataset", datasets.DIGITS,
        "digits (offline demo), paper (the recipe's own: tfds:cifar10 or tfds:imagenet2012), "
        "tfds:NAME or folder:PATH.",
    )
    flags.DEFINE_string("data_dir", None, "tfds data directory (imagenet2012: the manual download).")
    flags.DEFINE_enum("strategy", "auto", list(distribute.STRATEGIES), "tf.distribute strategy.")
    flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.")
    flags.DEFINE_integer("steps", None, "Total training steps (scales the lr schedule).")
    flags.DEFINE_multi_string("set", [], "Recipe override key=value; repeatable.")
    flags.DEFINE_enum("mixed_precision", "float32", list(POLICIES), "Keras dtype policy.")
    flags.DEFINE_string(
        "seeds", None,
        "Comma-separated seeds (e.g. 0,1,2,3,4): one replica per seed, trained side by side in "
        "one program (KERAS_BACKEND=jax, one device), replica k in WORKDIR/seed_k.",
    )
    flags.DEFINE_enum(
        "loop", "auto", list(LOOPS),
        "Without TensorFlow: scan (on-device epochs), fit (Keras fit), auto (scan on one GPU/TPU).",
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main, COMMAND, "interrupted. Nothing is lost: the run keeps its last checkpoint "
            "(every file is written whole, or not at all), and the same command resumes from it.")
