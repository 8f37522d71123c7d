"""Seeding and the XLA-vs-determinism decision.

TF 2.21 facts (see the project's pitfalls notes): `keras.utils.set_random_seed` + op determinism gives
bit-identical weights across processes on CPU; with op determinism on, Keras silently drops
`jit_compile=True`. Our rule: determinism wins by default; asking for `--jit` explicitly turns op
determinism off (and says so), because the user asked for speed over bit-reproducibility.
"""

import logging
import os

log = logging.getLogger("tfnets")


def configure(seed, jit=False):
    """Seed Python, NumPy and TF; enable op determinism unless XLA was requested. Returns `jit_compile`."""
    import keras
    import tensorflow as tf

    # TF 2.21 has a public `enable_op_determinism` but keeps its inverse internal.
    from tensorflow.python.framework import config as tf_config

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    keras.utils.set_random_seed(seed)
    if jit:
        tf_config.disable_op_determinism()
        log.warning("--jit: XLA on, op determinism off (results may differ in the last bits between runs)")
        return True
    tf.config.experimental.enable_op_determinism()
    return False


def op_determinism_enabled():
    from tensorflow.python.framework import config as tf_config

    return tf_config.is_op_determinism_enabled()


def set_op_determinism(enabled):
    """Turn op determinism on or off (an `Experiment` puts back the state it found)."""
    from tensorflow.python.framework import config as tf_config

    if enabled:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()


def reseed(seed):
    """Put Python's, NumPy's and TensorFlow's random state back to `seed` before building or training a model, so
    that a model's initial weights, dropout masks and batch order depend on its own seed only, not on which models
    the same process built before it (sweeps, studies and ensembles build many)."""
    import keras

    keras.utils.set_random_seed(seed)
