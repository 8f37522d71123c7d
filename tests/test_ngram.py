"""tfnets.nn.ngram: the interpolated absolute-discounting n-gram model against a plain dictionary implementation."""

from collections import Counter, defaultdict

import numpy as np
import pytest

from tfnets.errors import ConfigError
from tfnets.nn.ngram import InterpolatedNgram


def _reference(contexts, targets, queries, vocab_size, discount):
    """The defining recursion, one query at a time, with Counters."""
    tables = [defaultdict(Counter) for _ in range(contexts.shape[1])]
    for context, word in zip(map(tuple, contexts), targets):
        for k in range(1, len(context) + 1):
            tables[k - 1][context[-k:]][word] += 1
    unigram = (np.bincount(targets, minlength=vocab_size) + 1.0) / (len(targets) + vocab_size)
    out = []
    for query in map(tuple, queries):
        p = unigram.copy()
        for k in range(1, len(query) + 1):
            seen = tables[k - 1].get(query[-k:])
            if not seen:
                continue
            counts = np.zeros(vocab_size)
            for word, n in seen.items():
                counts[word] = n
            total, types = counts.sum(), (counts > 0).sum()
            p = np.maximum(counts - discount, 0) / total + discount * types / total * p
        out.append(p)
    return np.array(out)


def _data(seed=0, n=400, vocab_size=7):
    rng = np.random.default_rng(seed)
    contexts = rng.integers(0, vocab_size, size=(n, 3))
    targets = (contexts[:, 2] + rng.integers(0, 2, size=n)) % vocab_size  # depends on the last word
    return contexts, targets


@pytest.mark.parametrize("discount", [0.5, 0.75])
def test_matches_the_defining_recursion(discount):
    contexts, targets = _data()
    queries = np.vstack([contexts[:50], np.random.default_rng(1).integers(0, 7, size=(50, 3))])
    model = InterpolatedNgram(7, discount).fit(contexts, targets)
    expected = _reference(contexts, targets, queries, 7, discount)
    np.testing.assert_allclose(model.predict_proba(queries, chunk=16), expected, rtol=1e-12)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0)


def test_unseen_context_falls_back_to_the_add_one_unigram():
    contexts = np.array([[0, 1, 2], [0, 1, 2], [1, 1, 2]])
    model = InterpolatedNgram(5).fit(contexts, np.array([3, 3, 4]))
    p = model.predict_proba(np.array([[4, 4, 0]]))[0]  # no context ends in word 0
    np.testing.assert_allclose(p, np.array([1, 1, 1, 3, 2]) / 8)
    assert model.predict_proba(np.array([[0, 1, 2]]))[0].argmax() == 3


def test_bad_input_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"word ids must be in \[0, 5\), got 0..9"):
        InterpolatedNgram(5).fit(np.array([[0, 9, 1]]), np.array([1]))
    with pytest.raises(ConfigError, match="fit the n-gram model before predicting"):
        InterpolatedNgram(5).predict_proba(np.array([[0, 1, 2]]))
    with pytest.raises(ConfigError, match=r"discount must be in \(0, 1\)"):
        InterpolatedNgram(5, discount=1.5)
