"""The checkpoint file of a run: `checkpoint.npz`, written atomically after every completed epoch.

It holds the model's and optimizer's variables, the history so far, whether a callback stopped training, the state
of every stateful callback (plateau and early-stopping counters, kept best weights) and the hash of the settings it
belongs to, so a run resumes exactly as if it had never stopped, and never from another setting's weights.
`FORMAT` is bumped whenever an older checkpoint could not resume exactly: such a checkpoint is ignored, with a
message saying so, and the run starts afresh.
"""

import dataclasses
import json

import keras
import numpy as np

from tfnets import atomic

FORMAT = 3


@dataclasses.dataclass
class Saved:
    """What a checkpoint gave back (nothing: epoch 0, empty history)."""

    epochs_done: int = 0
    history: list = dataclasses.field(default_factory=list)
    stopped: bool = False
    callback_states: list = dataclasses.field(default_factory=list)


def state_variables(model):
    """The variables a checkpoint holds: the model's (weights, RNG state) and its optimizer's (slots, step)."""
    variables = list(model.variables)
    if model.optimizer is not None:
        variables += list(model.optimizer.variables)
    return variables


def save(path, model, *, epochs_done, history, config_hash, callbacks=(), stopped=False):
    """Write the checkpoint at `path` atomically (see the module's docstring)."""
    arrays = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(state_variables(model))}
    states = []
    for i, callback in enumerate(callbacks):
        scalars, weights = _split_state(callback_state(callback))
        states.append(scalars)
        for key, values in weights.items():
            arrays.update({f"cb{i}.{key}.{j}": np.asarray(a) for j, a in enumerate(values)})
            scalars[key] = {"arrays": len(values)}
    state = {
        "format": FORMAT,
        "epochs_done": epochs_done,
        "history": history,
        "config_hash": config_hash,
        "stopped": bool(stopped),
        "callbacks": states,
    }
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def usable_state(saved, config_hash):
    """`(state dict, None)`, or `(None, why it cannot be used)` for other settings or an older format."""
    state = json.loads(bytes(saved["state"]).decode())
    if state.get("config_hash") != config_hash:
        return None, "checkpoint belongs to other settings"
    if state.get("format") != FORMAT:
        return None, "checkpoint was written by an older tfnets and cannot resume exactly"
    return state, None


def stopped_early(path, config_hash):
    """Whether the checkpoint at `path` (of these settings) says a callback stopped training early."""
    if not path.exists():
        return False
    with np.load(path) as saved:
        state, _ = usable_state(saved, config_hash)
    return bool(state and state.get("stopped"))


def load(path, model, config_hash, folder):
    """Assign the checkpoint at `path` to a built `model`; `Saved()` (and a line naming `folder`) when there is
    none, it belongs to other settings or an older format, or it does not fit the model."""
    if not path.exists():
        return Saved()
    with np.load(path) as saved:
        state, unusable = usable_state(saved, config_hash)
        if state is None:
            print(f"{folder}: {unusable}; starting afresh")
            return Saved()
        variables = state_variables(model)
        arrays = [saved[f"v{i}"] for i in range(sum(1 for k in saved.files if k.startswith("v")))]
        # Same settings but a different network (the code changed since): compare shapes, not just counts.
        if len(arrays) != len(variables) or any(tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)):
            print(f"{folder}: checkpoint does not match this model; starting afresh")
            return Saved()
        for variable, array in zip(variables, arrays):
            variable.assign(array)
        callback_states = []
        for i, scalars in enumerate(state.get("callbacks", [])):
            callback_states.append(
                {
                    key: [saved[f"cb{i}.{key}.{j}"] for j in range(value["arrays"])]
                    if isinstance(value, dict)
                    else value
                    for key, value in scalars.items()
                }
            )
    return Saved(state["epochs_done"], state["history"], state.get("stopped", False), callback_states)


# Keras' built-in stateful callbacks keep their counters in plain attributes (reset by on_train_begin).
_KERAS_CALLBACK_STATE = (
    (keras.callbacks.ReduceLROnPlateau, ("best", "wait", "cooldown_counter")),
    (keras.callbacks.EarlyStopping, ("best", "wait", "best_epoch", "stopped_epoch", "best_weights")),
)


def callback_state(callback):
    """What `callback` must remember across a resume: its `get_state()` (a dict of JSON values and lists of NumPy
    arrays), the counters of Keras' ReduceLROnPlateau/EarlyStopping, or `{}` for a stateless callback."""
    if hasattr(callback, "get_state"):
        return callback.get_state()
    for cls, names in _KERAS_CALLBACK_STATE:
        if isinstance(callback, cls):
            return {name: getattr(callback, name, None) for name in names}
    return {}


def set_callback_states(callbacks, states):
    """Put saved states back into `callbacks` (the same list, in the same order, as when they were saved)."""
    if len(states) != len(callbacks):
        return  # no checkpoint, or one saved with other callbacks: start them afresh
    for callback, state in zip(callbacks, states):
        if not state:
            continue
        if hasattr(callback, "set_state"):
            callback.set_state(state)
        else:
            for name, value in state.items():
                setattr(callback, name, value)


def _split_state(state):
    """`(json_part, arrays_part)`: lists of arrays (weights) go into the npz, everything else into JSON."""
    scalars, weights = {}, {}
    for key, value in state.items():
        if isinstance(value, (list, tuple)) and value and all(hasattr(a, "shape") for a in value):
            weights[key] = list(value)
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        else:
            scalars[key] = value
    return scalars, weights
