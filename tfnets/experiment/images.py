"""Turning a user's image into the kind of image an exported model was trained on.

An export's `metadata.json` describes its training images (`tfnets.experiment.export.export_model(image_style=...)`):

* `background`: `"dark"` (light strokes on a dark background, as in MNIST and notMNIST), `"light"`, or null
  where polarity means nothing (photos: CIFAR-10, cat-vs-car);
* `framing`: how a glyph sits in the training frame: `"mnist"` (the glyph's bounding box scaled, aspect kept,
  into a 20x20 box, then shifted so that its centre of mass is the centre of the 28x28 frame: the MNIST
  normalisation), `"fill"` (the bounding box stretched to fill the whole frame, as notMNIST's glyphs are), or
  null (the whole image is the input).

`prepare(pixels, spec)` turns one decoded image into candidate model-sized images: one, or two (as given and
inverted) when its border does not say which polarity it has, for the caller to let the model decide.
Every array here is float32 `(H, W, C)` of raw pixels in 0..255; the export does the scaling.
"""

import dataclasses

import numpy as np

from tfnets.errors import ModelError
from tfnets.experiment.image_files import DEFAULT_MAX_PIXELS

IMAGE_STYLES = {
    "mnist": {"background": "dark", "framing": "mnist"},
    "notmnist": {"background": "dark", "framing": "fill"},
    "photo": {"background": None, "framing": None},
}
FRAMINGS = {
    "mnist": "glyph scaled into a 20x20 box, centred by centre of mass in 28x28",
    "fill": "glyph stretched to fill the frame",
}
INVERT_CHOICES = ("auto", "yes", "no")

# Polarity is read from the border only when this share of its pixels lies on one side of mid-grey: glyphs
# that fill the frame (notMNIST) touch the border, and about one in five notMNIST test images has a border that
# is more light than dark although its background is dark.
CLEAR_BORDER = 0.9
# Below this share of the way from background to the brightest pixel, a pixel is background for the glyph's
# bounding box (drops faint anti-aliasing and scanner noise).
INK_LEVEL = 0.2
# A glyph whose brightest pixel is less than this above the background is taken as blank (no framing).
MIN_CONTRAST = 16.0


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What one exported model takes: size, channels, training-image conventions and the user's options."""

    height: int
    width: int
    channels: int
    background: str = None
    framing: str = None
    resize: bool = True
    invert: str = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are refused unread

    @classmethod
    def from_metadata(cls, metadata, pixel_shape, **options):
        channels = pixel_shape[2] if len(pixel_shape) == 3 else 1
        return cls(
            int(pixel_shape[0]),
            int(pixel_shape[1]),
            int(channels),
            metadata.get("background"),
            metadata.get("framing"),
            **options,
        )


def border(pixels):
    """The outermost ring of pixels, `(2H + 2W - 4, C)`."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def border_polarity(pixels):
    """`"dark"` or `"light"` when the border (greyscale) clearly is one, else None."""
    light = float((border(pixels).mean(axis=-1) > 127.5).mean())
    if light >= CLEAR_BORDER:
        return "light"
    if light <= 1 - CLEAR_BORDER:
        return "dark"
    return None


def invert(pixels):
    return 255.0 - pixels


def resample(pixels, height, width):
    """`(h, w, C)` -> `(height, width, C)` with a Lanczos filter (its support widens when shrinking, so it
    averages rather than aliases), per channel in float so no rounding creeps in."""
    from PIL import Image

    if pixels.shape[:2] == (height, width):
        return pixels.astype(np.float32)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[..., k], np.float32), "F").resize(
                (width, height), Image.Resampling.LANCZOS
            )
        )
        for k in range(pixels.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.float32)


def resize_padded(pixels, height, width):
    """Resize keeping the aspect ratio: pad to the target's aspect with the border's median colour, resample."""
    h, w, c = pixels.shape
    if w * height > h * width:
        new_h, new_w = max(h, round(w * height / width)), w
    else:
        new_h, new_w = h, max(w, round(h * width / height))
    canvas = np.empty((new_h, new_w, c), np.float32)
    canvas[...] = np.median(border(pixels), axis=0)
    top, left = (new_h - h) // 2, (new_w - w) // 2
    canvas[top : top + h, left : left + w] = pixels
    return resample(canvas, height, width)


def frame_glyph(grey, height, width, framing):
    """A light-on-dark glyph `(h, w, 1)` framed like the training set, or None when the image is blank.

    Levels first: the background (the lower of the border median and the 5th percentile) goes to 0 and the
    brightest pixel to 255, as in the training glyphs. Then the bounding box of the ink is cropped and
    either stretched to the frame (`fill`) or scaled into the central 20/28 of it and shifted so that its
    centre of mass is the frame's centre (`mnist`); the rest of the frame is background (0).
    """
    g = grey[..., 0]
    low = min(float(np.median(border(grey))), float(np.percentile(g, 5)))
    high = float(g.max())
    if high - low < MIN_CONTRAST:
        return None
    g = np.clip((g - low) * (255.0 / (high - low)), 0, 255)
    rows, cols = np.nonzero(g.max(axis=1) > INK_LEVEL * 255)[0], np.nonzero(g.max(axis=0) > INK_LEVEL * 255)[0]
    crop = g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1, None]
    if framing == "fill":
        return resample(crop, height, width)
    if framing != "mnist":
        raise ValueError(f"unknown framing {framing!r}; expected one of {sorted(FRAMINGS)}")
    box_h, box_w = height * 20 / 28, width * 20 / 28
    scale = min(box_h / crop.shape[0], box_w / crop.shape[1])
    glyph = resample(crop, max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))[..., 0]
    # MNIST's centres of mass sit at pixel index (14, 14) of 28x28 (measured: 13.99 and 14.00 on average).
    mass = glyph.sum()
    centre_y = float((glyph.sum(axis=1) * np.arange(glyph.shape[0])).sum() / mass)
    centre_x = float((glyph.sum(axis=0) * np.arange(glyph.shape[1])).sum() / mass)
    top, left = round(height / 2 - centre_y), round(width / 2 - centre_x)
    frame = np.zeros((height, width), np.float32)
    # Paste with clipping: a lopsided glyph centred by mass may overhang the frame, as in MNIST itself.
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + glyph.shape[0], height), min(left + glyph.shape[1], width)
    frame[y0:y1, x0:x1] = glyph[y0 - top : y1 - top, x0 - left : x1 - left]
    return frame[..., None]


def fit_to_model(pixels, spec):
    """Size (and framing) for one polarity-corrected image; returns (image, notes)."""
    h, w = pixels.shape[:2]
    if (h, w) == (spec.height, spec.width):
        return pixels, []  # already the training size: taken as framed like the training images
    if not spec.resize:
        raise ModelError(f"is {w}x{h} pixels; the model expects {spec.width}x{spec.height} (--no-resize)")
    if spec.framing and spec.channels == 1:
        framed = frame_glyph(pixels, spec.height, spec.width, spec.framing)
        if framed is not None:
            return framed, [("framed", f"{w}x{h}")]
    return resize_padded(pixels, spec.height, spec.width), [("resized", f"{w}x{h}")]


def prepare(pixels, spec):
    """One decoded image `(h, w, C)` -> (candidates, notes).

    `candidates` holds one model-sized image, or two (as given, inverted) when `--invert auto` meets a
    greyscale image whose border has no clear polarity; `notes` lists `(kind, detail)` of what was done.
    """
    pixels = np.asarray(pixels, np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if spec.invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}, got {spec.invert!r}")
    notes = []
    if not spec.resize and pixels.shape[:2] != (spec.height, spec.width):
        fit_to_model(pixels, spec)  # raises the size error before any other work
    if spec.invert == "yes":
        variants = [invert(pixels)]
        notes.append(("inverted", "--invert yes"))
    elif spec.invert == "no" or spec.background is None or spec.channels != 1:
        variants = [pixels]
    else:
        seen = border_polarity(pixels)
        if seen is None:
            variants = [pixels, invert(pixels)]
        elif seen != spec.background:
            variants = [invert(pixels)]
            notes.append(("inverted", f"{seen} background"))
        else:
            variants = [pixels]
    candidates = []
    for variant in variants:
        image, fit_notes = fit_to_model(variant, spec)
        candidates.append(image)
    return candidates, notes + fit_notes
