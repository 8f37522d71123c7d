"""The command-line skeleton every command shares (the apps' flags are derived from their `Config`:
`tfnets.experiment.config`).

`ArgumentParser` makes a bad flag one line; `run_main()` turns a user-fixable `TfnetsError` into one `error: ...` line
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
from tfnets.experiment.values import positive_int as _positive_int


def flag_type(parse):
    """An argparse `type=` from a value parser (`tfnets.experiment.values`): its `ValueError` or `ConfigError`
    message becomes argparse's one-line error for that flag."""

    def convert(text):
        try:
            return parse(text)
        except (ValueError, ConfigError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


positive_int = flag_type(_positive_int)  # for the plain command lines (predict, the launcher, the benchmark)


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


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is ONE line (`error: ...`) and exit 2, without the usage dump."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


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
        scratch.remove_all()  # a non-chief worker's copy of the run, when a command left its Experiment unclosed


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
