"""The run directory: its files, config check, finished or not, lock, loading model and recipe.

A zoo.train run is one directory (--workdir); every command that reads or
writes one asks this module, so the names below are written nowhere else:

    config.json     `make_config`: the resolved recipe and where its data came
                    from; written once, when the run starts (`check_same_run`)
    .lock           while a zoo.train holds the directory (`exclusive`)
    checkpoints/    Keras BackupAndRestore (`zoo.checkpoint`), with mean.npy,
                    the model's per-pixel mean (`save_mean` / `load_mean`)
    logs/           TensorBoard
    history.csv     one row per epoch (`zoo.history`)
    results.json    written when the run ends (`finish`): a run is finished
                    when it reaches the config's steps (`reaches`)
    model.keras     the trained model, raw pixels in (`load_model`)
    classes.json    class names, index = label (`read_classes`)
    eval_<mode>.json   zoo.evaluate's; train.log: zoo.sweep's
    .workers/       the other workers' copies of a multi-worker run
    seed_<k>/       a group of seeds (zoo.train --seeds): one run per seed;
                    the group's config.json says "kind": "seeds"

A file the run should hold and does not raises `MissingRunFile` (both a
FileNotFoundError and a ValueError), naming the file. Importing this module
imports neither Keras nor TensorFlow; the functions that build a model
import them.
"""

import contextlib
import json
import os
import pathlib
import time

from zoo import cli
from zoo import datasets
from zoo import files
from zoo import lock
from zoo import recipes

CONFIG = "config.json"
RESULTS = "results.json"
HISTORY = "history.csv"
MODEL = "model.keras"
CLASSES = "classes.json"
CHECKPOINTS = "checkpoints"
# Beside the checkpoint's weights: the per-pixel mean the model subtracts,
# which is a constant of the model, not one of its weights.
MEAN_FILE = "mean.npy"
# What every .npy file starts with (numpy's format header).
NPY_MAGIC = b"\x93NUMPY"
# Keras's BackupAndRestore names its latest checkpoint so.
LATEST_WEIGHTS = "latest.weights.h5"
LOGS = "logs"
LOCK = ".lock"
WORKERS = ".workers"
TRAIN_LOG = "train.log"
EVAL_PREFIX = "eval_"
REPLICA_PREFIX = "seed_"
# In a group's config.json and results.json: the directory is a group of seeds.
GROUP_KIND = "seeds"
# What zoo.train writes into a workdir (eval_<mode>.json aside).
RUN_ENTRIES = (CONFIG, CHECKPOINTS, LOGS, HISTORY, RESULTS, CLASSES, MODEL, WORKERS)


class MissingRunFile(FileNotFoundError, ValueError):
    """A file the run directory should hold is not there; the message names it.

    A FileNotFoundError (it is one) and a ValueError (what the commands
    report as a bad argument: the workdir).
    """


# --- Paths -------------------------------------------------------------------


def checkpoint_dir(workdir):
    return pathlib.Path(workdir) / CHECKPOINTS


def checkpoint_weights(workdir):
    """The latest checkpoint's weights file."""
    return checkpoint_dir(workdir) / LATEST_WEIGHTS


def eval_path(workdir, mode):
    """Where zoo.evaluate records `mode`'s accuracy."""
    return pathlib.Path(workdir) / f"{EVAL_PREFIX}{mode}.json"


def replica_dir(workdir, seed):
    """Where replica `seed` of the group in `workdir` lives: a normal run directory."""
    return pathlib.Path(workdir) / f"{REPLICA_PREFIX}{seed}"


def worker_dir(workdir, task_id):
    """Where worker `task_id` (not the chief) of a multi-worker run writes its copy."""
    return pathlib.Path(workdir) / WORKERS / f"worker-{task_id}"


def lock_path(workdir, task_id=None):
    """The lock of the run (or of worker `task_id`, which must not take the chief's)."""
    return pathlib.Path(workdir) / (LOCK if task_id is None else f"{LOCK}-worker-{task_id}")


def is_run_entry(name):
    """Whether a top-level name in a workdir is one of the run's own files."""
    return name in RUN_ENTRIES or name.startswith(EVAL_PREFIX)


# --- The config and whether it is this run -----------------------------------


def make_config(recipe, dataset, data_dir, mixed_precision):
    """What a run's config.json records: the resolved recipe and where its data came from."""
    return {
        "recipe": recipe.to_dict(),
        "dataset": dataset,
        "data_dir": data_dir,
        "mixed_precision": mixed_precision,
    }


def make_group_config(recipe, dataset, data_dir, mixed_precision):
    """A group's config.json: the run config of every replica, less its seed."""
    base = recipe.to_dict()
    base.pop("seed")
    return {"kind": GROUP_KIND, "recipe": base, "dataset": dataset, "data_dir": data_dir,
            "mixed_precision": mixed_precision}


def progress(workdir):
    """What in `workdir` shows a run trained there (more than a failed start): file names.

    A checkpoint, results.json, or a history.csv that is not empty: a run
    writes its first history row at the end of its first epoch.
    """
    workdir = pathlib.Path(workdir)
    checkpoints = workdir / CHECKPOINTS
    found = []
    if checkpoints.is_dir() and any(p.name != MEAN_FILE for p in checkpoints.iterdir()):
        found.append(f"{CHECKPOINTS}/")
    if (workdir / HISTORY).is_file() and (workdir / HISTORY).stat().st_size:
        found.append(HISTORY)
    if (workdir / RESULTS).exists():
        found.append(RESULTS)
    return found


def has_progress(workdir):
    """Whether `workdir` holds a checkpoint, results or a history (more than a failed start)."""
    return bool(progress(workdir))


def _changed(previous, config):
    """The keys in which two configs differ, the recipe's fields first."""
    old_recipe, new_recipe = previous["recipe"], config["recipe"]
    return sorted(
        k for k in set(old_recipe) | set(new_recipe) if old_recipe.get(k) != new_recipe.get(k)
    ) + [k for k in config if k != "recipe" and previous.get(k) != config[k]]


def check_same_run(workdir, config, record=True):
    """Refuses a workdir that holds progress of another run; records `config`.

    A workdir counts as holding a run once it has a checkpoint or results:
    a start that failed before its first checkpoint (a wrong dataset path,
    say) leaves nothing to lose, so the corrected command may take it over.
    Dataset paths are compared as absolute paths, so `folder:data/` and
    `folder:./data` are the same run.
    """
    workdir = pathlib.Path(workdir)
    path = workdir / CONFIG
    found = progress(workdir)
    if not path.exists() and found:
        what = f"a run's {HISTORY}" if found == [HISTORY] else "a run's checkpoints or results"
        raise ValueError(
            f"{workdir} holds {what} but no {CONFIG}, so it "
            "cannot be told whether it is this run: resuming another recipe's checkpoint, "
            f"reporting its results as this run's or overwriting its {HISTORY} would be "
            f"wrong. Restore {CONFIG} (it is written once, when the run starts), or use a new "
            "--workdir."
        )
    if path.exists() and found:
        fix = "It is written once, when the run starts; use a new --workdir (or restore it)."
        previous = files.read_json(path, "the run's config", fix)
        if not isinstance(previous, dict) or not isinstance(previous.get("recipe"), dict):
            raise ValueError(f"{path} does not hold a zoo.train config. {fix}")
        if isinstance(previous.get("dataset"), str):
            previous["dataset"] = datasets.canonical(previous["dataset"])
        if isinstance(previous.get("data_dir"), str):
            previous["data_dir"] = os.path.abspath(cli.expand(previous["data_dir"]))
        if previous != json.loads(json.dumps(config)):
            raise ValueError(
                f"{workdir} holds a different run (differs in: {', '.join(_changed(previous, config))}). "
                "Use a new --workdir, or the same flags to resume."
            )
    if record:
        files.write_json(path, config)


def check_same_group(workdir, config, record=True):
    """Refuses a workdir that holds something else than this group of seeds; records `config`.

    The seeds are not part of it: a group may be rerun with seeds added or
    dropped (each replica's own config.json says which run it is).
    """
    workdir = pathlib.Path(workdir)
    path = workdir / CONFIG
    if path.exists():
        fix = "Use a new --workdir (or restore the file)."
        previous = files.read_json(path, "the group's config", fix)
        if not isinstance(previous, dict) or previous.get("kind") != GROUP_KIND:
            raise ValueError(
                f"{workdir} holds a single run, not a group of seeds (its {CONFIG} has no "
                f"\"kind\": \"{GROUP_KIND}\"). {fix}"
            )
        if previous != config:
            raise ValueError(
                f"{workdir} holds a different group of seeds (differs in: "
                f"{', '.join(_changed(previous, config))}). "
                "Use a new --workdir, or the same flags to resume."
            )
    elif has_progress(workdir):
        raise ValueError(
            f"{workdir} holds a single run's checkpoints or results: a group of seeds lives in a "
            f"directory of its own (one {REPLICA_PREFIX}k/ run per seed). Use a new --workdir."
        )
    if record:
        files.write_json(path, config)


def is_group(workdir):
    """Whether `workdir` holds a group of seeds (its config.json says so)."""
    path = pathlib.Path(workdir) / CONFIG
    if not path.is_file():
        return False
    try:
        config = files.read_json(path, "the run's config", "")
    except ValueError:
        return False
    return isinstance(config, dict) and config.get("kind") == GROUP_KIND


def read_config(workdir):
    """The run's config.json as a dict.

    Raises:
        MissingRunFile: the directory has no config.json.
        ValueError: it is damaged or not a zoo.train config.
    """
    path = pathlib.Path(workdir) / CONFIG
    if not path.exists():
        raise MissingRunFile(f"{workdir} has no {CONFIG}: is it a zoo.train workdir?")
    fix = "It is written when the run starts; rerun zoo.train."
    config = files.read_json(path, "the run's config", fix)
    if not isinstance(config, dict) or not isinstance(config.get("recipe"), dict):
        raise ValueError(f"{path} does not hold a zoo.train config. {fix}")
    return config


def load_recipe(workdir):
    """(Recipe, config dict) of a zoo.train workdir, from its config.json.

    Raises:
        MissingRunFile: the directory has no config.json.
        ValueError: it holds a group of seeds, or a damaged config.
    """
    config = read_config(workdir)
    if config.get("kind") == GROUP_KIND:
        raise ValueError(
            f"{workdir} is a group of seeds (zoo.train --seeds), not one run: its runs are "
            f"{pathlib.Path(workdir) / (REPLICA_PREFIX + '<k>')}, and its {RESULTS} summarises them."
        )
    return recipes.Recipe.from_dict(config["recipe"]), config


# --- Finished or not ---------------------------------------------------------


def reaches(results, steps):
    """Whether `results` (a results.json's content) is of a run finished at `steps`.

    The one definition of a finished run: its results.json is a dict whose
    `steps` are the config's.
    """
    return isinstance(results, dict) and results.get("steps") == steps


def finished_results(workdir, recipe):
    """The results of the finished run in `workdir` (already checked to be this run), or None.

    Raises:
        ValueError: results.json is damaged, naming it.
    """
    path = pathlib.Path(workdir) / RESULTS
    if not path.exists():
        return None
    fix = "Delete it to evaluate the trained run again (its checkpoints are kept)."
    results = files.read_json(path, "the run's results", fix)
    if not isinstance(results, dict):
        raise ValueError(f"{path} does not hold a zoo.train results dict (it holds {results!r}). {fix}")
    if not reaches(results, recipe.steps):
        return None
    accuracy = results.get("test_accuracy")
    shown = f"{accuracy:.4f}" if isinstance(accuracy, (int, float)) else accuracy
    print(f"{workdir} holds a finished run: test_accuracy={shown}")
    return results


def is_finished(workdir, name, overrides=(), dataset=None, seeds=None):
    """Whether `workdir` holds a finished run of recipe `name` with `overrides`.

    Finished: results.json reaches the config's steps (`reaches`), and
    config.json is that recipe (its name, every override, and the dataset
    if given). With `seeds`, `workdir` must hold a finished group of
    exactly those seeds (`zoo.seeds`). Anything else, damaged files
    included, is left to `zoo.train`, which resumes, refuses a different
    run or names the damaged file: not finished.
    """
    workdir = pathlib.Path(workdir)
    try:
        results = files.read_json(workdir / RESULTS, "", "")
        config = files.read_json(workdir / CONFIG, "", "")
        recorded = config["recipe"]
        wanted = recipes.override(recipes.get(name), list(overrides)).to_dict()
        keys = ["name"] + [o.partition("=")[0].strip() for o in overrides]
        if any(recorded.get(key) != wanted[key] for key in keys):
            return False
        if dataset is not None and config.get("dataset") != datasets.canonical(
            datasets.of_recipe(dataset, recipes.get(name))
        ):
            return False
        if (config.get("kind") == GROUP_KIND) != (seeds is not None):
            return False
        if seeds is not None and results.get("seeds") != list(seeds):
            return False
        return results.get("recipe") == name and reaches(results, recorded["steps"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


# --- Loading what a run holds ------------------------------------------------


def read_classes(workdir):
    """The class names in the run's classes.json (index = label), or None if it has none.

    Raises:
        ValueError: the file is damaged or not a JSON list, naming it.
    """
    path = pathlib.Path(workdir) / CLASSES
    if not path.is_file():
        return None
    classes = files.read_json(
        path, "the run's class names", "It is written when the run ends; rerun zoo.train."
    )
    if not isinstance(classes, list):
        raise ValueError(f"{path} must hold a JSON list of class names. Received {classes!r}.")
    return classes


def class_names(workdir, config, data_dir=None):
    """The class names the run was trained on, as strings, index = label.

    From classes.json (written when the run finished), else from the run's
    own dataset (e.g. for --checkpoint before the run has finished).
    """
    classes = read_classes(workdir)
    if classes is not None:
        return [str(c) for c in classes]
    return datasets.class_names(config["dataset"], data_dir or config.get("data_dir"))


def model_file(workdir, hint=""):
    """The path of the run's model.keras.

    Raises:
        MissingRunFile: the run has none (it has not finished), naming it.
    """
    workdir = pathlib.Path(cli.expand(workdir))
    path = workdir / MODEL
    if not path.is_file():
        raise MissingRunFile(
            f"No {MODEL} in --workdir={str(workdir)!r}: the run has not finished. Run "
            f"`python -m zoo.train` to the end first (it writes the model last){hint}."
        )
    return path


def load_model_file(path):
    """Loads a run's model.keras; a clear error if the file is damaged."""
    import zipfile

    import keras

    import keras_resnet  # Registers the layers model.keras uses.

    fix = (
        "It is written last, when the run ends, via a temporary file: if it was copied "
        "or edited since, restore it; or evaluate the last checkpoint instead "
        "(zoo.evaluate --checkpoint)."
    )
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found".
        raise ValueError(
            f"{path} cannot be loaded: it is not a whole .keras archive (empty, truncated "
            f"or corrupt). {fix}"
        )
    try:
        with keras_resnet.recursion_headroom():  # ResNet-1202's graph is deep.
            return keras.saving.load_model(path, compile=False)
    except Exception as error:  # zipfile, h5py, JSON and Keras errors alike.
        raise ValueError(f"{path} cannot be loaded ({type(error).__name__}: {error}). {fix}") from None


def load_model(workdir, recipe, checkpoint=False):
    """The run's trained model: model.keras, or with `checkpoint` the last checkpoint.

    The checkpoint holds the training model's weights and optimizer state
    (the same files on every backend); the model is rebuilt from `recipe`
    and the mean saved beside them.

    Raises:
        MissingRunFile: no model.keras (or no checkpoint, or no mean file).
        ValueError: a file that cannot be loaded, naming it.
    """
    from zoo import model as model_lib

    workdir = pathlib.Path(workdir)
    if not checkpoint:
        return load_model_file(model_file(workdir, ", or use its last checkpoint (--checkpoint)"))
    path = checkpoint_weights(workdir)
    if not path.exists():
        raise MissingRunFile(f"{path} does not exist: the run has no checkpoint yet.")
    size = recipe.image_size
    # The mean is a constant of the model, not a weight: it is saved beside.
    model = model_lib.build(recipe, load_mean(workdir, (size, size, 3)))
    train_model = model_lib.training_model(model)
    model_lib.compile_model(train_model, recipe)
    train_model.optimizer.build(train_model.trainable_variables)
    try:
        train_model.load_weights(path)
    except Exception as error:  # h5py, Keras and OS errors alike: the file is bad.
        raise ValueError(
            f"{path} cannot be loaded ({type(error).__name__}: {error}). It may be "
            f"truncated by a kill during a save: try {path}.bkp (the previous "
            "checkpoint), or rerun `python -m zoo.train` to continue the run."
        ) from None
    return model


def load_run(workdir):
    """(model, class names or None) of the finished run in `workdir`.

    Raises:
        MissingRunFile: no model.keras, naming it.
        ValueError: a damaged model.keras or classes.json.
    """
    workdir = pathlib.Path(cli.expand(workdir))
    model = load_model_file(model_file(workdir))
    return model, read_classes(workdir)


def save_mean(path, mean):
    """Writes the per-pixel mean (.npy) via a temporary name."""
    import numpy as np

    with files.staged(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(mean, np.float32))


def load_mean(workdir, shape):
    """The per-pixel mean saved beside the run's checkpoint, checked against `shape`.

    Raises:
        MissingRunFile: the file is missing (a ValueError too).
        ValueError: naming the file, if it is unreadable, of another shape or
            not finite.
    """
    import numpy as np

    path = checkpoint_dir(workdir) / MEAN_FILE
    if not path.exists():
        raise MissingRunFile(
            f"{path} does not exist: the checkpoint was written by a zoo older than its "
            "per-pixel mean file, and the model rebuilt from it would subtract a wrong mean. "
            f"Evaluate {MODEL} (without --checkpoint), or rerun `python -m zoo.train` "
            "with the run's flags: the next checkpoint it writes includes the mean."
        )
    try:
        with open(path, "rb") as f:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:  # numpy would advise allow_pickle=True
                f.seek(0, 2)
                raise ValueError("it is empty" if f.tell() == 0 else "it is not a .npy file "
                                 "(it does not start with numpy's format header)")
        mean = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(
            f"{path} (the checkpoint's per-pixel mean) cannot be read: {error}. Rerun "
            "`python -m zoo.train` with the run's flags to write it again."
        ) from None
    if mean.shape != tuple(shape) or not np.isfinite(mean).all():
        raise ValueError(
            f"{path} (the checkpoint's per-pixel mean) holds an array of shape {mean.shape} "
            f"{'with non-finite values ' if mean.shape == tuple(shape) else ''}where the run's "
            f"model needs {tuple(shape)}. Rerun `python -m zoo.train` with the run's flags to "
            "write it again."
        )
    return mean


# --- Finishing ---------------------------------------------------------------


def save_model(model, path):
    """Saves a .keras file via a temporary name, so no half-written file remains."""
    path = pathlib.Path(path)
    with files.staged(path, path.suffix) as tmp:
        model.save(tmp)


def finish(workdir, recipe, model, train_model, test_data, classes, evaluate_kwargs=None,
           test=None):
    """Evaluates on the test split; writes results.json, model.keras, classes.json.

    Args:
        workdir: the run's directory.
        recipe: the `Recipe`.
        model: the model to save (preprocessing inside, no augmentation).
        train_model: the compiled model that was trained (may be `model`).
        test_data: what `train_model.evaluate` takes for the test split.
        classes: class names, index = label.
        evaluate_kwargs: extra arguments of `evaluate` (e.g. y, batch_size).
        test: the test split's {"accuracy", "loss", "seconds"} if the caller
            evaluated it already (`zoo.seeds` evaluates K replicas with one
            compiled model); `test_data` is then not used.
    """
    import keras

    from zoo import history

    workdir = pathlib.Path(workdir)
    if test is None:
        start = time.perf_counter()
        test = train_model.evaluate(test_data, return_dict=True, verbose=0, **(evaluate_kwargs or {}))
        test["seconds"] = time.perf_counter() - start
    test_time = test["seconds"]
    rows = history.read(workdir / HISTORY)
    steps = int(keras.ops.convert_to_numpy(train_model.optimizer.iterations))
    epochs = steps // recipe.epoch_steps
    if len(rows) != epochs:
        print(f"zoo: {workdir / HISTORY} holds {len(rows)} of the run's {epochs} epochs (it was "
              f"deleted or replaced since): {RESULTS}'s wall_time_s and images_per_s count those "
              f"{len(rows)} epochs only (timed_epochs)")
    train_time = sum(row["train_time_s"] for row in rows)
    # The last epoch's figures, if its row is there.
    last = rows[-1] if rows and rows[-1]["epoch"] == epochs - 1 else {}
    results = {
        "recipe": recipe.name,
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "val_accuracy": last.get("val_accuracy"),
        # The running accuracy of the last epoch, on augmented batches.
        "train_accuracy": last.get("accuracy"),
        "steps": steps,
        "epochs": epochs,
        # The epochs history.csv times: all of them, unless it was deleted.
        "timed_epochs": len(rows),
        "batch_size": recipe.batch_size,
        "wall_time_s": sum(row["epoch_time_s"] for row in rows) + test_time,
        "images_per_s": (len(rows) * recipe.epoch_steps * recipe.batch_size / train_time
                         if train_time else None),
        "backend": keras.backend.backend(),
    }
    if model.compiled:
        # Saved uncompiled: loading then needs only keras_resnet (for the
        # option-A layer), not zoo's lr schedule.
        trained = model
        model = model.__class__.from_config(trained.get_config())
        model.set_weights(trained.get_weights())
    save_model(model, workdir / MODEL)
    files.write_json(workdir / CLASSES, list(classes))
    files.write_json(workdir / RESULTS, results)
    return results


def write_group_results(workdir, summary):
    """A group's results.json: the summary of its seeds (`zoo.seeds.summarize`)."""
    files.write_json(pathlib.Path(workdir) / RESULTS, summary)


# --- Opening a run -----------------------------------------------------------


@contextlib.contextmanager
def opened(workdir, config, recipe, task_id=None):
    """Takes the run in `workdir` for `config`: the lock, a killed run's leftovers, the config check.

    What `zoo.train` and each replica of `zoo.seeds` do before training.
    Yields the results of the run if it is finished there (nothing to
    train), else None; the lock is held until the block ends. A workdir
    where the lock cannot be taken (a read-only disk) is read without it:
    a finished run still reports its results, anything else needs to write.

    Args:
        workdir: the run's directory (it exists).
        config: the run's config (`make_config`).
        recipe: the run's `Recipe`.
        task_id: a multi-worker run's worker (not the chief), which locks
            a file of its own.

    Raises:
        ValueError: the workdir holds another run, or a damaged file; or it
            cannot be written and the run is not finished.
        WorkdirBusy: another process holds the lock.
    """
    workdir = pathlib.Path(workdir)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock.exclusive(lock_path(workdir, task_id)))
        except lock.WorkdirNotWritable as error:
            not_writable = error
        else:
            not_writable = None
            remove_stale_staging(workdir)
        check_same_run(workdir, config, record=not_writable is None)
        results = finished_results(workdir, recipe)
        if results is None and not_writable is not None:
            raise ValueError(str(not_writable))
        yield results


@contextlib.contextmanager
def opened_group(workdir, config):
    """Takes the directory of a group of seeds for `config`: its lock and its config check.

    Yields whether it can be written: a group on a read-only disk is read
    without the lock (each of its replicas, `opened`, then reports its
    results if finished and refuses otherwise).
    """
    workdir = pathlib.Path(workdir)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock.exclusive(lock_path(workdir)))
        except lock.WorkdirNotWritable:
            writable = False
        else:
            writable = True
        check_same_group(workdir, config, record=writable)
        yield writable


def group_results(workdir, seeds):
    """The group's results.json if it summarises exactly `seeds`, else None."""
    path = pathlib.Path(workdir) / RESULTS
    try:
        results = files.read_json(path, "the group's results", "")
    except ValueError:
        return None
    if isinstance(results, dict) and results.get("kind") == GROUP_KIND and results.get("seeds") == list(seeds):
        return results
    return None


# --- The lock ----------------------------------------------------------------

# The operating system's lock on the run (`zoo.lock`), taken at `lock_path`.
exclusive = lock.exclusive
WorkdirBusy = lock.WorkdirBusy
WorkdirNotWritable = lock.WorkdirNotWritable


def remove_stale_staging(workdir):
    """Deletes the half-written files a killed process left in the run.

    A file counts as stale if its name holds ".tmp-<pid>" and no process
    with that pid runs (zoo.evaluate, which writes into the workdir without
    the lock, is such a live process). Call it holding the workdir's lock.

    Returns:
        The paths removed.
    """
    removed = []
    workdir = pathlib.Path(workdir)
    for folder in (workdir, workdir / CHECKPOINTS):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = files.STAGING.search(path.name)
            if match and path.is_file() and not lock.alive(int(match.group(1))):
                path.unlink()
                removed.append(path)
    if removed:
        print(f"zoo: removed {len(removed)} half-written file(s) a killed run left: "
              f"{', '.join(p.name for p in removed)}")
    return removed
