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


class DiskFull(TfnetsError):
    """The filesystem (or the quota) filled up while writing `path`; the file was not written, nothing half-written
    is left. `resume` says what re-running the same command will do (e.g. "training resumes after epoch 3")."""

    exit_code = 1

    def __init__(self, path, resume=None):
        self.path, self.resume = path, resume
        super().__init__(
            f"no space left on device writing {path}; free space and re-run the same command"
            + (f": {resume}" if resume else "")
        )

    def resuming(self, resume):
        """The same error with what a re-run does (kept when one is already said)."""
        return self if self.resume else DiskFull(self.path, resume)
