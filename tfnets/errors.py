"""User-facing errors.

Anything a user can cause (a missing file, a bad flag value, a diverging loss) is raised as a
`TfnetsError` subclass whose message is ONE line that says what is wrong and what to do. The CLI
wrapper (`tfnets.experiment.cli.run_main`) prints `error: <message>` and exits non-zero instead of a traceback.
"""


class TfnetsError(Exception):
    """A problem the user can fix; `str(err)` is a single line shown as-is."""

    exit_code = 2


class DataError(TfnetsError):
    """A dataset file is missing, unreadable, truncated or has the wrong content."""


class ConfigError(TfnetsError):
    """A flag or hyperparameter value is invalid (unknown name, negative epochs, ...)."""


class ModelError(TfnetsError):
    """A saved model is missing or its inputs do not match what it expects."""


class TrainingDiverged(TfnetsError):
    """The loss became NaN/Inf; the last good checkpoint is kept."""

    exit_code = 3
