"""The paper's ImageNet augmentations as TensorFlow ops, for tf.data pipelines.

(The CIFAR crop and flip, shared by every backend, is `zoo.augment_ops`; the centre crop is
`keras_resnet.images.center_offsets`, which `keras-resnet predict` uses too.)

All randomness is stateless and driven by an explicit seed tensor, so a
pipeline seeded the same way yields the same batches. Images are float32
RGB on the 0..255 scale throughout; mean subtraction happens in the model.
"""

import tensorflow as tf

from keras_resnet import images as image_files

# AlexNet's PCA lighting: eigenvalues and eigenvectors of the RGB pixel
# covariance of ImageNet (on the 0..1 scale), as published with
# fb.resnet.torch; scaled to 0..255 where applied.
_EIGVAL = tf.constant([0.2175, 0.0188, 0.0045])
_EIGVEC = tf.constant(
    [
        [-0.5675, 0.7192, 0.4009],
        [-0.5808, -0.0045, -0.8140],
        [-0.5836, -0.6948, 0.4203],
    ]
)


def resize_shorter(image, size):
    """Resizes (H, W, C) so its shorter side is `size`, keeping aspect ratio."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
    new = tf.cast(tf.round(shape * scale), tf.int32)
    new = tf.maximum(new, tf.cast(size, tf.int32))
    return tf.image.resize(image, new, method="bilinear")


def center_crop(image, size):
    """The central size x size window of (H, W, C)."""
    shape = tf.shape(image)
    top, left = image_files.center_offsets(shape[0], shape[1], size)
    return image[top : top + size, left : left + size]


def imagenet_train(image, seed, size=224, scale=(256, 480), flip=True, lighting_std=0.1):
    """Scale augmentation, random crop, flip and PCA lighting (Sec. 3.4).

    Args:
        image: one decoded (H, W, 3) image, any dtype.
        seed: int64 tensor of shape (2,).
        size: crop size.
        scale: (min, max) of the shorter side, sampled uniformly.
        flip: random horizontal flip.
        lighting_std: std of AlexNet's PCA lighting noise (0 disables).
    """
    s_seed, c_seed, f_seed, l_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    shorter = tf.random.stateless_uniform(
        [], s_seed, minval=scale[0], maxval=scale[1] + 1, dtype=tf.int32
    )
    image = resize_shorter(tf.cast(image, tf.float32), shorter)
    image = tf.image.stateless_random_crop(image, [size, size, 3], c_seed)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, f_seed)
    if lighting_std:
        alpha = tf.random.stateless_normal([3], l_seed, stddev=lighting_std)
        image = image + 255.0 * tf.linalg.matvec(_EIGVEC, alpha * _EIGVAL)
    return image


def imagenet_eval(image, size=224, resize=256):
    """Resize the shorter side to `resize`, then take the centre crop."""
    image = resize_shorter(tf.cast(image, tf.float32), resize)
    return center_crop(image, size)
