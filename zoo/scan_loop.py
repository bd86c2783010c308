"""JAX training with the data on the device: one compiled program per epoch.

Keras's `fit` on JAX runs one jitted step per batch from Python and feeds
every batch from host memory. A CIFAR net's step on a GPU takes a few
milliseconds, about what the host spends per step on slicing the batch,
copying it over and passing the ~1,000 state arrays of a ResNet-110 into
the step. `fit` below removes that host work instead of hiding it:

- the uint8 training images and labels are copied to the device once;
- an epoch (`epoch_steps` steps) is one `jax.lax.scan` over Keras's own
  stateless `model.train_step`, so the loss, the coupled weight decay, the
  metrics, mixed precision and the optimizer are exactly those of `fit`;
- the host sends only the epoch's batch indices, crop offsets and flips
  (`zoo.stream`, which also feeds `fit`, so both loops see the same
  augmented images in the same order; tests/test_zoo_scan.py compares
  them), and the step cuts the crops (`zoo.augment_ops.pad_crop_flip`).

Callbacks run at epoch granularity (begin/end of training, of each epoch,
of validation), which is what the zoo's callbacks use: the history CSV,
the checkpoint (`BackupAndRestore`, whose restored epoch is honoured) and
the non-finite guard. Per-batch hooks are called only for the first step
whose loss is NaN or infinite, if one is (the epoch program returns every
step's loss), so that `zoo.nonfinite.StopOnNonFinite` names that step and the
epoch's state is never assigned to the model.
"""

import time

import jax
import keras
import numpy as np

from zoo import augment_ops
from zoo import stream


def get_state(model):
    """The model's state as `train_step` takes it (four lists of arrays)."""
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )


def set_state(model, state):
    """Assigns a `train_step` state back to the model's variables."""
    groups = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )
    for variables, values in zip(groups, state):
        for variable, value in zip(variables, values):
            variable.assign(value)


def prepare(model, x, y):
    """Creates every piece of state `train_step` needs, as `fit` does first.

    The model, its metrics and loss are built symbolically from one batch
    (x, y), then the optimizer's variables are made.
    """
    model._symbolic_build(data_batch=(x, y))
    model.optimizer.build(model.trainable_variables)


def epoch_function(model, pad=0, replicas=False, per_step=False):
    """(state, images, labels, indices, offsets, flips) -> (state, logs, losses): one epoch.

    `indices` (steps, B) pick each step's images, `offsets` (steps, B, 2)
    and `flips` (steps, B) augment them (`zoo.stream`). `logs` are the last
    step's (the epoch's, as in `fit`), `losses` (steps,) every step's
    running-mean loss.

    With `replicas`, the state holds K models' states stacked on a leading
    axis, the draws gain a K axis after the steps ((steps, K, B), ...), and
    every step is `jax.vmap` of the step over the replicas: K seeds of one
    recipe in one program (`zoo.seeds`). `losses` is then (steps, K).

    The epoch is one jitted `jax.lax.scan`, or with `per_step` one jitted
    step called from Python per step: XLA's CPU backend runs a step inside a
    loop several times slower than the same step alone (the loop body is compiled
    without what makes the unrolled step fast; fully unrolled, it is as fast),
    so on CPUs the host loop is the faster one (measured 8x to 25x on this
    project's CPUs). Both compute the same.
    """

    def step(state, images, labels, index, offset, flip):
        x = augment_ops.pad_crop_flip(images[index].astype("float32"), offset, flip, pad)
        logs, state = model.train_step(state, (x, labels[index]))
        return state, logs

    if replicas:
        step = jax.vmap(step, in_axes=(0, None, None, 0, 0, 0))

    if per_step:
        one_step = jax.jit(step, donate_argnums=0)

        def epoch(state, images, labels, indices, offsets, flips):
            losses = []
            for s in range(len(indices)):
                state, logs = one_step(state, images, labels, indices[s], offsets[s], flips[s])
                losses.append(logs["loss"])
            return state, logs, jax.numpy.stack(losses)

        return epoch

    def epoch(state, images, labels, indices, offsets, flips):
        def body(state, batch):
            return step(state, images, labels, *batch)

        state, logs = jax.lax.scan(body, state, (indices, offsets, flips))
        # Metric results are running means over the epoch: the last step's
        # logs are the epoch's, as in `fit`.
        return state, jax.tree.map(lambda v: v[-1], logs), logs["loss"]

    return jax.jit(epoch, donate_argnums=0)


def stack_states(states):
    """K `get_state` states -> one state whose arrays have a leading K axis."""
    return jax.tree.map(lambda *values: jax.numpy.stack(values), *states)


def unstack_state(state, k):
    """Replica k's state out of a `stack_states` state."""
    return jax.tree.map(lambda value: value[k], state)


def fit(model, images, labels, *, batch_size, epoch_steps, epochs, seed, pad=0, flip=False,
        validation_data=None, callbacks=(), verbose=1):
    """Trains a compiled Keras model (JAX backend) on in-memory arrays.

    Args:
        model: a compiled `keras.Model`; takes float32 images.
        images: uint8 (N, H, W, C) training images (host memory).
        labels: int (N,) labels.
        batch_size, epoch_steps, epochs: the schedule, as `fit` would take
            it with `steps_per_epoch=epoch_steps`.
        seed: seeds the batch order and the augmentation (`zoo.stream`).
        pad, flip: the augmentation (`zoo.augment_ops.pad_crop_flip`).
        validation_data: (x, y) evaluated after every epoch, or None.
        callbacks: Keras callbacks (epoch-level hooks are called).
        verbose: 1 prints one line per epoch.

    Returns:
        The `keras.callbacks.History` of the run.
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            f"zoo.scan_loop needs KERAS_BACKEND=jax. Received backend {keras.backend.backend()!r}."
        )
    history = keras.callbacks.History()
    callbacks = keras.callbacks.CallbackList(
        list(callbacks) + [history], model=model, epochs=epochs, steps=epoch_steps
    )
    prepare(model, images[:batch_size].astype(np.float32), labels[:batch_size])
    model.stop_training = False
    callbacks.on_train_begin()
    # BackupAndRestore sets the epoch a restored run continues from.
    initial_epoch = getattr(model, "_initial_epoch", None) or 0
    device_images = jax.device_put(np.asarray(images, np.uint8))
    device_labels = jax.device_put(np.asarray(labels, np.int32))
    run_epoch = epoch_function(model, pad)
    logs = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        start = time.perf_counter()
        step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        indices = stream.batch_indices(len(labels), batch_size, seed, step, epoch_steps)
        offsets, flips = stream.crop_offsets_and_flips(batch_size, seed, step, epoch_steps, pad, flip)
        state, logs, losses = run_epoch(
            get_state(model), device_images, device_labels, indices, offsets, flips
        )
        losses = np.asarray(losses)
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            # Raised by the non-finite guard, before the epoch's state is
            # assigned: the model and the checkpoint keep the last finite one.
            callbacks.on_train_batch_end(int(bad[0]), {"loss": float(losses[bad[0]])})
        set_state(model, state)
        logs = {k: float(v) for k, v in logs.items()}
        train_time = time.perf_counter() - start
        if validation_data is not None:
            val = model.evaluate(
                *validation_data, batch_size=batch_size, callbacks=callbacks,
                return_dict=True, verbose=0,
            )
            logs.update({f"val_{k}": float(v) for k, v in val.items()})
        callbacks.on_epoch_end(epoch, logs)
        if verbose:
            shown = " ".join(f"{k}={v:.4f}" for k, v in logs.items())
            print(
                f"epoch {epoch + 1}/{epochs} step {step + epoch_steps}: {shown} "
                f"({epoch_steps * batch_size / train_time:.0f} img/s)",
                flush=True,
            )
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return history
