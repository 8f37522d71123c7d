"""tfnets: classic neural-network assignments in TensorFlow/Keras, with hand-written backprop.

The package is layered; each layer imports only the layers listed before it (docs/design.md; `tests/test_imports.py`
checks it; importing `tfnets` itself loads nothing heavy):
    errors, atomic     one-line user errors; files written atomically (used everywhere)
    nn/                the neural-network core: hand-written-backprop ops, the Keras layers, losses, metrics and
                       optimizers built on them, CS231n-style models and Solver, gradient checks, the NumPy
                       reference, ZCA whitening, the n-gram baseline
    data/              dataset loaders (one module per dataset), the catalogue and downloads (`python -m tfnets.data`)
    experiment/        the framework every app uses: declared configuration, `Experiment`, run folders with resumable
                       training, callbacks, sweeps on KerasTuner (also distributed: `tfnets-launch`), tf.distribute
                       strategies, export, reports, plots, folder locks, quiet TensorFlow
    check/             `python -m tfnets.check`: checks a user's own hand-written layer or op (on nn's gradcheck;
                       uses only experiment's quiet TensorFlow)
The apps (`apps/`) sit on top of the package; the benchmark (`benchmarks/`), which measures the apps' models, above them.

`tfnets.load_model("saved_models/notmnist_mlp")` loads an exported `model.keras` built from our layers.
"""

import importlib
from pathlib import Path

__version__ = "0.1.0"

# The modules that register Keras classes (`register_keras_serializable`) a saved model may name.
REGISTERING_MODULES = (
    "tfnets.nn.layers",
    "tfnets.nn.losses",
    "tfnets.nn.metrics",
    "tfnets.nn.optim",
    "tfnets.nn.models",
    "tfnets.nn.preprocessing",
)


def load_model(path, *, compile=True, **kwargs):
    """`keras.models.load_model` after importing every module that registers our classes.

    `path`: a `.keras` file, or an export folder holding `model.keras` (e.g. `saved_models/notmnist_cnn`).
    `compile=False` skips restoring the optimizer, loss and metrics; other keyword arguments (`custom_objects`,
    `safe_mode`) go to Keras unchanged.
    """
    for module in REGISTERING_MODULES:
        importlib.import_module(module)
    import keras

    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    return keras.models.load_model(path, compile=compile, **kwargs)
