"""CIFAR augmentation as Keras layers that run on the device, any backend.

The JAX (no TensorFlow) path puts these in front of the model during
training; they are identity at inference and are not saved in model.keras.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class RandomPadCrop(keras.layers.Layer):
    """Zero-pads by `pad` and takes a random crop of the input size, per image.

    Keras' RandomCrop draws one offset per batch; the paper's augmentation
    draws one per image. The crop is two one-hot matmuls (rows, then
    columns), which is exact and fast on accelerators.

    Args:
        pad: pixels of zero padding on each side (the paper's 4).
        seed: seed of the layer's random generator.
    """

    def __init__(self, pad=4, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.pad = pad
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or not self.pad:
            return images
        height, width = images.shape[1], images.shape[2]
        batch = ops.shape(images)[0]
        p = self.pad
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        offsets = keras.random.randint((batch, 2), 0, 2 * p + 1, seed=self.seed_generator)
        rows = ops.one_hot(offsets[:, :1] + ops.arange(height)[None], height + 2 * p, dtype=images.dtype)
        cols = ops.one_hot(offsets[:, 1:] + ops.arange(width)[None], width + 2 * p, dtype=images.dtype)
        images = ops.einsum("bip,bpqc->biqc", rows, padded)
        return ops.einsum("bjq,biqc->bijc", cols, images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "seed": self.seed}


def cifar(pad=4, flip=True, seed=None):
    """The paper's CIFAR augmentation as a list of layers."""
    layers = [RandomPadCrop(pad, seed=seed, name="random_pad_crop")]
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="random_flip"))
    return layers
