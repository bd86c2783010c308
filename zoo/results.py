"""What a finished run records: its test split evaluated, and the figures of results.json.

`finish` ends every training loop (`zoo.fit_tf`, `zoo.fit_arrays`, and each
replica of `zoo.seeds`): it evaluates the trained model on the test split,
adds up the run's figures from its history.csv (`figures`), and has
`zoo.run.save_finished` write model.keras, classes.json and results.json.
"""

import time

import keras

from zoo import history
from zoo import run


def finish(workdir, recipe, model, train_model, test_data, classes, evaluate_kwargs=None, test=None):
    """Evaluates on the test split; writes results.json, model.keras, classes.json; returns the results.

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
    if test is None:
        start = time.perf_counter()
        test = train_model.evaluate(test_data, return_dict=True, verbose=0, **(evaluate_kwargs or {}))
        test["seconds"] = time.perf_counter() - start
    steps = int(keras.ops.convert_to_numpy(train_model.optimizer.iterations))
    results = figures(workdir, recipe, steps, test)
    run.save_finished(workdir, model, classes, results)
    return results


def figures(workdir, recipe, steps, test):
    """results.json's content: the test figures, and the run's from its history.csv.

    A history.csv with fewer rows than the run has epochs (deleted, say)
    gives the time and speed of the epochs it holds (`timed_epochs`), and
    the run says so.

    Args:
        workdir: the run's directory.
        recipe: the `Recipe`.
        steps: the optimizer's step count at the end.
        test: {"accuracy", "loss", "seconds"} of the test split.
    """
    rows = history.read(workdir / run.HISTORY)
    epochs = steps // recipe.epoch_steps
    if len(rows) != epochs:
        print(f"zoo: {workdir / run.HISTORY} holds {len(rows)} of the run's {epochs} epochs (it was "
              f"deleted or replaced since): {run.RESULTS}'s wall_time_s and images_per_s count those "
              f"{len(rows)} epochs only (timed_epochs)")
    train_time = sum(row["train_time_s"] for row in rows)
    # The last epoch's figures, if its row is there.
    last = rows[-1] if rows and rows[-1]["epoch"] == epochs - 1 else {}
    return {
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
        "wall_time_s": sum(row["epoch_time_s"] for row in rows) + test["seconds"],
        "images_per_s": (len(rows) * recipe.epoch_steps * recipe.batch_size / train_time
                         if train_time else None),
        "backend": keras.backend.backend(),
    }
