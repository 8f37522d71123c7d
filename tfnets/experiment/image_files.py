"""Reading the image and array files a user hands to `apps.predict`: any failure is one `ModelError` line for that
file (which predict reports and skips), and no single file can take more than a bounded amount of memory.

Images: the header is read first, and an image of more than `max_pixels` pixels (default `DEFAULT_MAX_PIXELS`,
Pillow's own limit) is refused before a pixel is decoded: a 20000x20000 black PNG is 388 KB on disk and 400 MB
decoded (a decompression bomb). Below the limit, decoding holds the image as Pillow stores it (at most 4 bytes
a pixel) plus one converted copy (palette and 1-bit images are converted before reducing, and Pillow reduces
RGBA through a premultiplied copy): about 8 bytes per pixel of the limit at most. An image larger than
`MAX_WORKING_SIDE` on a side is box-reduced right after decoding, so the float arrays of
`tfnets.experiment.images` stay small (the model sees 28x28 or 32x32 anyway). JPEGs that large are decoded at a
reduced scale directly (`Image.draft`).

Arrays (`.npy`, `.npz`): `tfnets.data.arrays` (plain numbers only, header checked before allocating, at most
`tfnets.data.arrays.MAX_ARRAY_BYTES`). Only regular files are read: a FIFO or a device behind a symlink is
refused, not waited on or read forever.
"""

import glob
import math
import struct
import zlib

from tfnets.errors import DataError, ModelError

# Pillow's default `Image.MAX_IMAGE_PIXELS` (about 9459x9459): above it Pillow warns, above twice it refuses.
DEFAULT_MAX_PIXELS = 89_478_485
# Larger images are box-reduced to at most this many pixels a side right after decoding.
MAX_WORKING_SIDE = 2048
# What Pillow raises on a damaged or crafted image file, besides DecompressionBombError (not an OSError): its
# plugins use SyntaxError and struct.error for bad headers.
PIL_ERRORS = (OSError, ValueError, SyntaxError, struct.error, EOFError, zlib.error, IndexError, TypeError, KeyError)
# Modes `Image.reduce` accepts; others (palette, 1-bit, ...) are converted before reducing.
REDUCIBLE_MODES = {"L", "LA", "RGB", "RGBA", "I", "F", "La", "RGBa"}
GREY_MODES = ("L", "1", "I", "I;16", "LA", "P", "F")


def too_large_message(path, width, height, max_pixels):
    return (
        f"{path} is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
        "(--max-pixels): a possible decompression bomb, not decoded"
    )


def _missing(path):
    if glob.has_magic(str(path)):
        return ModelError(f"no file matches {path}")
    return ModelError(f"input file {path} does not exist")


def _orientation_transpose(image):
    """The `Image.Transpose` that EXIF orientation asks for (as `ImageOps.exif_transpose`), or None."""
    from PIL import Image

    orientation = image.getexif().get(0x0112)
    return {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)


def _decode(stream, path, channels, max_pixels):
    """Pillow image in `stream` -> (uint8 PIL image in "L" or "RGB", was it colour), memory bounded."""
    from PIL import Image

    # Pillow's own bomb check runs inside Image.open and raises without the image's size: it is switched off
    # for the open only (predict reads one file at a time), and the check below (same limit or lower) decides.
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        image = Image.open(stream)
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ModelError(too_large_message(path, width, height, max_pixels))
        factor = math.ceil(max(width, height) / MAX_WORKING_SIDE)
        if factor > 1:
            image.draft(None, (width // factor, height // factor))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
        image.load()
        colour = image.mode not in GREY_MODES
        transparent = "A" in image.getbands() or image.info.get("transparency") is not None
        transpose = _orientation_transpose(image)
        factor = math.ceil(max(image.size) / MAX_WORKING_SIDE)
        if factor > 1:
            if image.mode not in REDUCIBLE_MODES:  # 1-bit, 16-bit grey, palette, CMYK, ...
                grey = image.mode in GREY_MODES and image.mode != "P"
                image = image.convert("L" if grey else "RGBA" if transparent else "RGB")
            image = image.reduce(factor)
        if transpose is not None:
            image = image.transpose(transpose)
        if transparent:  # transparent pixels show as white
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        return image.convert("L" if channels == 1 else "RGB"), colour


def read_image(path, channels, max_pixels=DEFAULT_MAX_PIXELS):
    """An image file -> (float32 (H, W, C) in 0..255, was it colour). Transparent pixels show as white.

    Raises `ModelError` (one line naming the file) for a missing, unreadable or too large image.
    """
    import numpy as np
    from PIL import Image

    from tfnets.data.arrays import MAX_ARRAY_BYTES, open_regular  # imported here: `--help` stays fast

    try:
        with open_regular(path, MAX_ARRAY_BYTES, "image file") as (stream, _):
            converted, colour = _decode(stream, path, channels, max_pixels)
    except FileNotFoundError:
        raise _missing(path) from None
    except IsADirectoryError:
        raise ModelError(f"{path} is a folder with no image files") from None
    except DataError as err:
        raise ModelError(str(err)) from None
    except Image.DecompressionBombError as err:  # Pillow's check at load time, for frames after the first
        raise ModelError(f"{path} is over the decompression bomb limit ({err})") from None
    except PIL_ERRORS as err:
        raise ModelError(f"{path} is not a readable image ({type(err).__name__})") from None
    array = np.asarray(converted, np.float32)
    return (array[..., None] if channels == 1 else array), colour


def read_array(path):
    """A `.npy` array, or the first array of a `.npz`; raises `ModelError` naming the file when unreadable."""
    from tfnets.data.arrays import read_npy, read_npz

    try:
        if str(path).lower().endswith(".npz"):
            arrays = read_npz(path)
            if not arrays:
                raise ModelError(f"{path} holds no arrays")
            return next(iter(arrays.values()))
        return read_npy(path)
    except FileNotFoundError:
        raise _missing(path) from None
    except IsADirectoryError:
        raise ModelError(f"{path} is a folder, not a .npy/.npz array") from None
    except DataError as err:
        raise ModelError(f"{err} (not a readable .npy/.npz array)") from None
