"""Training without TensorFlow (e.g. KERAS_BACKEND=jax): arrays in memory.

Every batch and its augmentation come from `zoo.stream`, as functions of
the seed and the global step; the pixels are cut by
`zoo.augment_ops.pad_crop_flip`. On JAX with one device the uint8 images
live on the device and each epoch is one compiled program
(`zoo.scan_loop`). Otherwise Keras's `fit` takes batches from host memory
(`Batches`), and with several devices `keras.distribution.DataParallel`
splits every batch. Both loops train the same model
(`zoo.model.training_model`) on the same batches.
TensorBoard logs are not written (the callback needs TensorFlow).
"""

import keras
import numpy as np

from zoo import augment_ops
from zoo import callbacks as callbacks_lib
from zoo import datasets
from zoo import model as model_lib
from zoo import recipes
from zoo import results as results_lib
from zoo import stream


class Batches(keras.utils.PyDataset):
    """`steps` augmented batches per epoch of in-memory arrays, from `zoo.stream`.

    Keras calls a PyDataset's `on_epoch_end` once more than there are epochs
    (also after it peeks at a batch to build the model), so the epoch is
    not counted here: the `epoch_callback` sets it from `fit`'s own epoch
    number, which also makes a resumed run continue the same stream.
    """

    def __init__(self, images, labels, batch_size, steps, seed, pad=0, flip=False):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self.pad, self.flip = pad, flip
        self.epoch = 0
        self.epoch_callback = keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs=None: setattr(self, "epoch", epoch)
        )

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        step = self.epoch * self.steps + index
        idx = stream.batch_indices(len(self.labels), self.batch_size, self.seed, step, 1)[0]
        offsets, flips = stream.crop_offsets_and_flips(
            self.batch_size, self.seed, step, 1, self.pad, self.flip
        )
        images = augment_ops.pad_crop_flip(
            self.images[idx].astype(np.float32), offsets[0], flips[0], self.pad
        )
        return keras.ops.convert_to_numpy(images), self.labels[idx]


def run(recipe, workdir, dataset, data_dir, verbose, loop="auto"):
    """Trains on in-memory arrays (no TensorFlow) from a `zoo.datasets.Dataset`; see `zoo.train` for `loop`."""
    if recipe.family != recipes.CIFAR:
        raise ValueError(
            f"Without TensorFlow only CIFAR-family recipes run (in-memory data). "
            f"Received recipe {recipe.name!r} (family={recipe.family!r})."
        )
    if dataset.kind == datasets.TFDS:
        raise ValueError(
            f"--dataset={dataset} needs TensorFlow Datasets; without TensorFlow use "
            "--dataset=digits or --dataset=folder:PATH."
        )
    # keras.distribution is JAX's; PyTorch trains on one device here.
    devices = keras.distribution.list_devices() if keras.backend.backend() == "jax" else ["cpu:0"]
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        print(f"zoo: keras.distribution.DataParallel over {len(devices)} devices")
    else:
        print(f"zoo: training on 1 device ({devices[0]})")
        if recipe.batch_size % len(devices):
            raise ValueError(
                f"The global batch_size={recipe.batch_size} does not split evenly over "
                f"{len(devices)} devices."
            )
    splits = datasets.load_arrays(dataset, recipe, data_dir)
    x, y = splits.train
    model, train_model, schedule = build_train_model(recipe, x)
    callbacks = callbacks_lib.callbacks(workdir, schedule, tensorboard=False)
    val = _float(splits.val) if recipe.val_size else None
    if use_scan_loop(loop, recipe, devices):
        from zoo import scan_loop

        scan_loop.fit(
            train_model, x, y,
            batch_size=recipe.batch_size,
            epoch_steps=recipe.epoch_steps,
            epochs=recipe.epochs,
            seed=recipe.seed,
            pad=recipe.pad,
            flip=recipe.flip,
            validation_data=val,
            callbacks=callbacks,
            verbose=verbose,
        )
    else:
        batches = Batches(
            x, y, recipe.batch_size, recipe.epoch_steps, recipe.seed, recipe.pad, recipe.flip
        )
        train_model.fit(
            batches,
            epochs=recipe.epochs,
            validation_data=val,
            batch_size=None,
            # The batches are in `batch_indices` order already; Keras would
            # otherwise permute their order within each epoch.
            shuffle=False,
            callbacks=[batches.epoch_callback] + callbacks,
            verbose=verbose,
        )
    xt, yt = _float(splits.test)
    return results_lib.finish(
        workdir,
        recipe,
        model,
        train_model,
        xt,
        splits.classes,
        {"y": yt, "batch_size": recipe.batch_size},
    )


def build_train_model(recipe, images):
    """`zoo.model.build_training` with the per-pixel mean of `images`."""
    return model_lib.build_training(recipe, images.mean(axis=0, dtype=np.float64).astype(np.float32))


def use_scan_loop(loop, recipe, devices):
    """Whether to train with `zoo.scan_loop`: asked for, or "auto" on one accelerator.

    Raises:
        ValueError: for loop="scan" where it cannot run.
    """
    possible = keras.backend.backend() == "jax" and len(devices) == 1 and not recipe.run_eagerly
    if loop == "scan" and not possible:
        raise ValueError(
            "--loop=scan needs KERAS_BACKEND=jax, one device and run_eagerly=False. "
            f"Received backend={keras.backend.backend()!r}, {len(devices)} devices, "
            f"run_eagerly={recipe.run_eagerly}."
        )
    if loop == "auto":
        # XLA's CPU backend runs a loop of convolutions ~25x slower than the
        # same step called from Python (benchmarks/gpu_cifar.py on a CPU).
        return possible and not devices[0].lower().startswith("cpu")
    return loop == "scan"


def _float(split):
    images, labels = split
    return images.astype(np.float32), labels
