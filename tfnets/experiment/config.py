"""An app's configuration, declared once as data: a frozen dataclass whose fields carry their help and role.

An app declares::

    @dataclasses.dataclass(frozen=True)
    class Config(SweepConfig):          # CommonConfig's flags, plus the sweep flags
        APP = "notmnist_cnn"
        DESCRIPTION = "notMNIST CNN (ECE421 part 2): baseline, L2 and dropout studies."
        EPOCHS = 50                     # the app's default --epochs (2 under --quick unless given)
        SWEEPABLE = {"l2": float, "keep_prob": float}
        batch_size: int = batch_size_option(32)
        l2: float = option(0.0, "lambda of the L2 penalty (default {default})", group="model")

and gets, without writing them again: the command line (`Config.parser()`, `Config.from_argv(argv)`, with
`--config FILE` and `--print-config`), validation in `__post_init__` (the same one-line `ConfigError` from the
command line, a config file or Python), a run identity (`identity()`: the fields that define what a run computes,
the run id's hash), and the record of what ran (`settings()`, written to config.json and read back by
`--config`). Values derived from others (the epochs `--quick` trains) are properties, never written back.

Field roles (`option(..., identity=False)`): a field that only says where things live or how work is split
(`--out`, `--data-dir`, `--steps-per-execution`) is not part of the run's identity, so changing it resumes the same
run. This module imports no TensorFlow: `--help` and `--print-config` answer at once.
"""

import argparse
import dataclasses
import functools
import json
import sys
import typing
from pathlib import Path

from tfnets.errors import ConfigError
from tfnets.experiment.cli import ArgumentParser, flag_type
from tfnets.experiment.space import DEFAULT_FACTOR, DEFAULT_OBJECTIVE, TUNERS
from tfnets.experiment.values import float_list, int_list, positive_float, positive_int, steps_per_execution  # noqa: F401

_META = "tfnets"
GROUP_COMMON = "common options"
GROUP_SCALE = "devices and precision"
GROUP_SWEEP = "sweeps"


def option(
    default,
    help,
    *,
    group="options",
    choices=None,
    parse=None,
    identity=True,
    flag=None,
    metavar=None,
    repeat=False,
    negatable=False,
    check=None,
):
    """A dataclass field with what the command line and the run identity need to know about it.

    `help` may name `{default}` (the default) and `{cls.X}` (a class attribute, e.g. `{cls.EPOCHS}`).
    `parse`: text -> value, for the command line and for text values in a config file (default: the field's type).
    `identity`: part of what defines a run (its id). `repeat`: a repeatable flag collected into a tuple.
    `negatable`: a boolean with `--no-...`. `check(value) -> message or None`: a per-field rule.
    """
    meta = {
        "help": help,
        "group": group,
        "choices": tuple(choices) if choices is not None else None,
        "parse": parse,
        "identity": identity,
        "flag": flag,
        "metavar": metavar,
        "repeat": repeat,
        "negatable": negatable,
        "check": check,
    }
    return dataclasses.field(default=tuple(default) if repeat else default, metadata={_META: meta})


def epochs_option():
    return option(
        None,
        "training epochs (default {cls.EPOCHS}; 2 under --quick unless given)",
        group=GROUP_COMMON,
        parse=positive_int,
    )


def batch_size_option(default, help="mini-batch size (default {default})"):
    return option(default, help, group=GROUP_COMMON, parse=positive_int)


def _meta(field):
    return field.metadata.get(_META)


def flag_name(field):
    return _meta(field)["flag"] or "--" + field.name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class CommonConfig:
    """The settings every app has. Subclasses set `APP`, `DESCRIPTION`, `EPOCHS` and add their own fields."""

    APP: typing.ClassVar[str] = ""
    DESCRIPTION: typing.ClassVar[str] = ""
    EPOCHS: typing.ClassVar[int] = 1
    QUICK_EPOCHS: typing.ClassVar[int] = 2

    data_dir: typing.Optional[str] = option(
        None,
        "dataset folder (default: $TFNETS_DATA_DIR, else ~/.cache/tfnets/data)",
        group=GROUP_COMMON,
        identity=False,
    )
    epochs: typing.Optional[int] = epochs_option()
    batch_size: typing.Optional[int] = batch_size_option(None)
    seed: int = option(0, "seeds Python, NumPy and TF (default {default})", group=GROUP_COMMON)
    out: str = option("runs", "root folder of run outputs (default runs/)", group=GROUP_COMMON, identity=False)
    run_id: typing.Optional[str] = option(
        None,
        "name of this run's folder (default: derived from the settings, so re-running the same command resumes it)",
        group=GROUP_COMMON,
        identity=False,
    )
    export_dir: typing.Optional[str] = option(
        None, "where the trained model is exported (default saved_models/{cls.APP})", group=GROUP_COMMON, identity=False
    )
    quick: bool = option(
        False, "a tiny real subset and one or two epochs: a smoke test of the whole pipeline", group=GROUP_COMMON
    )
    jit: bool = option(
        False,
        "compile with XLA; turns off op determinism, so repeated runs may differ in the last bits "
        "(default: off, deterministic)",
        group=GROUP_COMMON,
        negatable=True,
    )
    steps_per_execution: typing.Union[str, int] = option(
        "epoch",
        "batches per graph call: 'epoch' (default, faster) or 1; both give the same results, 1 shows per-batch "
        "progress and names the exact batch where the loss became NaN",
        group=GROUP_COMMON,
        parse=steps_per_execution,
        metavar="{epoch,1}",
        identity=False,
    )
    debug: bool = option(False, "show full tracebacks and TensorFlow's log lines", group=GROUP_COMMON, identity=False)
    distribute: str = option(
        "none",
        "none (default): one device; mirrored: all visible GPUs, or --devices N logical CPU devices; "
        "multi-worker: one process per worker, from TF_CONFIG (see docs/distributed.md)",
        group=GROUP_SCALE,
        choices=("none", "mirrored", "multi-worker"),
    )
    devices: typing.Optional[int] = option(
        None,
        "with --distribute mirrored: how many GPUs (default all), or without a GPU how many logical CPU devices "
        "to split the CPU into",
        group=GROUP_SCALE,
        parse=positive_int,
    )
    precision: str = option(
        "float32",
        "Keras mixed-precision policy (default float32)",
        group=GROUP_SCALE,
        choices=("float32", "mixed_float16", "mixed_bfloat16"),
    )

    # -- construction and validation -----------------------------------------------------------------------------
    def __post_init__(self):
        for field in dataclasses.fields(self):
            meta = _meta(field)
            if meta is None:
                continue
            value = getattr(self, field.name)
            coerced = _coerce(field, value)
            if coerced is not value:
                object.__setattr__(self, field.name, coerced)
            if meta["choices"] is not None and coerced not in meta["choices"] and coerced is not None:
                raise ConfigError(
                    f"{flag_name(field)} must be one of {', '.join(map(str, meta['choices']))}, got {coerced!r}"
                )
            if meta["check"] is not None and coerced is not None:
                problem = meta["check"](coerced)
                if problem:
                    raise ConfigError(f"{flag_name(field)} {problem}")
        if self.devices is not None and self.distribute != "mirrored":
            raise ConfigError("--devices needs --distribute mirrored")

    @classmethod
    def make(cls, config=None, **overrides):
        """`config` (an instance, or None for the defaults) with `overrides`; unknown names are one-line errors."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)} for {cls.APP}; see --help for the settings")
        if config is None:
            return cls(**overrides)
        if not isinstance(config, cls):
            raise ConfigError(f"expected a {cls.__module__}.{cls.__name__}, got {type(config).__name__}")
        return dataclasses.replace(config, **overrides)

    # -- derived values ------------------------------------------------------------------------------------------
    @property
    def train_epochs(self):
        """The epochs to train: `--epochs` when given, else the app's default (at most 2 under `--quick`)."""
        if self.epochs is not None:
            return self.epochs
        return min(self.EPOCHS, self.QUICK_EPOCHS) if self.quick else self.EPOCHS

    @property
    def export_path(self):
        return Path(self.export_dir) if self.export_dir else Path("saved_models") / self.APP

    # -- what a run records ---------------------------------------------------------------------------------------
    def identity(self):
        """The fields that define what a run computes (the run id hashes exactly these), with derived values
        resolved: the epochs actually trained, not `None`."""
        values = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if _meta(field) is not None and _meta(field)["identity"]
        }
        values["epochs"] = self.train_epochs
        return {name: _as_json(value) for name, value in values.items()}

    def settings(self):
        """Every field as given (what `--print-config` prints and `--config` reads back)."""
        return {field.name: _as_json(getattr(self, field.name)) for field in dataclasses.fields(self)}

    # -- command line ---------------------------------------------------------------------------------------------
    @classmethod
    def parser(cls):
        """The command line derived from the fields (every flag's default is the field's)."""
        return _parser(cls)

    @classmethod
    def from_argv(cls, argv=None):
        """Parse a command line: `--config FILE` first (its values), then the flags given (which override it).
        `--print-config` prints the full configuration as JSON and exits 0 (`SystemExit`, as `--help` does)."""
        parser = cls.parser()
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        given = vars(args)
        values = {}
        config_file = given.pop("config", None)
        print_config = given.pop("print_config", False)
        if config_file is not None:
            values.update(read_config_file(config_file, cls))
        values.update(given)
        config = cls.make(**values)
        if print_config:
            print(json.dumps({"app": cls.APP, "settings": config.settings()}, indent=2))
            raise SystemExit(0)
        return config


def _as_json(value):
    """A field's value as config.json holds it (a tuple as a list)."""
    return list(value) if isinstance(value, tuple) else value


def _coerce(field, value):
    """A value from the command line, a config file or Python, in the field's form (text parsed, lists as tuples)."""
    meta = _meta(field)
    if meta["repeat"]:
        if isinstance(value, str):
            value = [value]
        return tuple(value) if not isinstance(value, tuple) else value
    if value is None:
        return None
    parse = meta["parse"] or _base_type(field)
    if isinstance(value, list):
        value = tuple(value)
    needs_parse = meta["parse"] is not None or isinstance(value, str)
    if parse is None or not needs_parse or (isinstance(value, str) and parse is str):
        return value
    try:
        parsed = parse(value)
    except (ValueError, TypeError, ConfigError) as err:
        if not isinstance(value, tuple):
            raise ConfigError(f"{flag_name(field)}: {err}") from None
        # A list from a config file or Python, for a parser of comma-separated text: parse it as that text.
        try:
            parsed = parse(",".join(map(str, value)))
        except (ValueError, TypeError, ConfigError) as again:
            raise ConfigError(f"{flag_name(field)}: {again}") from None
    return value if parsed == value and type(parsed) is type(value) else parsed


def _base_type(field):
    """bool, int, float or str for a field annotated with one of them (or Optional of one), else None."""
    args = [a for a in typing.get_args(field.type) if a is not type(None)]
    kind = args[0] if len(args) == 1 else field.type
    if kind is bool:
        return _bool
    return kind if kind in (int, float, str) else None


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _parser(cls):
    parser = ArgumentParser(
        prog=f"python -m apps.{cls.APP}", description=cls.DESCRIPTION, argument_default=argparse.SUPPRESS
    )
    groups = {}
    for field in dataclasses.fields(cls):
        meta = _meta(field)
        if meta is None:
            continue
        title = meta["group"]
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        default = field.default
        text = meta["help"].format(default=_show(default), cls=_HelpNames(cls))
        kwargs = {"dest": field.name, "help": text}
        kind = _base_type(field)
        if kind is _bool and meta["negatable"]:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is _bool:
            kwargs["action"] = "store_true"
        elif meta["repeat"]:
            kwargs["action"] = "append"
        else:
            kwargs["type"] = _cli_type(field)
            if meta["choices"] is not None:
                kwargs["choices"] = meta["choices"]
        if meta["metavar"]:
            kwargs["metavar"] = meta["metavar"]
        groups[title].add_argument(flag_name(field), **kwargs)
    replay = parser.add_argument_group("configuration")
    replay.add_argument(
        "--config",
        metavar="FILE",
        help="read the settings from FILE (a run folder's config.json, or the JSON --print-config prints; "
        ".yaml/.yml or .toml too); flags override it",
    )
    replay.add_argument("--print-config", action="store_true", help="print the full configuration as JSON and exit")
    return parser


class _HelpNames:
    """What a help text may name: the class's attributes, and `SWEEPABLE_NAMES` (the sweepable names, sorted)."""

    def __init__(self, cls):
        self._cls = cls

    def __getattr__(self, name):
        if name == "SWEEPABLE_NAMES":
            return ", ".join(sorted(getattr(self._cls, "SWEEPABLE", {})))
        return getattr(self._cls, name)


def _cli_type(field):
    return flag_type(_meta(field)["parse"] or _base_type(field) or str)


def _show(value):
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def read_config_file(path, cls):
    """The settings a config file holds (a run's config.json, `--print-config`'s JSON, YAML or TOML), checked
    against `cls`'s fields: one line for a missing or unreadable file, another app's file or an unknown name."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read --config {path}: {err.strerror or err}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as err:  # noqa: BLE001 - any parser's error is the user's file's problem
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        kind = {".yaml": "YAML", ".yml": "YAML", ".toml": "TOML"}.get(path.suffix, "JSON")
        raise ConfigError(f"--config {path} is not valid {kind}: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must hold a mapping of settings, got {type(data).__name__}")
    app = data.get("app")
    if app is not None and app != cls.APP:
        raise ConfigError(f"--config {path} is a configuration of {app}, not of {cls.APP}")
    settings = data.get("settings", {k: v for k, v in data.items() if k != "app"})
    if not isinstance(settings, dict):
        raise ConfigError(f"--config {path}: 'settings' must be a mapping")
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"--config {path}: unknown setting(s) {', '.join(unknown)} for {cls.APP}")
    return settings


def _objective_problem(text):
    from tfnets.experiment.space import parse_objective

    try:
        parse_objective(text)
    except ConfigError as err:
        return str(err).removeprefix("--objective ")
    return None


@dataclasses.dataclass(frozen=True)
class SweepConfig(CommonConfig):
    """`CommonConfig` plus the search flags (`tfnets.experiment.space` is their grammar). `SWEEPABLE`: the names a
    `--sweep` may vary, name -> type."""

    SWEEPABLE: typing.ClassVar[dict] = {}

    sweep: typing.Tuple[str, ...] = option(
        (),
        "search a hyperparameter over a list of values or a range (linear, log, logN; :int for integers); names: "
        "{cls.SWEEPABLE_NAMES}",
        group=GROUP_SWEEP,
        repeat=True,
        metavar="NAME=V1,V2|NAME=LOW:HIGH[:log][:int]",
    )
    tuner: str = option(
        "grid",
        "grid: every combination of the lists (default); random: a random subset of the space; bayesian: Bayesian "
        "optimisation; hyperband: Hyperband (--epochs at most per trial)",
        group=GROUP_SWEEP,
        choices=TUNERS,
    )
    max_trials: typing.Optional[int] = option(
        None, "number of trials (random, bayesian; caps a grid)", group=GROUP_SWEEP, parse=int
    )
    objective: str = option(
        DEFAULT_OBJECTIVE,
        "what the search optimises: a per-epoch metric (val_loss, val_accuracy, ...; the best epoch counts), "
        "minimised unless it names an accuracy or ends in :max (default {default})",
        group=GROUP_SWEEP,
        check=_objective_problem,
    )
    trial_patience: typing.Optional[int] = option(
        None,
        "stop a trial when its objective has not improved for N epochs (default: never)",
        group=GROUP_SWEEP,
        parse=int,
        metavar="N",
    )
    hyperband_factor: int = option(
        DEFAULT_FACTOR, "Hyperband's reduction factor between rounds (default {default})", group=GROUP_SWEEP
    )

    def __post_init__(self):
        super().__post_init__()
        from tfnets.experiment.space import check_search

        check_search(self.space, self.tuner, self.max_trials, self.trial_patience, self.hyperband_factor)

    @functools.cached_property
    def space(self):
        """The `--sweep` flags parsed: name -> list of values or `Range` (empty without a sweep)."""
        from tfnets.experiment.space import parse_sweep

        return parse_sweep(self.sweep, self.SWEEPABLE)

    def sweep_options(self):
        """The `Sweep` keyword arguments the search flags give."""
        return {
            "tuner": self.tuner,
            "max_trials": self.max_trials,
            "seed": self.seed,
            "objective": self.objective,
            "patience": self.trial_patience,
            "factor": self.hyperband_factor,
        }
