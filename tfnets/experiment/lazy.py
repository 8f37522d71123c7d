"""`keras = lazy_import("keras")`: a module imported on first attribute access, not when the app is imported.

Importing TensorFlow takes seconds; with the heavy modules bound lazily at the top of an app, `--help` and
argument errors answer at once and TensorFlow loads only after the arguments were accepted (and after
`tfnets.experiment.quiet` has been set up). Use it for modules accessed as `module.attribute` only; a module-level
`class X(keras.layers.Layer)` would import Keras at once (such classes belong in the library).
"""

import importlib


class _LazyModule:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, attribute):
        # Only reached for attributes this proxy lacks, i.e. everything the module defines.
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self):
        return f"<lazily imported module {self._name!r}>"


def lazy_import(name):
    """A stand-in for module `name` whose attributes import the module on first use (then cost a lookup)."""
    return _LazyModule(name)
