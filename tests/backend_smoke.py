"""Smoke test of the models under whichever backend KERAS_BACKEND selects.

Run by tests/test_backends.py in a fresh process per backend, because Keras
fixes its backend at import. Prints "OK <backend>" when every check passed.
"""

import os
import sys
import tempfile

import keras
import numpy as np

import keras_resnet


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    backend = keras.backend.backend()
    check(backend == os.environ["KERAS_BACKEND"], f"backend is {backend}")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, 8)

    for kwargs in ({"shortcut": "A"}, {"shortcut": "B"}, {"shortcut": "C"}, {"plain": True}):
        model = keras_resnet.ResNet(8, **kwargs)
        check(model.predict(x, verbose=0).shape == (8, 10), f"forward {kwargs}")
    imagenet = keras_resnet.ResNet(18, input_shape=(64, 64, 3), classes=5)
    check(imagenet.predict(x[:2, :, :, :].repeat(2, 1).repeat(2, 2), verbose=0).shape == (2, 5), "resnet18")
    bottleneck = keras_resnet.ResNet(50, input_shape=(64, 64, 3), classes=5, variant="v1.5")
    check(bottleneck.predict(np.zeros((1, 64, 64, 3), "float32"), verbose=0).shape == (1, 5), "resnet50")

    # One real train step changes the weights and gives a finite loss.
    model = keras_resnet.ResNet(20, weight_decay=1e-4)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    check(np.isfinite(loss), f"loss {loss}")
    check(any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "no update")

    # channels_first computes the same function as channels_last.
    last = keras_resnet.ResNet(8, include_top=False)
    first = keras_resnet.ResNet(8, include_top=False, data_format="channels_first")
    first.set_weights(last.get_weights())
    y_last = last.predict(x, verbose=0)
    y_first = first.predict(np.transpose(x, (0, 3, 1, 2)), verbose=0)
    err = np.abs(np.transpose(y_first, (0, 2, 3, 1)) - y_last).max()
    check(err < 1e-4, f"channels_first differs by {err}")

    # .keras round trip with the option-A custom layer, safe_mode on.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        err = np.abs(loaded.predict(x, verbose=0) - model.predict(x, verbose=0)).max()
        check(err < 1e-6, f"reloaded model differs by {err}")

    # Mixed precision keeps float32 logits.
    keras.config.set_dtype_policy("mixed_bfloat16")
    mixed = keras_resnet.ResNet(8, classifier_activation=None)
    out = mixed(x)
    check(keras.backend.standardize_dtype(out.dtype) == "float32", f"logits {out.dtype}")
    print("OK", backend)


if __name__ == "__main__":
    sys.exit(main())
