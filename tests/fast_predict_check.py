"""`ResNetModel.predict`'s path for arrays under whichever backend KERAS_BACKEND selects.

Run by tests/test_fast_predict.py in a fresh process per backend (Keras
fixes its backend at import). Prints "OK <backend>" when every check passed.
"""

import os

import keras
import numpy as np

import keras_resnet
from backend_smoke import check  # this script's folder, tests/, is on sys.path


def main():
    backend = keras.backend.backend()
    check(backend == os.environ["KERAS_BACKEND"], f"backend is {backend}")
    calls = []
    original = keras.Model.predict

    def spy(self, x, *args, **kwargs):
        calls.append(len(x))
        return original(self, x, *args, **kwargs)

    keras.Model.predict = spy
    model = keras_resnet.ResNet(20, input_shape=(8, 8, 3))
    rng = np.random.default_rng(0)
    for count, dtype in ((1, "float32"), (3, "float64"), (2, "uint8"), (32, "float32")):
        x = rng.uniform(0, 255, (count, 8, 8, 3)).astype(dtype)
        if count == 3:
            x[1, 0, 0, 0] = np.nan
        expected = original(model, x, verbose=0)
        got = model.predict(x, verbose=0)
        check(calls == [], f"batch of {count} {dtype} went to Keras's predict")
        check(type(got) is np.ndarray and got.dtype == expected.dtype, f"type {type(got)} {got.dtype}")
        check(np.array_equal(got, expected, equal_nan=True), f"batch of {count} {dtype} differs")
        if count == 3:
            check(np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all(), "NaN not kept")
    tensor = keras.ops.convert_to_tensor(x)
    check(np.array_equal(model.predict(tensor, verbose=0), expected) and calls == [], "a tensor")
    # Raw pixels through random weights saturate the softmax: small ones here.
    small = x / 255
    before = model.predict(small, verbose=0)
    model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    changed = model.predict(small, verbose=0)
    check(not np.array_equal(changed, before), "new weights not used")
    check(np.array_equal(changed, original(model, small, verbose=0)), "new weights differ from Keras's")
    many = rng.uniform(0, 255, (33, 8, 8, 3)).astype("float32")
    check(np.array_equal(model.predict(many, verbose=0), original(model, many, verbose=0)), "two batches differ")
    check(calls == [], f"two batches went to Keras's predict: {calls}")
    model.predict(many, verbose=0, steps=2)
    check(calls == [33], f"steps= must go to Keras's predict: {calls}")
    print(f"OK {backend}")


if __name__ == "__main__":
    main()
