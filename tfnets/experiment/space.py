"""The search-space grammar of `--sweep`: what a user writes, parsed into the space a search explores.

    --sweep l2=0.01,0.1,0.5                     a list: KerasTuner's `hp.Choice` (a grid takes every combination)
    --sweep learning_rate=1e-4:1e-1:log         a range LOW:HIGH[:SCALE][:int]: `hp.Float` (`hp.Int` for integers)
    --sweep units=64:1024:log2:int              logN samples only LOW * N^k (`step=N` in KerasTuner)
    --sweep "layers=[50,50],[100]"              commas inside brackets belong to one value

Plain Python (no KerasTuner, Keras or TensorFlow): configurations check their sweeps with it before anything heavy
is imported.
"""

import dataclasses
import json
import math
import re

from tfnets.errors import ConfigError

TUNERS = ("grid", "random", "bayesian", "hyperband")
DEFAULT_OBJECTIVE = "val_loss"
DEFAULT_FACTOR = 3

# Metric names that are better when larger; any other objective is minimised unless `NAME:max` says otherwise.
_MAXIMISED = ("acc", "auc", "precision", "recall", "f1")


@dataclasses.dataclass(frozen=True)
class Range:
    """`LOW:HIGH[:SCALE][:int]`: KerasTuner's `hp.Float`/`hp.Int` with `sampling` "linear" or "log"."""

    low: float
    high: float
    sampling: str = "linear"
    integer: bool = False
    step: float = None  # with sampling "log": values LOW * step^k only

    def __str__(self):
        scale = self.sampling if self.step is None else f"log{self.step:g}"
        return f"{self.low:g}:{self.high:g}:{scale}" + (":int" if self.integer else "")


def extremes(spec):
    """The values of a list, or the two ends of a `Range`: what an app checks a sweep's values against."""
    return [spec.low, spec.high] if isinstance(spec, Range) else list(spec or [])


def parse_sweep(specs, allowed):
    """`["l2=0.01,0.1", "lr=1e-4:1e-1:log"]` -> `{"l2": [0.01, 0.1], "lr": Range(1e-4, 0.1, "log")}`.

    `allowed`: name -> type (a callable text -> value). Unknown names and bad values raise one-line `ConfigError`s;
    `check_search` checks a space against the chosen tuner."""
    space = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"--sweep expects NAME=V1,V2,... or NAME=LOW:HIGH[:log], got {spec!r}")
        if name not in allowed:
            raise ConfigError(f"unknown sweep parameter {name!r}; choose from {', '.join(sorted(allowed))}")
        convert = allowed[name]
        if ":" in values:
            space[name] = _parse_range(spec, name, values, convert)
            continue
        try:
            space[name] = [convert(v.strip()) for v in _split_values(values)]
        except (ValueError, TypeError) as err:
            raise ConfigError(f"bad value in --sweep {spec!r}: {err}") from None
    return space


def _parse_range(spec, name, text, convert):
    if convert not in (int, float):
        raise ConfigError(f"--sweep {spec!r}: {name} takes a list of values (NAME=V1,V2), not a range")
    parts = [p.strip() for p in text.split(":")]
    integer = convert is int
    if parts[-1] == "int":
        integer, parts = True, parts[:-1]
    scale = parts[2] if len(parts) == 3 else "linear"
    if len(parts) not in (2, 3) or not re.fullmatch(r"linear|log(\d+(\.\d*)?)?", scale):
        raise ConfigError(f"bad range in --sweep {spec!r}: expected LOW:HIGH[:linear|log|logN][:int]")
    try:
        low, high = (float(p) for p in parts[:2])
    except ValueError as err:
        raise ConfigError(f"bad range in --sweep {spec!r}: {err}") from None
    step = float(scale[3:]) if scale.startswith("log") and len(scale) > 3 else None
    sampling = "log" if scale.startswith("log") else "linear"
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"bad range in --sweep {spec!r}: LOW must be below HIGH")
    if sampling == "log" and low <= 0:
        raise ConfigError(f"bad range in --sweep {spec!r}: a log range needs LOW > 0")
    if step is not None and step <= 1:
        raise ConfigError(f"bad range in --sweep {spec!r}: the factor of logN must be > 1")
    if integer and (low != int(low) or high != int(high)):
        raise ConfigError(f"bad range in --sweep {spec!r}: an integer range needs integer ends")
    if integer:
        low, high = int(low), int(high)
    return Range(low, high, sampling, integer, step)


def _split_values(text):
    # Commas inside brackets belong to one value: "layers=[50,50],[100]".
    return [part for part in re.split(r",(?![^\[]*\])", text) if part.strip()]


def parse_objective(text):
    """`"val_accuracy"` -> `("val_accuracy", "max")`; `"NAME:min|max"` sets the direction."""
    name, _, direction = text.partition(":")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or direction not in ("", "min", "max"):
        raise ConfigError(
            f"--objective expects a metric name such as val_loss or val_accuracy, optionally with "
            f":min or :max, got {text!r}"
        )
    if not direction:
        direction = "max" if any(word in name for word in _MAXIMISED) else "min"
    return name, direction


def check_search(space, tuner, max_trials, patience=None, factor=DEFAULT_FACTOR):
    """One-line `ConfigError`s for a space or flags the tuner cannot use."""
    if tuner not in TUNERS:
        raise ConfigError(f"unknown tuner {tuner!r}; use {', '.join(TUNERS)}")
    ranges = [f"{k}={v}" for k, v in space.items() if isinstance(v, Range)]
    if tuner == "grid" and ranges:
        raise ConfigError(
            f"a grid needs lists of values, but --sweep {ranges[0]} is a range; use --tuner random, "
            "bayesian or hyperband, or list the values"
        )
    if max_trials is not None and max_trials < 1:
        raise ConfigError(f"--max-trials must be >= 1, got {max_trials}")
    if max_trials is None and (tuner == "bayesian" or (tuner == "random" and ranges)):
        raise ConfigError(
            f"--tuner {tuner} over a range needs --max-trials N"
            if tuner == "random"
            else "--tuner bayesian needs --max-trials N"
        )
    if tuner == "hyperband" and max_trials is not None:
        raise ConfigError(
            "--max-trials does not apply to --tuner hyperband: its brackets set the trials (--epochs "
            "and --hyperband-factor)"
        )
    if patience is not None and patience < 1:
        raise ConfigError(f"--trial-patience must be >= 1, got {patience}")
    if factor < 2:
        raise ConfigError(f"--hyperband-factor must be >= 2, got {factor}")


def trial_name(values):
    text = ",".join(f"{k}={json.dumps(v, separators=(',', ''))}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9=,._+-]", "", text.replace(",", "_").replace(":", "-")) or "default"


def grid(space):
    """All combinations of `space` (dict name -> values), last name varying fastest."""
    combos = [{}]
    for name, values in space.items():
        combos = [{**c, name: v} for c in combos for v in values]
    return combos
