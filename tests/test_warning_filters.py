"""The suite's warning filters (pyproject.toml): exactly the known third-party warnings are hidden, by message and
module; a DeprecationWarning attributed to tfnets, apps or benchmarks fails the test that triggers it."""

import warnings

import pytest

KERAS_COPY = "__array__ implementation doesn't accept a copy keyword, so passing copy=False failed."


def _shown(message, module, category=DeprecationWarning):
    """The warnings that reach pytest's summary when `module` issues `message` under the configured filters."""
    with warnings.catch_warnings(record=True) as seen:  # keeps the filters in force, records what passes them
        warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module=module)
    return [str(w.message) for w in seen]


@pytest.mark.parametrize("module", ["tfnets.experiment.runs", "apps.notmnist_mlp", "benchmarks.bench", "tfnets"])
def test_a_deprecation_warning_from_our_code_is_an_error(module):
    with pytest.raises(DeprecationWarning, match="old API"):
        _shown("old API", module)


@pytest.mark.parametrize(
    "message, module",
    [
        (KERAS_COPY, "keras.src.backend.tensorflow.core"),
        ("currentThread() is deprecated, use current_thread() instead", "keras_tuner.src.engine.oracle"),
        ("getName() is deprecated, get the name attribute instead", "keras_tuner.src.engine.oracle"),
    ],
)
def test_the_known_third_party_warnings_are_hidden(message, module):
    assert _shown(message, module) == []


@pytest.mark.parametrize(
    "message, module, category",
    [
        (KERAS_COPY, "keras.src.models.model", DeprecationWarning),  # the same message from elsewhere
        ("something else is deprecated", "keras.src.backend.tensorflow.core", DeprecationWarning),
        ("getName() is deprecated, get the name attribute instead", "somelib", DeprecationWarning),
        ("a user warning", "tfnets.experiment.runs", UserWarning),  # ours, not a deprecation: shown, not an error
        ("old API", "tfnetsx", DeprecationWarning),  # a module that only starts with our name
    ],
)
def test_other_warnings_still_show(message, module, category):
    assert _shown(message, module, category) == [message]
