"""The neural-network core: hand-written-backprop ops and the Keras layers, losses and optimizers built on them.

ops, reference_ops         forward and hand-written backward passes side by side; the same ops as plain TF (checks)
layers, losses, metrics    Keras layers/losses/metrics on the ops (serialisable, work in fit, XLA and SavedModels)
optim, initializers        update rules as pure functions and Keras optimizers on them; the assignments' inits
augment, preprocessing     training-time augmentation wrappers; ZCA whitening
models, solver             CS231n-style FullyConnectedNet/TwoLayerNet and their Solver
gradcheck, reference       numeric gradient checks; the plain NumPy MLP (cross-check and benchmark baseline)
ngram                      a smoothed n-gram count model (the trigram app's baseline)
"""
