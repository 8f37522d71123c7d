"""The command-line skeleton every app shares.

`base_parser()` gives the core flags (`--data-dir --epochs --batch-size --seed --out --quick --jit/--no-jit
--steps-per-execution --debug`); `run_main()` turns a user-fixable `TfnetsError` into one `error: ...` line
and a non-zero exit, never a traceback (unless `--debug`), and keeps TensorFlow's C++ log lines out of the
user's way (`tfnets.experiment.quiet`; `--debug` shows them). This module imports no TensorFlow: apps build and check their
arguments before anything heavy is loaded.
"""

import argparse
import os
import signal
import sys
import threading

from tfnets.atomic import is_disk_full
from tfnets.errors import ConfigError, DiskFull, TfnetsError
from tfnets.experiment import locks, scratch
from tfnets.experiment.quiet import quiet_tensorflow


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def steps_per_execution(text):
    """`--steps-per-execution`: `"epoch"` (one graph call per epoch) or `1` (one per batch)."""
    value = str(text).strip().lower()
    if value == "epoch":
        return "epoch"
    if value == "1":
        return 1
    raise argparse.ArgumentTypeError(f"expected 'epoch' or 1, got {text!r}")


def int_list(text):
    """`"100,500,1000"` -> `[100, 500, 1000]` (each positive)."""
    return [positive_int(part) for part in text.split(",") if part.strip()]


def float_list(text):
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def choice_list(choices, *, name, allow_all=False, allow_none=False):
    """An argparse `type=` for a comma-separated pick from `choices`: `"b,A"` -> `["b", "a"]`.

    Matching ignores case and returns the spelling in `choices`; the user's order is kept and repeats are
    dropped (a part named twice runs once). `allow_all` adds the keyword `all` (every choice, in `choices`
    order); `allow_none` adds `none` (an empty list). A keyword must be the whole value. Anything else,
    an empty value included, raises a one-line `ConfigError` naming `name` (the flag) and the valid choices,
    so the same callable also works when an app parses the raw string itself in `main`.
    """
    choices = tuple(choices)
    keywords = [word for word, allowed in (("all", allow_all), ("none", allow_none)) if allowed]
    by_key = {choice.lower(): choice for choice in choices}
    if len(by_key) != len(choices) or by_key.keys() & set(keywords):
        raise ValueError(f"choices must differ ignoring case and from the keywords {keywords}: {choices}")
    valid = ", ".join(choices) + (", or " + " or ".join(f"'{word}'" for word in keywords) if keywords else "")

    def parse(text):
        typed = [word.strip() for word in str(text).split(",") if word.strip()]
        words = [word.lower() for word in typed]
        if not words:
            raise ConfigError(f"{name} is empty; choose a comma-separated list from {valid}")
        if words in (["all"], ["none"]) and words[0] in keywords:
            return list(choices) if words == ["all"] else []
        misplaced = [word for word in words if word in keywords]
        if misplaced:
            raise ConfigError(
                f"{name} {text!r}: '{misplaced[0]}' must be given alone; choose a comma-separated list from {valid}"
            )
        unknown = [word for word in typed if word.lower() not in by_key]
        if unknown:
            raise ConfigError(
                f"{name} got unknown value(s) {', '.join(map(repr, unknown))}; choose a "
                f"comma-separated list from {valid}"
            )
        return [by_key[word] for word in dict.fromkeys(words)]

    return parse


class _StoreExplicit(argparse.Action):
    """Stores the value and remembers that the user gave it (so --quick does not override it)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace._explicit = sorted(set(getattr(namespace, "_explicit", [])) | {self.dest})


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is ONE line (`error: ...`) and exit 2, without the usage dump."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def base_parser(app, description, *, epochs, batch_size, seed=0):
    """An `ArgumentParser` with the flags every app takes; apps add their own on top."""
    parser = ArgumentParser(prog=f"python -m apps.{app}", description=description)
    parser.set_defaults(app=app)
    core = parser.add_argument_group("common options")
    core.add_argument(
        "--data-dir", default=None, help="dataset folder (default: $TFNETS_DATA_DIR, else ~/.cache/tfnets/data)"
    )
    core.add_argument(
        "--epochs",
        type=positive_int,
        default=epochs,
        action=_StoreExplicit,
        help=f"training epochs (default {epochs}; 2 under --quick unless given)",
    )
    core.add_argument(
        "--batch-size", type=positive_int, default=batch_size, help=f"mini-batch size (default {batch_size})"
    )
    core.add_argument("--seed", type=int, default=seed, help=f"seeds Python, NumPy and TF (default {seed})")
    core.add_argument("--out", default="runs", help="root folder of run outputs (default runs/)")
    core.add_argument(
        "--run-id",
        default=None,
        help="name of this run's folder (default: derived from the settings, so re-running the "
        "same command resumes it)",
    )
    core.add_argument(
        "--export-dir", default=None, help=f"where the trained model is exported (default saved_models/{app})"
    )
    core.add_argument(
        "--quick",
        action="store_true",
        help="a tiny real subset and one or two epochs: a smoke test of the whole pipeline",
    )
    core.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="compile with XLA; turns off op determinism, so repeated runs may differ in the last "
        "bits (default: off, deterministic)",
    )
    core.add_argument(
        "--steps-per-execution",
        type=steps_per_execution,
        default="epoch",
        metavar="{epoch,1}",
        help="batches per graph call: 'epoch' (default, faster) or 1; both give the same results, "
        "1 shows per-batch progress and names the exact batch where the loss became NaN",
    )
    core.add_argument("--debug", action="store_true", help="show full tracebacks and TensorFlow's log lines")
    scale = parser.add_argument_group("devices and precision")
    scale.add_argument(
        "--distribute",
        choices=("none", "mirrored", "multi-worker"),
        default="none",
        help="none (default): one device; mirrored: all visible GPUs, or --devices N logical CPU "
        "devices; multi-worker: one process per worker, from TF_CONFIG (see docs/distributed.md)",
    )
    scale.add_argument(
        "--devices",
        type=positive_int,
        default=None,
        help="with --distribute mirrored: how many GPUs (default all), or without a GPU how many "
        "logical CPU devices to split the CPU into",
    )
    scale.add_argument(
        "--precision",
        choices=("float32", "mixed_float16", "mixed_bfloat16"),
        default="float32",
        help="Keras mixed-precision policy (default float32)",
    )
    return parser


# The core flags that change what a run computes. The others (--data-dir, --out, --run-id, --export-dir, --debug,
# --steps-per-execution) only change where the data and outputs live or how the work is split into graph calls.
RUN_FLAGS = ("epochs", "batch_size", "seed", "quick", "jit", "distribute", "devices", "precision")


def core_config(args):
    """The core part of an app's run configuration (see each app's `get_config`)."""
    return {name: getattr(args, name) for name in RUN_FLAGS if hasattr(args, name)}


def run_main(main, argv=None):
    """Run `main(argv)`; map errors to one line on stderr and an exit code. Returns the exit code, the one
    `python -m` would end with (argparse's own `--help` and usage errors included)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv) or os.environ.get("TFNETS_DEBUG") == "1"
    quiet_tensorflow(debug)
    previous = _interrupt_on_sigterm()
    try:
        main(argv)
        return 0
    except SystemExit as stop:  # argparse: --help (0) and bad flags (2, its usage line already printed)
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except Terminated:
        print(INTERRUPTED, file=sys.stderr)
        return 128 + signal.SIGTERM
    except TfnetsError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence against tracebacks for users
        if debug:
            raise
        if is_disk_full(err):  # a write that does not go through tfnets.atomic (a lock file, TensorBoard's logs)
            print(f"error: {DiskFull(getattr(err, 'filename', None) or 'a file')}", file=sys.stderr)
            return DiskFull.exit_code
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(
            f"error: unexpected {type(err).__name__}: {message} (re-run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        locks.release_all()  # this command's run and export folders are free again
        scratch.remove_all()  # a non-chief worker's copy of the run (multi-worker training)
        if "tfnets.experiment.distribute" in sys.modules:
            sys.modules["tfnets.experiment.distribute"].reset()


INTERRUPTED = "interrupted: completed epochs are checkpointed; re-run the same command to resume"


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up and message apply."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _interrupt_on_sigterm():
    """Turn SIGTERM into `Terminated` (main thread only); returns the previous handler, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def exit_with(main, argv=None):
    sys.exit(run_main(main, argv))


def require(condition, message):
    """Raise a one-line `ConfigError` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)
