"""The run directory: its files, its config, finished or not, opening it, loading what it holds.

A zoo.train run is one directory (--workdir); every command that reads or
writes one asks this module, so the names below are written nowhere else:

    config.json     `make_config`: the resolved recipe and where its data came
                    from; written once, when the run starts (`check_same_run`)
    .lock           while a zoo.train holds the directory (`opened`)
    checkpoints/    Keras BackupAndRestore (`zoo.checkpoint`), with mean.npy,
                    the model's per-pixel mean (`zoo.checkpoint.save_mean`)
    logs/           TensorBoard
    history.csv     one row per epoch (`zoo.history`)
    results.json    written when the run ends (`save_finished`; its figures
                    are `zoo.results`'): a run is finished when it reaches
                    the config's steps (`reaches`)
    model.keras     the trained model, raw pixels in (`load_model`)
    classes.json    class names, index = label (`read_classes`)
    eval_<mode>.json   zoo.evaluate's; train.log: zoo.sweep's
    .workers/       the other workers' copies of a multi-worker run
    seed_<k>/       a group of seeds (zoo.train --seeds): one run per seed;
                    the group's config.json says "kind": "seeds"

A run's path enters once, through `directory` (at each command's entry);
the functions here take that `pathlib.Path`. Opening a run (`opened`:
directory, lock, a killed run's leftovers, config check, finished or not)
is what `zoo.train` and each replica of `zoo.seeds` do before training.

A file the run should hold and does not raises `MissingRunFile` (both a
FileNotFoundError and a ValueError), naming the file. Importing this module
imports neither Keras nor TensorFlow; loading model.keras imports them.
"""

import contextlib
import json
import os
import pathlib

from keras_resnet import atomic
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


def directory(workdir):
    """A run's path as it enters a command (a flag, an argument): `~` expanded, as a `pathlib.Path`.

    Called once, where the path enters; every function here takes its result.
    """
    return pathlib.Path(cli.expand(workdir))



def checkpoint_dir(workdir):
    """The run's checkpoint directory (`zoo.checkpoint`'s)."""
    return workdir / CHECKPOINTS


def checkpoint_weights(workdir):
    """The latest checkpoint's weights file."""
    return checkpoint_dir(workdir) / LATEST_WEIGHTS


def eval_path(workdir, mode):
    """Where zoo.evaluate records `mode`'s accuracy."""
    return workdir / f"{EVAL_PREFIX}{mode}.json"


def replica_dir(workdir, seed):
    """Where replica `seed` of the group in `workdir` lives: a normal run directory."""
    return workdir / f"{REPLICA_PREFIX}{seed}"


def worker_dir(workdir, task_id):
    """Where worker `task_id` (not the chief) of a multi-worker run writes its copy."""
    return workdir / WORKERS / f"worker-{task_id}"


def lock_path(workdir, task_id=None):
    """The lock of the run (or of worker `task_id`, which must not take the chief's)."""
    return workdir / (LOCK if task_id is None else f"{LOCK}-worker-{task_id}")


def is_run_entry(name):
    """Whether a top-level name in a workdir is one of the run's own files."""
    return name in RUN_ENTRIES or name.startswith(EVAL_PREFIX)


# --- The config and whether it is this run -----------------------------------


def make_config(recipe, dataset, data_dir=None, mixed_precision="float32"):
    """What a run's config.json records: the resolved recipe and where its data came from.

    Args:
        recipe: the resolved `Recipe`.
        dataset: a `zoo.datasets.Dataset` (or a spec, "paper" included),
            recorded in its one spelling (`str(dataset)`).
        data_dir: tfds data directory, recorded as an absolute path.
        mixed_precision: the Keras dtype policy.
    """
    return {
        "recipe": recipe.to_dict(),
        "dataset": str(datasets.parse(dataset, recipe)),
        "data_dir": _absolute(data_dir),
        "mixed_precision": mixed_precision,
    }


def _absolute(data_dir):
    return None if data_dir is None else os.path.abspath(cli.expand(data_dir))


def make_group_config(recipe, dataset, data_dir=None, mixed_precision="float32"):
    """A group's config.json: the run config of every replica (`make_config`), less its seed."""
    config = make_config(recipe, dataset, data_dir, mixed_precision)
    config["recipe"].pop("seed")
    return {"kind": GROUP_KIND, **config}


def progress(workdir):
    """What in `workdir` shows a run trained there (more than a failed start): file names.

    A checkpoint, results.json, or a history.csv that is not empty: a run
    writes its first history row at the end of its first epoch.
    """
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
        if isinstance(previous.get("dataset"), str):  # An older zoo recorded it as given.
            try:
                previous["dataset"] = str(datasets.parse(previous["dataset"]))
            except ValueError as error:
                raise ValueError(f"{path}: {error} {fix}") from None
        if isinstance(previous.get("data_dir"), str):
            previous["data_dir"] = _absolute(previous["data_dir"])
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
    path = workdir / CONFIG
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
    path = workdir / CONFIG
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
            f"{workdir / (REPLICA_PREFIX + '<k>')}, and its {RESULTS} summarises them."
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
    path = workdir / RESULTS
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

    Args:
        workdir: the directory.
        name, overrides: the recipe and its "key=value" overrides.
        dataset: a `zoo.datasets.Dataset` or spec ("paper": the recipe's), or None.
        seeds: the seeds of a group, or None for a single run.
    """
    try:
        results = files.read_json(workdir / RESULTS, "", "")
        config = files.read_json(workdir / CONFIG, "", "")
        recorded = config["recipe"]
        wanted = recipes.override(recipes.get(name), list(overrides)).to_dict()
        keys = ["name"] + [o.partition("=")[0].strip() for o in overrides]
        if any(recorded.get(key) != wanted[key] for key in keys):
            return False
        if dataset is not None and config.get("dataset") != str(datasets.parse(dataset, recipes.get(name))):
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
    path = workdir / CLASSES
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
    return datasets.class_names(datasets.parse(config["dataset"]), data_dir or config.get("data_dir"))


def model_file(workdir, hint=""):
    """The path of the run's model.keras.

    Raises:
        MissingRunFile: the run has none (it has not finished), naming it.
    """
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


def load_model(workdir, hint=""):
    """The run's trained model, from its model.keras.

    Args:
        workdir: the run's directory.
        hint: added to the message if there is no model.keras (e.g. what
            else the command can load).

    Raises:
        MissingRunFile: no model.keras, naming it.
        ValueError: a damaged model.keras, naming it.
    """
    return load_model_file(model_file(workdir, hint))


def load_run(workdir):
    """(model, class names or None) of the finished run in `workdir`.

    Raises:
        MissingRunFile: no model.keras, naming it.
        ValueError: a damaged model.keras or classes.json.
    """
    return load_model(workdir), read_classes(workdir)


# --- Writing a finished run -------------------------------------------------


def save_model(model, path):
    """Saves a .keras file via a temporary name, so no half-written file remains."""
    path = pathlib.Path(path)
    with files.staged(path, path.suffix) as tmp:
        model.save(tmp)


def save_finished(workdir, model, classes, results):
    """Writes what a finished run holds: model.keras, classes.json, then results.json.

    results.json comes last: a run is finished once it is there (`reaches`).

    Args:
        workdir: the run's directory.
        model: the model to save (preprocessing inside, no augmentation);
            a compiled one is saved uncompiled, so that loading it needs
            only keras_resnet (for the option-A layer), not zoo's lr schedule.
        classes: class names, index = label.
        results: results.json's content (`zoo.results.figures`).
    """
    if model.compiled:
        trained = model
        model = model.__class__.from_config(trained.get_config())
        model.set_weights(trained.get_weights())
    save_model(model, workdir / MODEL)
    files.write_json(workdir / CLASSES, list(classes))
    files.write_json(workdir / RESULTS, results)


def write_group_results(workdir, summary):
    """A group's results.json: the summary of its seeds (`zoo.seeds.summarize`)."""
    files.write_json(workdir / RESULTS, summary)


# --- Opening a run -----------------------------------------------------------


@contextlib.contextmanager
def opened(workdir, config, recipe, task_id=None):
    """Takes the run in `workdir` for `config`: the lock, a killed run's leftovers, the config check.

    What `zoo.train` and each replica of `zoo.seeds` do before training:
    the directory is made if missing, then locked. Yields the results of
    the run if it is finished there (nothing to train), else None; the lock
    is held until the block ends. A workdir where the lock cannot be taken
    (a read-only disk) is read without it: a finished run still reports its
    results, anything else needs to write.

    Args:
        workdir: the run's directory (`directory`).
        config: the run's config (`make_config`).
        recipe: the run's `Recipe`.
        task_id: a multi-worker run's worker (not the chief), which locks
            a file of its own.

    Raises:
        ValueError: the workdir holds another run, or a damaged file; or it
            cannot be made, or written and the run is not finished.
        WorkdirBusy: another process holds the lock.
    """
    cli.make_directory(workdir, "--workdir")
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
    cli.make_directory(workdir, "--workdir")
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
    path = workdir / RESULTS
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
    for folder in (workdir, workdir / CHECKPOINTS):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = files.STAGING.search(path.name)
            if match and path.is_file() and not atomic.alive(int(match.group(1))):
                path.unlink()
                removed.append(path)
    if removed:
        print(f"zoo: removed {len(removed)} half-written file(s) a killed run left: "
              f"{', '.join(p.name for p in removed)}")
    return removed
