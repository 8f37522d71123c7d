"""Runnable apps, one per assignment task: `python -m apps.<name> --help`.

Every app parses its arguments before importing TensorFlow (heavy modules are bound with
`tfnets.experiment.lazy.lazy_import` or imported inside the functions that use them), and runs through
`tfnets.experiment.cli.exit_with`, which keeps TensorFlow's C++ log lines quiet unless `--debug` is given.
"""

import importlib
import pkgutil


def discover():
    """The names of the training apps: every module of this package that declares a `Config` and a `run`."""
    names = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "Config") and callable(getattr(module, "run", None)):
            names.append(info.name)
    return names
