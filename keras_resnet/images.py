"""Image files as the networks take them: decoded to 8-bit RGB, then the evaluation view.

    image = keras_resnet.images.open_rgb("cat.jpg")             # a PIL image, mode "RGB"
    pixels = keras_resnet.images.evaluation_view(image, 224)     # uint8 (224, 224, 3)

`open_rgb` decodes any file Pillow reads (JPEG, PNG, BMP, GIF, WebP, TIFF,
...) to 8-bit RGB: a 16-bit PNG keeps the high byte of each value (as
TensorFlow's decoder and libpng's 8-bit reading do; Pillow's own
`convert("RGB")` would clip it to white), a CMYK JPEG is converted to RGB,
grayscale, palette and RGBA images to RGB (alpha dropped), an animation to
its first frame. A file it cannot read raises a ValueError naming the file.

`evaluation_view` is the one image the nets are evaluated on (Sec. 3.4 and
4.2 of the paper): the shorter side resized (bilinear, Pillow's, which
antialiases when it shrinks) to `resize_for(size, family)`, then the
central size x size crop. For the ImageNet nets that is the shorter side
at 256 and the centre 224 crop (`CROP_FRACTION`, as torchvision, timm and
keras-hub evaluate); for the CIFAR nets the shorter side at 32 and the
centre crop, so a 32x32 image is taken as it is. `center_offsets` is the
one definition of "the centre crop", which the zoo's pipelines use too.

Pillow is imported when an image is opened: `pip install pillow` (or the
`keras-resnet-zoo[zoo]` extra). Importing this module imports neither
Keras nor TensorFlow (the zoo's data module imports it).
"""

import numpy as np

# The files taken from a folder (compared lower-case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# Evaluation crop side / shorter side before the crop, per family
# (`keras_resnet.specs.DEFAULTS`'s keys; specs imports Keras).
CROP_FRACTION = {"cifar": 1.0, "imagenet": 224 / 256}
# The CIFAR nets' input side (`specs.DEFAULTS["cifar"].size`).
CIFAR_SIZE = 32


def pillow():
    """The `PIL.Image` module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(
            f"Reading image files needs Pillow, which is not installed ({error}): "
            "pip install pillow (or keras-resnet-zoo[zoo])."
        ) from error
    return Image


def open_rgb(path):
    """Decodes the image file at `path` to an 8-bit RGB PIL image.

    Args:
        path: a str or path-like naming an image file.

    Returns:
        A loaded `PIL.Image.Image` of mode "RGB" (see the module docstring
        for what each kind of file becomes).

    Raises:
        ValueError: naming the file, if it is missing, unreadable, not an
            image, truncated or corrupt, a decompression bomb (Pillow's
            limit), or of 32-bit pixels of unknown range.
        ImportError: Pillow is not installed.
    """
    Image = pillow()
    try:
        with Image.open(path) as image:
            image.load()
            return _eight_bit(image).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"Cannot decode image file {path}: {error}") from None


def _eight_bit(image):
    """A 16-bit grayscale image as 8-bit, as TF's decoder and libpng make it.

    Pillow's `convert("RGB")` clips 16-bit values to 255 (a white image);
    the high byte is the 8-bit value (Pillow's own 16-bit RGB decoding and
    `tf.io.decode_png` keep it too). Pillow opens 16-bit grayscale PNGs as
    "I;16" (or "I"); other 32-bit modes have no known range and are refused.
    A palette image with a transparent colour goes through RGBA (Pillow
    warns otherwise).
    """
    Image = pillow()
    sixteen = image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG")
    if sixteen:
        high = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(high, "L")
    if image.mode in ("I", "F"):
        raise ValueError(
            f"its pixels are 32-bit {'integers' if image.mode == 'I' else 'floats'} (Pillow mode "
            f"{image.mode!r}) of unknown range; convert it to 8-bit RGB"
        )
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA")
    return image


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def center_offsets(height, width, size):
    """(top, left) of the central size x size window: ints or tensors alike.

    The one definition of "the centre crop", for `evaluation_view` and the
    zoo's pipelines and evaluation views.
    """
    return (height - size) // 2, (width - size) // 2


def resize_for(size, family=None):
    """The shorter side an image is resized to before its central `size` crop.

    Args:
        size: the side of the square the net takes.
        family: "cifar" or "imagenet" (`keras_resnet.specs`); None for a net
            of unknown family: the CIFAR nets' view if `size` is theirs (32),
            the ImageNet nets' otherwise.

    Returns:
        An int: `size` for CIFAR, round(size / 0.875) for ImageNet (256 for 224).
    """
    if family is None:
        family = "cifar" if size == CIFAR_SIZE else "imagenet"
    return int(round(size / CROP_FRACTION[family]))


def evaluation_view(image, size, resize=None):
    """The shorter side of `image` resized to `resize`, then its central size x size crop.

    Args:
        image: a PIL image (e.g. from `open_rgb`).
        size: the side of the crop, an int >= 1.
        resize: the shorter side before the crop, an int >= `size`; default
            `size` (no margin: the CIFAR nets' view). `resize_for` gives each
            family's.

    Returns:
        uint8 array (size, size, channels). An image whose shorter side is
        `resize` already is not resampled.

    Raises:
        ValueError: `size` or `resize` out of range.
    """
    resize = size if resize is None else resize
    if not (_is_int(size) and _is_int(resize) and 1 <= size <= resize):
        raise ValueError(
            f"`size` must be an int >= 1 and `resize` an int >= size. Received size={size!r}, resize={resize!r}."
        )
    width, height = image.size
    if min(width, height) != resize:
        scale = resize / min(width, height)
        new = (max(resize, int(round(width * scale))), max(resize, int(round(height * scale))))
        image = image.resize(new, pillow().BILINEAR)
        width, height = new
    top, left = center_offsets(height, width, size)
    return np.asarray(image.crop((left, top, left + size, top + size)), np.uint8)
