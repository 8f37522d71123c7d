"""What is checked: a Keras layer (class, instance or factory) or an op (a function on tensors), resolved once.

`Subject` hides the difference from the checks. Every check asks it for the same few things:
  * `arguments(rng)`: the inputs, drawn from the argument specs (floats standard normal, ids uniform);
  * `layer(dtype)`: a fresh built copy of a layer in a dtype or mixed-precision policy, holding the reference
    weights (the float32 ones its first build drew from `seed`), so float64, mixed and graph copies agree;
  * `pure(dtype)`: `f(*inputs, *weights) -> output`, the subject as a pure function (a layer through
    `stateless_call`), which is what the gradient checker differentiates;
  * `locator`: enough JSON to rebuild the same subject in a child process (two-replica check).
An op's arguments whose first dimension is the output's batch dimension are its batch; its other floating
arguments play the part of weights (e.g. `affine(x, w, b)`: x is the batch, w and b the weights).
"""

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import sys
from pathlib import Path

import numpy as np

from tfnets.check.report import error_line
from tfnets.errors import ConfigError

_SPEC = re.compile(r"^\s*(\d+(?:\s*,\s*\d+)*)\s*((?::\s*(?:int\s*\d+|pos|const)\s*)*)$")


@dataclasses.dataclass(frozen=True)
class Arg:
    """One input: its shape, for integer ids/labels the exclusive upper bound of their values, whether its floats
    must be positive (a variance), and whether it is a constant the op does not differentiate (running statistics)."""

    shape: tuple
    int_high: int = None
    positive: bool = False
    constant: bool = False

    @property
    def is_float(self):
        return self.int_high is None

    @property
    def differentiable(self):
        return self.is_float and not self.constant

    def text(self):
        dims = ",".join(map(str, self.shape))
        tags = [f"int{self.int_high}"] if not self.is_float else []
        tags += ["pos"] * self.positive + ["const"] * self.constant
        return ":".join([dims, *tags])

    def draw(self, rng, dtype="float64"):
        if self.is_float and self.positive:
            return rng.uniform(0.5, 1.5, self.shape).astype(dtype)
        if self.is_float:
            return rng.standard_normal(self.shape).astype(dtype)
        return rng.integers(0, self.int_high, self.shape).astype(np.int32)


def parse_arg(text):
    """`"4,16"` -> standard-normal floats of shape (4, 16); `"4,3:int10"` -> int32 ids of shape (4, 3) in [0, 10);
    `"6:pos"` -> floats in [0.5, 1.5) (a variance or a scale that must stay positive); `":const"` added: an argument
    the op holds constant (not differentiated, not trained), e.g. `"6:pos:const"` for a running variance."""
    if isinstance(text, Arg):
        return text
    if isinstance(text, (tuple, list)):
        return Arg(tuple(int(d) for d in text))
    match = _SPEC.match(str(text))
    if not match:
        raise ConfigError(
            f"input shape {text!r} is not comma-separated positive sizes, e.g. 4,16 (or 4,3:int10 for ids)"
        )
    shape = tuple(int(d) for d in match.group(1).split(","))
    tags = [t.strip() for t in match.group(2).split(":") if t.strip()]
    highs = [int(t[3:]) for t in tags if t.startswith("int")]
    high = highs[0] if highs else None
    if 0 in shape or high == 0 or len(highs) > 1 or (high and "pos" in tags):
        raise ConfigError(f"input shape {text!r}: sizes and the id bound must be positive, one of intK or pos")
    return Arg(shape, high, positive="pos" in tags, constant="const" in tags)


def parse_args(input_shape):
    """One spec, or a list of them (one per argument of an op)."""
    if input_shape is None:
        return []
    if isinstance(input_shape, (str, Arg)) or (
        isinstance(input_shape, (tuple, list)) and all(isinstance(d, int) for d in input_shape)
    ):
        input_shape = [input_shape]
    return [parse_arg(item) for item in input_shape]


def load_object(spec):
    """`MODULE:NAME` (an importable module, or a `.py` file path) -> (the object, a locator dict for children)."""
    module_text, sep, name = str(spec).rpartition(":")
    if not sep or not module_text or not name:
        raise ConfigError(f"{spec!r} is not MODULE:NAME (e.g. examples/check/good_dense.py:GoodDense)")
    if module_text.endswith(".py") or "/" in module_text:
        path = Path(module_text)
        if not path.is_file():
            raise ConfigError(f"{module_text}: no such file")
        module = _import_file(path)
        locator = {"file": str(path.resolve()), "name": name}
    else:
        try:
            module = importlib.import_module(module_text)
        except ImportError as err:
            raise ConfigError(f"cannot import module {module_text!r}: {err}") from None
        locator = {"module": module_text, "name": name}
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{module_text} has no {name!r}")
        obj = getattr(obj, part)
    return obj, locator


def _import_file(path):
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]  # two files with one name stay apart
    stem = re.sub(r"\W", "_", path.stem)
    name = f"tfnets_check_user_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's file: any error there is theirs to fix
        del sys.modules[name]
        raise ConfigError(f"importing {path} failed: {error_line(err)}") from None
    return module


def _locator_of(obj):
    """How a child process finds an object passed from Python (None when it cannot: a local or `__main__` one)."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or module == "__main__":
        return None
    if module.startswith("tfnets_check_user_"):
        path = getattr(sys.modules.get(module), "__file__", None)
        return {"file": path, "name": qualname} if path else None
    return {"module": module, "name": qualname}


class Subject:
    """A resolved layer or op with its argument specs, keyword arguments and seed (see the module docstring)."""

    def __init__(self, obj, input_shape, kwargs=None, seed=0, label=None, locator=None, training=None):
        import keras

        self.kwargs = dict(kwargs or {})
        self.args = parse_args(input_shape)
        self.seed = int(seed)
        self.label = label or getattr(obj, "__qualname__", None) or type(obj).__name__
        if not self.args:
            raise ConfigError(f"{self.label}: give its input shape (e.g. --input-shape 4,16)")
        self.kind, self._make = _classify(obj, self.kwargs, keras)
        if self.kind == "layer":
            self.locator = locator or _layer_locator(obj, self.kwargs)
        else:
            self.locator = locator or _locator_of(obj)
            self.op = obj
            _check_arity(obj, len(self.args), self.kwargs, self.label)
        if self.locator is not None:
            self.locator = {**self.locator, "kwargs": self.kwargs}
        self._reference, self._given = None, obj
        self.training = training
        self.batch = self.args[0].shape[0]

    # ------------------------------------------------------------------ layers
    def _reference_layer(self):
        """The float32 layer built once with `seed`: its weights are every copy's weights."""
        if self._reference is None:
            import keras

            keras.utils.set_random_seed(self.seed)
            layer = self._make(None)
            self._build(layer)
            if isinstance(self._given, keras.layers.Layer) and self._given.built:
                try:  # a built instance brings its own weights
                    layer.set_weights(self._given.get_weights())
                except ValueError:  # built for another shape: keep the seeded ones
                    pass
            self._reference = layer
            if self.training is None:
                self.training = "training" in inspect.signature(layer.call).parameters
        return self._reference

    def _build(self, layer):
        shapes = [a.shape for a in self.args]
        try:
            layer.build(shapes[0] if len(shapes) == 1 else shapes)
        except Exception as err:
            raise ConfigError(
                f"{self.label} does not build for input shape {self.shape_text()}: {error_line(err)}"
            ) from None

    def layer(self, dtype=None):
        """A fresh built copy in `dtype` (a dtype or policy name; None: the reference float32 layer itself)."""
        reference = self._reference_layer()
        if dtype is None:
            return reference
        layer = self._make(dtype)
        self._build(layer)
        layer.set_weights(reference.get_weights())
        return layer

    def weight_names(self):
        """The trainable weights' names (an op has none: its weights are among its arguments)."""
        if self.kind == "layer":
            return [_short_name(v) for v in self._reference_layer().trainable_variables]
        return []

    def argument_names(self):
        """'input' (or 'input0', ...) for a layer's inputs, the parameter names of an op's arguments."""
        if self.kind == "layer":
            count = len(self.args)
            return ["input"] if count == 1 else [f"input{i}" for i in range(count)]
        try:
            params = list(inspect.signature(self.op).parameters)
        except (TypeError, ValueError):
            params = []
        return [params[i] if i < len(params) else f"arg{i}" for i in range(len(self.args))]

    def call_kwargs(self):
        """`training=True` for a layer whose `call` takes it: the hand-written backward is the training one."""
        if self.kind != "layer":
            return {}
        self._reference_layer()  # decides `training` from its `call`'s signature
        return {"training": True} if self.training else {}

    def layer_inputs(self, values):
        return values[0] if len(values) == 1 else list(values)

    # ------------------------------------------------------------------ ops
    def weight_positions(self):
        """An op's differentiable arguments that are not batched (first dimension != the batch): its 'weights'."""
        if self.kind == "layer":
            return []
        return [
            i
            for i, a in enumerate(self.args)
            if a.differentiable and i > 0 and (not a.shape or a.shape[0] != self.batch)
        ]

    def batched_positions(self):
        if self.kind == "layer":
            return list(range(len(self.args)))
        return [i for i, a in enumerate(self.args) if i == 0 or (a.shape and a.shape[0] == self.batch)]

    # ------------------------------------------------------------------ both
    def arguments(self, rng, dtype="float64"):
        return [a.draw(rng, dtype) for a in self.args]

    def weights(self, dtype="float64"):
        """The trainable weights of the reference layer as arrays (an op has none: its weights are arguments)."""
        if self.kind == "op":
            return []
        return [np.asarray(v.numpy(), dtype) for v in self._reference_layer().trainable_variables]

    def pure(self, dtype="float64"):
        """(f(*inputs, *trainable weights) -> first output, the copy it calls or None for an op)."""
        if self.kind == "op":
            return (lambda *values: first_output(self.op(*values, **self.kwargs))), None
        layer = self.layer(dtype)
        fixed = [v.value for v in layer.non_trainable_variables]
        count, kwargs = len(self.args), self.call_kwargs()

        def f(*values):
            inputs, weights = values[:count], values[count:]
            out, _ = layer.stateless_call(list(weights), fixed, self.layer_inputs(inputs), **kwargs)
            return first_output(out)

        return f, layer

    def call(self, layer, values):
        """Run the subject forward (a layer through its variables, as in training)."""
        if self.kind == "op":
            return first_output(self.op(*values, **self.kwargs))
        return first_output(layer(self.layer_inputs(values), **self.call_kwargs()))

    def shape_text(self):
        return " ".join(a.text() for a in self.args)

    def describe(self):
        text = f"{self.label} ({self.kind}), input {self.shape_text()}"
        if self.kwargs:
            text += f", kwargs {json.dumps(self.kwargs)}"
        return text + f", seed {self.seed}"


def first_output(out):
    """An op or layer returning several tensors (batch_norm: output and statistics) is checked on the first."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _short_name(variable):
    return variable.path.split("/")[-1] if hasattr(variable, "path") else variable.name


def _classify(obj, kwargs, keras):
    """('layer', make(dtype) -> new unbuilt layer) or ('op', None); a usage error for anything else."""
    if inspect.isclass(obj):
        if not issubclass(obj, keras.layers.Layer):
            raise ConfigError(f"{obj.__qualname__} is a class but not a Keras layer")
        return "layer", lambda dtype: _construct(obj, kwargs, dtype)
    if isinstance(obj, keras.layers.Layer):
        return "layer", lambda dtype: _copy(obj, dtype)
    if not callable(obj):
        raise ConfigError(f"{type(obj).__name__} object is neither a Keras layer nor an op (a function on tensors)")
    if _is_factory(obj, kwargs):
        made = _call_user(lambda: obj(**kwargs), "calling the factory")
        if isinstance(made, keras.layers.Layer):
            return "layer", lambda dtype: made if dtype is None else _copy(made, dtype)
        raise ConfigError(f"{obj.__qualname__}(**kwargs) returned {type(made).__name__}, not a Keras layer")
    return "op", None


def _is_factory(obj, kwargs):
    """A callable that can be called with the keyword arguments alone builds a layer; one that needs the inputs
    as positional arguments is an op."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(**kwargs)
    except TypeError:
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in kwargs
    ]
    return not any(p.default is p.empty for p in positional)


def _check_arity(op, count, kwargs, label):
    """An op gets one tensor per input shape: a count that its signature cannot take is a usage error."""
    try:
        signature = inspect.signature(op)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*range(count), **kwargs)
    except TypeError as err:
        raise ConfigError(f"{label} cannot take {count} input(s) with kwargs {sorted(kwargs)}: {err}") from None


def _call_user(fn, what):
    try:
        return fn()
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"{what} failed: {error_line(err)}") from None


def _construct(cls, kwargs, dtype):
    extra = {} if dtype is None else {"dtype": dtype}
    return _call_user(lambda: cls(**kwargs, **extra), f"{cls.__qualname__}(**{kwargs})")


def _copy(layer, dtype):
    """A copy through `get_config`/`from_config` with the dtype policy replaced."""
    config = layer.get_config()
    if dtype is not None:
        config["dtype"] = dtype
    return type(layer).from_config(config)


def _layer_locator(obj, kwargs):
    if inspect.isclass(obj) or callable(obj) and not hasattr(obj, "get_config"):
        return _locator_of(obj)
    base = _locator_of(type(obj))
    if base is None:
        return None
    try:
        return {**base, "config": json.loads(json.dumps(obj.get_config()))}
    except (TypeError, ValueError, NotImplementedError):
        return None


def resolve_locator(locator):
    """The child-process side of `Subject.locator`: the object it names (a layer rebuilt from its config)."""
    if "file" in locator:
        module = _import_file(Path(locator["file"]))
    else:
        module = importlib.import_module(locator["module"])
    obj = module
    for part in locator["name"].split("."):
        obj = getattr(obj, part)
    if "config" in locator:
        return obj.from_config(locator["config"])
    return obj
