"""NaN in, NaN out under the backend KERAS_BACKEND selects (JAX or PyTorch).

Run by tests/test_nonfinite.py in its own process per backend (Keras fixes
its backend at import). Prints "OK nonfinite <backend>" when every check
passed. What it checks, on the CPU:

1. `predict`, a direct call and `evaluate` of a ResNet give NaN for an
   image with a NaN or infinite pixel, and finite values for the others.
2. `fit` on a batch with a NaN image reports a NaN loss, with Keras's
   crossentropy on probabilities and with the zoo's on logits.
3. A zoo run that diverges stops with `NonFiniteError` naming the step at
   which the loss became non-finite, in the middle of an epoch, with both
   loops (Keras's `fit` and `zoo.scan_loop`), and is not recorded as
   finished.
"""

import pathlib
import re
import sys
import tempfile

import keras
import numpy as np

import keras_resnet
from reference import images_with_nan


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def finite_rows(outputs):
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
    return np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1).tolist()


def predict_and_evaluate():
    for depth, size in ((20, 32), (18, 64)):
        keras.utils.set_random_seed(0)
        model = keras_resnet.ResNet(depth, input_shape=(size, size, 3), classes=10)
        x = images_with_nan((size, size, 3))
        expected = [False, False, False, True]
        check(finite_rows(model.predict(x, verbose=0)) == expected, f"predict, depth {depth}")
        check(finite_rows(model(x)) == expected, f"direct call, depth {depth}")
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        loss = model.evaluate(x, np.zeros(4, "int32"), verbose=0)
        check(np.isnan(loss), f"evaluate loss {loss}, depth {depth}")
        clean = model.evaluate(x[3:], np.zeros(1, "int32"), verbose=0)
        check(np.isfinite(clean), f"evaluate loss on the clean image {clean}")


def fit_reports_nan():
    from zoo import fit_arrays
    from zoo import train

    x = images_with_nan((32, 32, 3))
    y = np.zeros(4, "int32")
    keras.utils.set_random_seed(0)
    model = keras_resnet.ResNet(20)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    loss = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][0]
    check(np.isnan(loss), f"fit loss {loss} (crossentropy on probabilities)")
    recipe = train.resolve("cifar10_resnet20", steps=2, assignments=["batch_size=4"])
    _, train_model, _ = fit_arrays.build_train_model(recipe, x[3:].astype("uint8"))
    loss = train_model.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][0]
    check(np.isnan(loss), f"fit loss {loss} (the zoo's, on logits)")


def diverging_run_stops_at_its_step(loop):
    from zoo import nonfinite
    from zoo import train

    # lr 1e30: step 1's loss is that of the initial weights, finite; its
    # update makes them enormous, and step 2's loss is not finite. An epoch
    # is 4 steps, so the guard must name step 2, not the epoch's end.
    recipe = train.resolve(
        "cifar10_resnet20", steps=8,
        assignments=["batch_size=8", "epoch_steps=4", "val_size=16", "lr=1e30"],
    )
    with tempfile.TemporaryDirectory() as workdir:
        try:
            train.train_and_evaluate(recipe, workdir, verbose=0, loop=loop)
        except nonfinite.NonFiniteError as error:
            message = str(error)
        else:
            raise AssertionError(f"loop={loop}: a diverging run finished")
        match = re.search(r"Training diverged at step (\d+): the training loss is (\S+)", message)
        check(match is not None, f"loop={loop}: {message}")
        check(match.group(1) == "2", f"loop={loop}: named step {match.group(1)}, not 2: {message}")
        check(not (pathlib.Path(workdir) / "results.json").exists(), f"loop={loop}: results.json")


def main():
    backend = keras.backend.backend()
    predict_and_evaluate()
    fit_reports_nan()
    diverging_run_stops_at_its_step("fit")
    if backend == "jax":
        diverging_run_stops_at_its_step("scan")
    print(f"OK nonfinite {backend}")


if __name__ == "__main__":
    sys.exit(main())
