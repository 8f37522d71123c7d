"""tfnets: classic neural-network assignments in TensorFlow/Keras, with hand-written backprop.

Modules (import what you need; importing `tfnets` itself loads nothing heavy):
    ops, reference_ops, layers, losses, gradcheck   hand-written-backprop ops and Keras layers/losses, and their checks
    optim, reference                                 update rules (pure functions + Keras optimizers); NumPy baseline MLP
    models, solver                                   CS231n-style FullyConnectedNet/TwoLayerNet and Solver
    data, preprocessing                              dataset loaders (one module per dataset); ZCA whitening
    cli, experiment, runs, sweep, tuner, callbacks, export, report, plots, atomic, determinism, errors, quiet, lazy
                                                     the experiment framework every app uses

`tfnets.load_model("saved_models/notmnist_mlp")` loads an exported `model.keras` built from our layers.
"""
import importlib
from pathlib import Path

__version__ = "0.1.0"

# The modules that register Keras classes (`register_keras_serializable`) a saved model may name.
REGISTERING_MODULES = ("tfnets.layers", "tfnets.losses", "tfnets.metrics", "tfnets.optim", "tfnets.models",
                       "tfnets.preprocessing")


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
