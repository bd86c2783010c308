"""Reference inputs and numpy references that several test modules and check scripts share."""

import numpy as np


def images_with_nan(shape, seed=0):
    """Row 0 all NaN, row 1 one NaN pixel, row 2 one +inf pixel, row 3 clean."""
    x = np.random.default_rng(seed).uniform(0, 255, (4,) + shape).astype("float32")
    x[0] = np.nan
    x[1, 5, 7, 2] = np.nan
    x[2, 3, 2, 0] = np.inf
    return x


def pad_crop_flip(images, offsets, flips, pad):
    """The paper's CIFAR augmentation, written out with numpy slicing."""
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = images.shape[1:3]
    out = np.stack([padded[i, r : r + height, c : c + width] for i, (r, c) in enumerate(offsets)])
    out[flips] = out[flips][:, :, ::-1]
    return out
