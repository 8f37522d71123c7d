"""Quiet by default: TensorFlow's C++ log lines are hidden from command-line users unless they ask for them.

A plain `import tensorflow` in TF 2.21 prints, on a machine without a GPU::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    (the three lines again, from a second shared library)
    E0000 ... cuda_platform.cc:52] failed call to cuInit: ...            (at the first op)

and, during training under op determinism, `E0000 ... NodeDef mentions attribute use_unbounded_threadpool ...`
(Keras feeds NumPy validation/test arrays through a parallel `tf.data` map, which the determinism rewrite
turns into a sequential map that keeps an attribute the sequential op does not know; harmless).

`TF_CPP_MIN_LOG_LEVEL=3` hides the lines TF logs after its logging is initialised, but the ones logged while
its libraries load ignore it. So `quiet_tensorflow()` sets the level (unless the user set it) and also filters
stderr while `tensorflow` itself is imported, dropping exactly the log lines below that level. It must run
before TensorFlow is imported; `tfnets.experiment.cli.run_main` calls it for every app.
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "3"  # hide C++ INFO (0), WARNING (1) and ERROR (2) lines; FATAL still shows
_SEVERITY = {"I": 0, "W": 1, "E": 2}
_LOG_LINE = re.compile(r"^([IWE])\d{4} ")
_PRE_INIT_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def quiet_tensorflow(debug=False):
    """Hide TF's C++ log lines and Python-side TF/Keras noise; with `debug`, change nothing (show everything).

    Sets `TF_CPP_MIN_LOG_LEVEL` to 3 unless the user set it (then their level applies, also to the lines of
    the library load). Call it before TensorFlow is imported; later calls only adjust the Python-side filters.
    """
    if debug:
        return
    os.environ.setdefault(LEVEL_VARIABLE, QUIET_LEVEL)
    if "tensorflow" in sys.modules:
        _quiet_python_loggers()
    elif not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def log_level():
    """The C++ log level in effect: `TF_CPP_MIN_LOG_LEVEL` as an int (TF's default 0 when unset or unreadable)."""
    try:
        return int(os.environ.get(LEVEL_VARIABLE, "0"))
    except ValueError:
        return 0


def is_hidden(line, level):
    """Whether TF would have hidden this stderr line at `level`, had its logging been initialised already."""
    if level <= 0:
        return False
    if line.rstrip("\n") == _PRE_INIT_NOTICE:
        return True
    match = _LOG_LINE.match(line)
    return bool(match) and _SEVERITY[match.group(1)] < level


@contextlib.contextmanager
def filtered_stderr(level):
    """Route file descriptor 2 (C++ writes there directly) through a file; copy back the lines not hidden."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not is_hidden(line, level))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _quiet_python_loggers():
    # TF's and absl's Python loggers warn about retracing and the like: hints for TF developers, not users.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` like the other finders, but executes it under `filtered_stderr` (once)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # TensorFlow sees its own loader, as after a plain import.
        module.__loader__ = module.__spec__.loader = self.loader
        with filtered_stderr(log_level()):
            self.loader.exec_module(module)
        _quiet_python_loggers()
