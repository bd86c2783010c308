"""The paper's CIFAR augmentation in Keras ops: any backend, on the device.

`pad_crop_flip` is the one implementation of "pad 4 pixels on each side,
take a random 32x32 crop, mirror half of the images" (Sec. 4.2). It takes
the random draws as arguments; every loop (the JAX ones, and the tf.data
pipeline of the TensorFlow path) draws them from the seed and the global
step with `zoo.stream`, so a seed trains on the same images on every
backend. The same draws give the same pixels on every backend
(tests/test_zoo_equivalence.py).
"""

from keras import ops


def pad_crop_flip(images, offsets, flips, pad):
    """Zero-pads by `pad`, crops each image at its offset, mirrors where flipped.

    Args:
        images: (B, H, W, C) batch, any dtype (the output has the same).
        offsets: int (B, 2): (row, column) of each crop's top-left corner in
            the padded image, in [0, 2 * pad].
        flips: bool (B,): which images to mirror horizontally.
        pad: zero padding on each side.

    Every output pixel is gathered from one input pixel (one gather over
    the flattened batch), so values are copied exactly, NaN and infinities
    included, and a pixel cropped away cannot affect the result.
    """
    batch = ops.shape(images)[0]
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    if pad:
        images = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    padded_height, padded_width = height + 2 * pad, width + 2 * pad
    offsets = ops.cast(offsets, "int32")
    rows = offsets[:, :1] + ops.arange(height, dtype="int32")[None]  # (B, H)
    columns = offsets[:, 1:] + ops.arange(width, dtype="int32")[None]  # (B, W)
    # A mirrored image takes its columns in reverse order.
    columns = ops.where(ops.cast(flips, "bool")[:, None], ops.flip(columns, axis=1), columns)
    first = ops.arange(batch, dtype="int32") * (padded_height * padded_width)
    flat = first[:, None, None] + rows[:, :, None] * padded_width + columns[:, None, :]
    pixels = ops.reshape(images, (-1, channels))
    return ops.reshape(ops.take(pixels, ops.reshape(flat, (-1,)), axis=0), (batch, height, width, channels))
