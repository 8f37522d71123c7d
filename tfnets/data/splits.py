"""The `Splits` container every loader returns, and the `tf.data` input pipeline helper."""

import dataclasses
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Splits:
    """Train/validation/test arrays of one dataset, plus where they came from.

    Attributes:
        x_train, y_train, x_valid, y_valid, x_test, y_test: NumPy arrays; x has shape (N, ...) and y (N,).
            A dataset without a validation split has empty (0, ...) validation arrays.
        class_names: name of each integer label (letters, CIFAR classes, trigram words).
        source: the file or folder the data was read from.
        note: provenance caveat (e.g. the trigram surrogate's NOTE attribute), "" when none.
        skipped: how many input files were unreadable and skipped (notMNIST PNGs).
        extras: loader-specific values (e.g. CIFAR's `mean_image`).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple = ()
    source: str = ""
    note: str = ""
    skipped: int = 0
    extras: dict = field(default_factory=dict)

    @property
    def num_classes(self):
        return len(self.class_names)

    def sizes(self):
        """{"train": N, "valid": N, "test": N}."""
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}

    def class_counts(self, split="train"):
        """Examples per class of one split, as an int array of length `num_classes`."""
        y = getattr(self, f"y_{split}")
        return np.bincount(y, minlength=self.num_classes)

    def subset(self, n_train, n_eval=None, seed=0):
        """A random smaller copy for quick runs: `n_train` training and `n_eval` valid/test examples each.

        Sampling is without replacement and seeded, so the same call always gives the same subset.
        `n_eval=None` uses `n_train`; splits smaller than the request are kept whole.
        """
        n_eval = n_train if n_eval is None else n_eval
        rng = np.random.default_rng(seed)

        def pick(x, y, n):
            if n >= len(y):
                return x, y
            index = np.sort(rng.choice(len(y), size=n, replace=False))
            return x[index], y[index]

        x_train, y_train = pick(self.x_train, self.y_train, n_train)
        x_valid, y_valid = pick(self.x_valid, self.y_valid, n_eval)
        x_test, y_test = pick(self.x_test, self.y_test, n_eval)
        return dataclasses.replace(
            self,
            x_train=x_train,
            y_train=y_train,
            x_valid=x_valid,
            y_valid=y_valid,
            x_test=x_test,
            y_test=y_test,
            note=(self.note + "; " if self.note else "") + f"subset(n_train={n_train}, n_eval={n_eval}, seed={seed})",
        )


def split_by_fractions(n, train_fraction, valid_fraction):
    """Split sizes (train, valid, test) for `n` examples: train and valid rounded half-to-even, test the rest."""
    n_train = int(round(n * train_fraction))
    n_valid = int(round(n * valid_fraction))
    n_valid = min(n_valid, n - n_train)
    return n_train, n_valid, n - n_train - n_valid
