"""Training without TensorFlow (e.g. KERAS_BACKEND=jax): arrays in memory.

Images stay uint8 in host memory; each batch goes to the device, where the
paper's augmentation runs as Keras layers (`zoo.augment_layers`). With
several devices, `keras.distribution.DataParallel` splits every batch.
TensorBoard logs are not written (the callback needs TensorFlow).
"""

import keras
import numpy as np

from zoo import augment_layers
from zoo import datasets
from zoo import model as model_lib
from zoo import recipes
from zoo import runs


class Batches(keras.utils.PyDataset):
    """Shuffled batches of in-memory arrays; `steps` batches per epoch.

    Each pass over the data has its own seeded permutation, so the stream
    is repeatable.
    """

    def __init__(self, images, labels, batch_size, steps, seed):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self.epoch = 0
        self._perms = {}

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        n = len(self.labels)
        start = (self.epoch * self.steps + index) * self.batch_size
        positions = np.arange(start, start + self.batch_size)
        passes = positions // n
        idx = np.empty(self.batch_size, np.int64)
        for p in np.unique(passes):
            if p not in self._perms:
                self._perms = {p: np.random.default_rng([self.seed, p]).permutation(n)}
            mask = passes == p
            idx[mask] = self._perms[p][positions[mask] % n]
        return self.images[idx].astype(np.float32), self.labels[idx]

    def on_epoch_end(self):
        self.epoch += 1


def run(recipe, workdir, dataset, data_dir, strategy, verbose):
    """Trains on in-memory arrays (no TensorFlow); `strategy` must be None."""
    if recipe.family != recipes.CIFAR:
        raise ValueError(
            f"Without TensorFlow only CIFAR-family recipes run (in-memory data). "
            f"Received recipe {recipe.name!r} (family={recipe.family!r})."
        )
    if datasets.parse(dataset)[0] == "tfds":
        raise ValueError(
            f"--dataset={dataset} needs TensorFlow Datasets; without TensorFlow use "
            "--dataset=digits or --dataset=folder:PATH."
        )
    devices = keras.distribution.list_devices()
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        print(f"zoo: keras.distribution.DataParallel over {len(devices)} devices")
        if recipe.batch_size % len(devices):
            raise ValueError(
                f"The global batch_size={recipe.batch_size} does not split evenly over "
                f"{len(devices)} devices."
            )
    splits = datasets.load_arrays(dataset, recipe, data_dir)
    x, y = splits.train
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    model = model_lib.build(recipe, mean)
    inputs = keras.Input(model.input_shape[1:], name="pixels")
    augmented = inputs
    for layer in augment_layers.cifar(recipe.pad, recipe.flip, seed=recipe.seed):
        augmented = layer(augmented)
    train_model = keras.Model(inputs, model(augmented), name=f"{recipe.name}_train")
    schedule = runs.compile_model(train_model, recipe)
    train_model.fit(
        Batches(x, y, recipe.batch_size, recipe.epoch_steps, recipe.seed),
        epochs=recipe.epochs,
        validation_data=_float(splits.val) if recipe.val_size else None,
        batch_size=None,
        callbacks=runs.callbacks(workdir, schedule, tensorboard=False),
        verbose=verbose,
    )
    xt, yt = _float(splits.test)
    return runs.finish(
        workdir,
        recipe,
        model,
        train_model,
        xt,
        splits.classes,
        {"y": yt, "batch_size": recipe.batch_size},
    )


def _float(split):
    images, labels = split
    return images.astype(np.float32), labels
