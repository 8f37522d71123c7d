"""tfnets: classic neural-network assignments in TensorFlow/Keras, with hand-written backprop.

Modules (import what you need; importing `tfnets` itself loads nothing heavy):
    ops, reference_ops, layers, losses, gradcheck   hand-written-backprop ops and Keras layers/losses, and their checks
    optim, reference                                 update rules (pure functions + Keras optimizers); NumPy baseline MLP
    models, solver                                   CS231n-style FullyConnectedNet/TwoLayerNet and Solver
    data, preprocessing                              dataset loaders (one module per dataset); ZCA whitening
    cli, experiment, runs, sweep, export, report, plots, atomic, determinism, errors
                                                     the experiment framework every app uses
    bench                                            the throughput benchmark (`python -m tfnets.bench`)

`keras.models.load_model("model.keras")` on a model built from the manual layers needs `import tfnets.layers`
(and `tfnets.losses` / `tfnets.optim` if compiled with them, `tfnets.preprocessing` for a ZCA layer) first, so that Keras knows the registered classes.
"""

__version__ = "0.1.0"
