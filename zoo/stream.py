"""What every in-memory training loop draws: the batches and their augmentation.

The stream of a run is a function of its seed and the global step only:

- `batch_indices`: which training images make up each batch;
- `crop_offsets_and_flips`: where each image of a batch is cropped out of
  its padded copy, and whether it is mirrored.

So a resumed run sees the batches an uninterrupted one would have, any
loop (Keras's `fit` or `zoo.scan_loop`) can pick up where another stopped,
and K seeds trained side by side draw exactly what K single runs would.
Both are drawn on the host with numpy (a few hundred kB per epoch) and the
pixels are cut on the device (`zoo.augment_ops.pad_crop_flip`).
"""

import functools

import numpy as np

# Separates the augmentation's random streams from the batch order's, which
# are seeded by (seed, pass).
_AUGMENT_STREAM = 0x61756700


def batch_indices(n, batch_size, seed, first_step, steps):
    """Indices of `steps` consecutive batches, from global step `first_step`.

    The stream is a sequence of passes over the `n` examples, each its own
    permutation seeded by (seed, pass), cut into batches; a batch may span
    two passes.

    Returns:
        int32 array (steps, batch_size).
    """
    start = first_step * batch_size
    positions = np.arange(start, start + steps * batch_size)
    passes = positions // n
    out = np.empty(positions.shape, np.int32)
    for p in np.unique(passes):
        mask = passes == p
        out[mask] = permutation(n, seed, int(p))[positions[mask] % n]
    return out.reshape(steps, batch_size)


@functools.lru_cache(maxsize=4)
def permutation(n, seed, index):
    """Pass `index` of the stream: a permutation of range(n) seeded by (seed, index)."""
    order = np.random.default_rng([seed, index]).permutation(n)
    order.setflags(write=False)  # Cached and shared: nobody may shuffle it in place.
    return order


def crop_offsets_and_flips(batch_size, seed, first_step, steps, pad, flip):
    """The paper's CIFAR augmentation draws of `steps` batches from `first_step`.

    Each image gets its own crop offset, uniform over the 2 * pad + 1 rows
    and columns of its padded copy, and a fair coin for the mirror; every
    step has its own generator, seeded by (seed, stream, step).

    Returns:
        (offsets int32 (steps, batch_size, 2) of (row, column) in
        [0, 2 * pad], flips bool (steps, batch_size)); all offsets are 0
        with pad=0 and all flips False with flip=False.
    """
    offsets = np.zeros((steps, batch_size, 2), np.int32)
    flips = np.zeros((steps, batch_size), bool)
    for i in range(steps):
        rng = np.random.default_rng([seed, _AUGMENT_STREAM, first_step + i])
        draws = rng.integers(0, 2 * pad + 1, (batch_size, 2), dtype=np.int32)
        coins = rng.random(batch_size) < 0.5
        if pad:
            offsets[i] = draws
        if flip:
            flips[i] = coins
    return offsets, flips
