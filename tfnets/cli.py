"""The command-line skeleton every app shares.

`base_parser()` gives the core flags (`--data-dir --epochs --batch-size --seed --out --quick --jit/--no-jit
--debug`); `run_main()` turns a user-fixable `TfnetsError` into one `error: ...` line and a non-zero exit,
never a traceback (unless `--debug`).
"""
import argparse
import os
import sys

from tfnets.errors import ConfigError, TfnetsError


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


def int_list(text):
    """`"100,500,1000"` -> `[100, 500, 1000]` (each positive)."""
    return [positive_int(part) for part in text.split(",") if part.strip()]


def float_list(text):
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


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
    core.add_argument("--data-dir", default=None,
                      help="dataset folder (default: $TFNETS_DATA_DIR, else ~/.cache/tfnets/data)")
    core.add_argument("--epochs", type=positive_int, default=epochs, action=_StoreExplicit,
                      help=f"training epochs (default {epochs}; 2 under --quick unless given)")
    core.add_argument("--batch-size", type=positive_int, default=batch_size,
                      help=f"mini-batch size (default {batch_size})")
    core.add_argument("--seed", type=int, default=seed, help=f"seeds Python, NumPy and TF (default {seed})")
    core.add_argument("--out", default="runs", help="root folder of run outputs (default runs/)")
    core.add_argument("--run-id", default=None,
                      help="name of this run's folder (default: derived from the settings, so re-running the "
                           "same command resumes it)")
    core.add_argument("--export-dir", default=None,
                      help=f"where the trained model is exported (default saved_models/{app})")
    core.add_argument("--quick", action="store_true",
                      help="a tiny real subset and one or two epochs: a smoke test of the whole pipeline")
    core.add_argument("--jit", action=argparse.BooleanOptionalAction, default=False,
                      help="compile with XLA; turns off op determinism, so repeated runs may differ in the last "
                           "bits (default: off, deterministic)")
    core.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def run_main(main, argv=None):
    """Run `main(argv)`; map errors to one line on stderr and an exit code. Returns the exit code."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv) or os.environ.get("TFNETS_DEBUG") == "1"
    try:
        main(argv)
        return 0
    except TfnetsError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted: completed epochs are checkpointed; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence against tracebacks for users
        if debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(f"error: unexpected {type(err).__name__}: {message} (re-run with --debug for the traceback)",
              file=sys.stderr)
        return 1


def exit_with(main, argv=None):
    sys.exit(run_main(main, argv))


def require(condition, message):
    """Raise a one-line `ConfigError` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)
