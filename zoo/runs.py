"""What every training backend shares: compile, callbacks, the run's files."""

import os
import pathlib
import time

import keras

from zoo import history
from zoo import schedules

CHECKPOINTS = "checkpoints"


def compile_model(model, recipe):
    """SGD with momentum on the recipe's step schedule; returns the schedule.

    Weight decay is in the model (coupled L2 on kernels), not the optimizer.
    """
    schedule = schedules.from_recipe(recipe)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=recipe.momentum),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        run_eagerly=recipe.run_eagerly,
    )
    return schedule


def callbacks(workdir, schedule, tensorboard=True):
    """History first, then the checkpoint that covers it (see HistoryCSV)."""
    workdir = pathlib.Path(workdir)
    result = [
        history.HistoryCSV(workdir / "history.csv", schedule),
        keras.callbacks.BackupAndRestore(
            str(workdir / CHECKPOINTS),
            save_freq="epoch",
            double_checkpoint=True,
            delete_checkpoint=False,
        ),
    ]
    if tensorboard and _has_tensorboard():
        result.append(keras.callbacks.TensorBoard(str(workdir / "logs")))
    return result


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401  (tf.summary needs it to write)
    except ImportError:
        print("zoo: the tensorboard package is not installed; no TensorBoard logs.")
        return False
    return True


def finish(workdir, recipe, model, train_model, test_data, classes, evaluate_kwargs=None):
    """Evaluates on the test split; writes results.json, model.keras, classes.json.

    Args:
        workdir: the run's directory.
        recipe: the `Recipe`.
        model: the model to save (preprocessing inside, no augmentation).
        train_model: the compiled model that was trained (may be `model`).
        test_data: what `train_model.evaluate` takes for the test split.
        classes: class names, index = label.
        evaluate_kwargs: extra arguments of `evaluate` (e.g. y, batch_size).
    """
    workdir = pathlib.Path(workdir)
    start = time.perf_counter()
    test = train_model.evaluate(test_data, return_dict=True, verbose=0, **(evaluate_kwargs or {}))
    test_time = time.perf_counter() - start
    rows = history.read(workdir / "history.csv")
    steps = int(keras.ops.convert_to_numpy(train_model.optimizer.iterations))
    train_time = sum(row["train_time_s"] for row in rows)
    last = rows[-1] if rows else {}
    results = {
        "recipe": recipe.name,
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "val_accuracy": last.get("val_accuracy"),
        # The running accuracy of the last epoch, on augmented batches.
        "train_accuracy": last.get("accuracy"),
        "steps": steps,
        "epochs": len(rows),
        "batch_size": recipe.batch_size,
        "wall_time_s": sum(row["epoch_time_s"] for row in rows) + test_time,
        "images_per_s": steps * recipe.batch_size / train_time if train_time else None,
        "backend": keras.backend.backend(),
    }
    if model.compiled:
        # Saved uncompiled: loading then needs only keras_resnet (for the
        # option-A layer), not zoo's lr schedule.
        trained = model
        model = model.__class__.from_config(trained.get_config())
        model.set_weights(trained.get_weights())
    save_model(model, workdir / "model.keras")
    history.write_json(workdir / "classes.json", list(classes))
    history.write_json(workdir / "results.json", results)
    return results


def save_model(model, path):
    """Saves a .keras file via a temporary name, so no half-written file remains."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
