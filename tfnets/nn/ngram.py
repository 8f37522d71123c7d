"""A smoothed count-based n-gram predictor: the baseline a neural language model has to beat.

Interpolated absolute discounting (Ney, Essen & Kneser 1994): with `c_k` the last k words of the context,

    P(w | c_k) = max(n(c_k, w) - d, 0) / n(c_k)  +  d * T(c_k) / n(c_k) * P(w | c_{k-1})

where n counts training examples, T(c_k) is the number of distinct words seen after c_k and d the discount;
the recursion ends at the add-one unigram P(w). A context never seen in training passes its shorter context's
distribution through unchanged. Every row of `predict_proba` sums to 1.
"""

import numpy as np

from tfnets.errors import ConfigError


class InterpolatedNgram:
    """Fit on (N, K) integer contexts and (N,) next words in [0, vocab_size); predict (M, vocab_size) probabilities."""

    def __init__(self, vocab_size, discount=0.75):
        if not 0 < discount < 1:
            raise ConfigError(f"the discount must be in (0, 1), got {discount}")
        self.vocab_size = int(vocab_size)
        self.discount = float(discount)
        self.levels = []  # per context length k = 1..K: sorted unique (context, word) keys and their counts

    def _keys(self, contexts):
        """(N, k) word ids -> (N,) one integer per context (base-V digits)."""
        keys = np.zeros(len(contexts), dtype=np.int64)
        for column in range(contexts.shape[1]):
            keys = keys * self.vocab_size + contexts[:, column]
        return keys

    def fit(self, contexts, targets):
        contexts, targets = self._check(contexts), np.asarray(targets, dtype=np.int64)
        if len(targets) != len(contexts) or len(targets) == 0:
            raise ConfigError(
                f"need as many targets as contexts (and at least one); got {len(targets)} and {len(contexts)}"
            )
        self._check_ids(targets)
        self.unigram = (np.bincount(targets, minlength=self.vocab_size) + 1.0) / (len(targets) + self.vocab_size)
        self.levels = []
        for k in range(1, contexts.shape[1] + 1):
            pairs, counts = np.unique(self._keys(contexts[:, -k:]) * self.vocab_size + targets, return_counts=True)
            owners = pairs // self.vocab_size
            starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])  # each context's first pair
            self.levels.append(
                {
                    "contexts": owners[starts],
                    "starts": starts,
                    "ends": np.r_[starts[1:], len(pairs)],
                    "words": pairs % self.vocab_size,
                    "counts": counts.astype(np.float64),
                }
            )
        return self

    def predict_proba(self, contexts, chunk=4096):
        contexts = self._check(contexts)
        if not self.levels:
            raise ConfigError("fit the n-gram model before predicting")
        if contexts.shape[1] < len(self.levels):
            raise ConfigError(f"contexts need {len(self.levels)} words, got {contexts.shape[1]}")
        contexts = contexts[:, contexts.shape[1] - len(self.levels) :]
        return np.concatenate([self._predict_chunk(contexts[i : i + chunk]) for i in range(0, len(contexts), chunk)])

    def _predict_chunk(self, contexts):
        probabilities = np.tile(self.unigram, (len(contexts), 1))
        for k, level in enumerate(self.levels, start=1):
            keys = self._keys(contexts[:, -k:])
            slot = np.minimum(np.searchsorted(level["contexts"], keys), len(level["contexts"]) - 1)
            seen = np.flatnonzero(level["contexts"][slot] == keys)
            if not len(seen):
                continue
            starts, ends = level["starts"][slot[seen]], level["ends"][slot[seen]]
            lengths = ends - starts
            # The pair indices of every seen row's range [start, end), without a Python loop.
            pair_index = (
                np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(starts, lengths)
            )
            counts = np.zeros((len(seen), self.vocab_size))
            counts[np.repeat(np.arange(len(seen)), lengths), level["words"][pair_index]] = level["counts"][pair_index]
            totals = counts.sum(axis=1, keepdims=True)
            types = (counts > 0).sum(axis=1, keepdims=True)
            probabilities[seen] = (
                np.maximum(counts - self.discount, 0) + self.discount * types * probabilities[seen]
            ) / totals
        return probabilities

    def _check(self, contexts):
        contexts = np.asarray(contexts)
        if contexts.ndim != 2 or not np.issubdtype(contexts.dtype, np.integer):
            raise ConfigError(
                f"contexts must be an (N, K) integer array, got shape {contexts.shape} dtype {contexts.dtype}"
            )
        self._check_ids(contexts)
        return contexts.astype(np.int64)

    def _check_ids(self, ids):
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ConfigError(f"word ids must be in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}")
