"""Cat-vs-car data preparation for `apps.catcar_mlp`: the validation split the assignment lacks, the training-set
augmentation, and the pixels -> MLP inputs transform (with what the export needs to repeat it on a user's image).

Not an app (leading underscore): `apps.catcar_mlp` is the story, this module one job of it.
"""

import dataclasses

import numpy as np

from tfnets.data import to_signed_labels
from tfnets.experiment.cli import require


def carve_validation(data, num_validation, seed):
    """Move a class-stratified, seeded random `num_validation` of the training images into the validation split."""
    require(
        num_validation < len(data.y_train),
        f"--num-validation {num_validation} must be smaller than the training set ({len(data.y_train)} images)",
    )
    rng = np.random.default_rng(seed)
    valid_index = []
    for label in np.unique(data.y_train):
        members = np.flatnonzero(data.y_train == label)
        share = int(round(num_validation * len(members) / len(data.y_train)))
        valid_index.extend(rng.choice(members, size=share, replace=False))
    is_valid = np.zeros(len(data.y_train), bool)
    is_valid[valid_index] = True
    note = (
        data.note.replace("no validation split (as in the assignment)", "")
        + f"validation = {is_valid.sum()} training images (stratified random, seed {seed}); test only reported"
    )
    return dataclasses.replace(
        data,
        x_train=data.x_train[~is_valid],
        y_train=data.y_train[~is_valid],
        x_valid=data.x_train[is_valid],
        y_valid=data.y_train[is_valid],
        note=note,
    )


def shifted(images, dy, dx):
    """Images (N, H, W) moved by (dy, dx) pixels; the uncovered border repeats the edge pixels."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    h, w = images.shape[1:]
    return padded[:, pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def augment(images, labels, mode):
    """Training images (N, 32, 32) -> more images: mirror (x2) and 2-pixel shifts up/down/left/right (x5)."""
    if mode in ("flip", "flip+shift"):
        images, labels = np.concatenate([images, images[:, :, ::-1]]), np.concatenate([labels, labels])
    if mode == "flip+shift":
        moves = [(0, 0), (-2, 0), (2, 0), (0, -2), (0, 2)]
        images = np.concatenate([shifted(images, dy, dx) for dy, dx in moves])
        labels = np.tile(labels, len(moves))
    return images, labels


def prepare(data, config):
    """Upright images in [0, 1] -> flattened MLP inputs (N, 1024) and -1/+1 targets; returns (splits, scaling).

    `config`: the app's `Config` (its `augment`, `inputs` and `zca_epsilon`). `scaling` = (pixel_scale, mean_image,
    whitening): model input = whiten(raw_pixel * pixel_scale - mean_image), which is what the export needs for
    `apps.predict`; `whitening` is a `tfnets.nn.preprocessing.ZCA` (its layer goes in front of the exported model)
    for `--inputs zca`, else None.
    """
    from tfnets.nn.preprocessing import fit_zca

    x_train, y_train = augment(data.x_train, data.y_train, config.augment)
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32)  # noqa: E731
    x_train, x_valid, x_test = flat(x_train), flat(data.x_valid), flat(data.x_test)
    pixel_scale, mean_image, whitening = 1 / 255.0, None, None
    if config.inputs == "zca":
        # Whitened, but at the centred pixels' overall std: the sweep's learning rates and init scales were
        # chosen for inputs of that size, and unit-variance inputs would saturate the tanh units.
        whitening = fit_zca(x_train, epsilon=config.zca_epsilon)
        whitening = dataclasses.replace(
            whitening, output_scale=whitening.output_scale * float((x_train - x_train.mean(axis=0)).std())
        )
        x_train, x_valid, x_test = (whitening.apply(x) for x in (x_train, x_valid, x_test))
    elif config.inputs != "raw":
        # Centring matters: all-positive pixels make every hidden unit's update share one sign, and with
        # learning rate 0.35 the tanh units saturate within an epoch. One scalar std (not per pixel) keeps the
        # transform expressible as raw*scale - mean for the export metadata.
        mean = x_train.mean(axis=0)
        std = float((x_train - mean).std()) if config.inputs == "standardize" else 1.0
        x_train, x_valid, x_test = ((x - mean) / std for x in (x_train, x_valid, x_test))
        pixel_scale, mean_image = 1 / (255.0 * std), mean / std
    prepared = dataclasses.replace(
        data,
        x_train=x_train,
        y_train=to_signed_labels(y_train),
        x_valid=x_valid,
        y_valid=to_signed_labels(data.y_valid),
        x_test=x_test,
        y_test=to_signed_labels(data.y_test),
    )
    return prepared, (pixel_scale, mean_image, whitening)
