"""Training on several devices or machines with `tf.distribute` (`--distribute`, `--devices`, `--precision`).

* `none` (default): TensorFlow's default strategy on one device, exactly as without this module.
* `mirrored`: `tf.distribute.MirroredStrategy` over the visible GPUs (the first `--devices N` of them); on a machine
  without a GPU, `--devices N` splits the CPU into N logical devices, so the same code path runs anywhere.
* `multi-worker`: `tf.distribute.MultiWorkerMirroredStrategy`, one process per worker, configured by the standard
  `TF_CONFIG` variable (`tfnets-launch --multi-worker N -- python -m apps.<app> --distribute multi-worker` sets it for a
  cluster on this machine).

`--batch-size` stays the global batch: each step splits it evenly over the replicas, so the losses (per-example,
reduced by Keras over the global batch) match single-device training. Logical devices can only be made before
TensorFlow starts its runtime, so `setup` must run before the first TensorFlow op of the process.
"""

import dataclasses
import json
import os
import sys

from tfnets.errors import ConfigError

KINDS = ("none", "mirrored", "multi-worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class Distribution:
    """The strategy a command trains under, and what to record about it."""

    kind: str
    strategy: object  # a tf.distribute.Strategy
    devices: list
    workers: int = 1
    task_index: int = 0

    @property
    def replicas(self):
        return int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self):
        """The one process that writes run folders and exports (worker 0 of a multi-worker cluster)."""
        return self.task_index == 0

    def describe(self):
        return {"distribute": self.kind, "replicas": self.replicas, "devices": self.devices, "workers": self.workers}

    def check_batch_size(self, batch_size):
        if batch_size % self.replicas:
            raise ConfigError(
                f"--batch-size {batch_size} does not split evenly over {self.replicas} replicas; "
                f"use a multiple of {self.replicas}"
            )


def parse_tf_config(text):
    """`TF_CONFIG` -> `(workers, task_index)`; a malformed value is one line saying what is wrong."""
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(
            f"TF_CONFIG is not a valid cluster description ({type(err).__name__}: {err}); expected "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}'
        ) from None
    if not isinstance(workers, list) or not workers or task.get("type") != "worker" or not 0 <= index < len(workers):
        raise ConfigError(f"TF_CONFIG: task {task} does not name one of the {len(workers)} worker(s) in the cluster")
    return len(workers), index


_mirrored_strategies = {}  # device names -> the MirroredStrategy this process made over them


def setup(kind="none", devices=None, precision="float32"):
    """Set the mixed-precision policy and make the strategy (a mirrored one is made once per device list and
    reused by later commands in the process); call before the first TensorFlow op."""
    import keras
    import tensorflow as tf

    if kind not in KINDS:
        raise ConfigError(f"--distribute must be one of {', '.join(KINDS)}, got {kind!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if devices is not None and kind != "mirrored":
        raise ConfigError("--devices needs --distribute mirrored")
    keras.mixed_precision.set_global_policy(precision)
    if kind == "none":
        strategy = tf.distribute.get_strategy()
        return Distribution(kind, strategy, [_default_device(tf)])
    if kind == "mirrored":
        names = _mirrored_devices(tf, devices)
        # One strategy per device list and process: a second MirroredStrategy over the same devices numbers its
        # all-reduces from the same collective keys, and while the first one is still referenced (by an earlier
        # command's Distribution or model) they collide ("Shape mismatch in the collective instance 100", seen).
        key = tuple(names)
        if key not in _mirrored_strategies:
            _mirrored_strategies[key] = tf.distribute.MirroredStrategy(devices=names)
        return Distribution(kind, _mirrored_strategies[key], names)
    if "TF_CONFIG" not in os.environ:
        raise ConfigError(
            "--distribute multi-worker needs TF_CONFIG (one process per worker); start a cluster on "
            "this machine with: python -m tfnets.experiment.launch --multi-worker 2 -- python -m apps.<app> "
            "--distribute multi-worker ..."
        )
    workers, index = parse_tf_config(os.environ["TF_CONFIG"])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution(kind, strategy, [_default_device(tf)], workers, index)


def _default_device(tf):
    gpus = tf.config.list_logical_devices("GPU")
    return (gpus or tf.config.list_logical_devices("CPU"))[0].name


def _mirrored_devices(tf, count):
    """The first `count` GPUs, or without a GPU `count` logical CPU devices (made here, before the runtime starts)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if count is not None and count > len(gpus):
            raise ConfigError(f"--devices {count}: only {len(gpus)} GPU(s) are visible")
        return [f"/gpu:{i}" for i in range(count or len(gpus))]
    count = count or 1
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:  # the runtime already started (e.g. a second command in one process)
        made = len(tf.config.list_logical_devices("CPU"))
        if made != count:
            raise ConfigError(
                f"--devices {count}: TensorFlow already started with {made} CPU device(s) in this "
                f"process; run the command in a fresh process"
            ) from None
    return [f"/cpu:{i}" for i in range(count)]


_entered = []  # the strategy scopes this process entered for its command (left by `reset`)


def enter_scope(distribution):
    """Enter the strategy's scope for the rest of the command (nothing to enter for `none`)."""
    if distribution.kind == "none":
        return
    scope = distribution.strategy.scope()
    scope.__enter__()
    _entered.append(scope)


def reset():
    """The end of a command (tests call it after each test): leave the scopes `enter_scope` entered and put the
    float32 policy back."""
    while _entered:
        _entered.pop().__exit__(None, None, None)
    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")


def synchronized_batch_norm():
    """For `keras.layers.BatchNormalization(synchronized=...)`: True under a strategy with several replicas, so that
    the batch statistics are those of the global batch, as on one device (each replica's half-batch statistics would
    otherwise differ). False on one device, where it changes nothing but the last bits."""
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync > 1
