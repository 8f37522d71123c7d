"""Is there anything to classify? The "no glyph found" check of letter and digit models.

A letter or digit model always answers with one of its classes, and with near-certainty for inputs unlike any
training image: a uniform grey square, a fully transparent PNG (white once composited) or a single black pixel
was a confident `I`. Such an image has no ink: after the polarity step and the resizing/framing of
`tfnets.experiment.images.prepare`, the model-sized image is near-uniform (all its pixels within
`MIN_GLYPH_CONTRAST` grey levels). Large noise images fall under the same rule: resampled to 28x28, each pixel
averages thousands of random ones, and what the model would see is a flat grey.

The check is for models whose training images are glyphs (an export with a recorded `framing`); a uniform photo
is still a photo, and photo models (CIFAR-10, cat-vs-car) classify it.
"""

import numpy as np

# Smaller than any stroke: a framed glyph spans 0..255, and a training image of notMNIST or MNIST spans at
# least a few hundred levels before scaling. The same threshold as the framing's own blank test (MIN_CONTRAST
# in `tfnets.experiment.images`), on the image the model would see.
MIN_GLYPH_CONTRAST = 16.0


def expects_glyphs(spec):
    """True for a greyscale model trained on framed glyphs (its export records a `framing`)."""
    return spec.framing is not None and spec.channels == 1


def has_glyph(candidate):
    """A model-sized image `(H, W[, C])` of raw pixels 0..255 -> False when it is near-uniform (no ink)."""
    pixels = np.asarray(candidate, np.float32)
    return bool(pixels.size) and float(pixels.max() - pixels.min()) >= MIN_GLYPH_CONTRAST
