"""One backend's side of tests/test_zoo_equivalence.py.

    KERAS_BACKEND=jax python tests/equivalence_check.py train IN.npz OUT.npz DTYPE
    KERAS_BACKEND=jax python tests/equivalence_check.py crops IN.npz OUT.npz

Keras fixes its backend at import, so the test runs this once per backend
(TensorFlow, JAX, PyTorch) on the same inputs, written by the test:
the initial weights (`weights.h5`, saved by TensorFlow), the training
images and labels of each step, already cut by the numpy reference of the
paper's crop and flip, and the crop offsets and flips themselves.

On TensorFlow and JAX it trains the zoo's training model
(`zoo.fit_arrays.build_train_model`, what both backends' loops train) with
Keras's `fit` on those batches, one batch per step in order, and writes
what the test compares: every step's loss, the state after the first step
(which holds the first gradient: SGD with momentum from zero velocity moves
each weight by -lr * gradient) and after the last (weights, BatchNorm's
moving statistics, the optimizer's momentum slots and step counter), the
learning rate of every step, the weight-decay term at the initial weights,
and the forward pass. On PyTorch it writes the forward pass only.

`crops` cuts the paper's crops and flips with `zoo.augment_ops.pad_crop_flip`
(what the JAX loops and the tf.data pipeline run) at given offsets and flips.
"""

import json
import sys

import keras
import numpy as np


def as_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def state(model):
    out = {f"weight:{w.path}": as_numpy(w) for w in model.weights}
    for v in model.optimizer.variables:
        out[f"optimizer:{v.path}"] = as_numpy(v)
    return out


def crops(inputs, output):
    from zoo import augment_ops

    data = np.load(inputs, allow_pickle=False)
    out = augment_ops.pad_crop_flip(data["raw"], data["offsets"], data["flips"], int(data["pad"]))
    np.savez(output, crops=as_numpy(out))


def train(inputs, output, dtype):
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    from zoo import fit_arrays
    from zoo import train as zoo_train

    data = np.load(inputs, allow_pickle=False)
    recipe = zoo_train.resolve(**json.loads(str(data["recipe"])))
    backend = keras.backend.backend()
    result = {}
    keras.utils.set_random_seed(0)
    model, train_model, schedule = fit_arrays.build_train_model(recipe, data["train_images"])
    train_model.load_weights(str(data["weights"]))
    train_model.optimizer.build(train_model.trainable_variables)
    result.update({f"initial/{k}": v for k, v in state(train_model).items()})
    x = data["batches"].astype(dtype)
    y = data["labels"]
    steps, batch = y.shape
    flat_x = x.reshape(steps * batch, *x.shape[2:])
    result["forward_inference"] = as_numpy(model.predict(flat_x[:batch], batch_size=batch, verbose=0))
    # A training-mode call updates BN's moving statistics: back to the file.
    result["forward_training"] = as_numpy(train_model(flat_x[:batch], training=True))
    train_model.load_weights(str(data["weights"]))
    if backend == "torch":
        np.savez(output, **result)
        return
    result["weight_decay"] = as_numpy(sum(train_model.losses))
    result["lr"] = np.array([float(as_numpy(schedule(step))) for step in range(steps)])

    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []

        def on_train_batch_end(self, step, logs=None):
            self.losses.append(float(logs["loss"]))
            if step == 0:
                result.update({f"step1/{k}": v for k, v in state(self.model).items()})

    record = Record()
    train_model.fit(flat_x, y.reshape(-1), batch_size=batch, epochs=1, shuffle=False,
                    callbacks=[record], verbose=0)
    result["losses"] = np.array(record.losses)
    result.update({f"final/{k}": v for k, v in state(train_model).items()})
    np.savez(output, **result)


if __name__ == "__main__":
    {"crops": crops, "train": train}[sys.argv[1]](*sys.argv[2:])
