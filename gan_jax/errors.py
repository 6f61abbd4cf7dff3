"""The errors gan_jax raises for bad input: each one line that names the problem and the fix.

A leaf module: everything else imports it, it imports nothing of gan_jax. launch.py prints any of
USER_ERRORS as one line and exits with status 2; other exceptions are bugs and keep their
traceback.
"""


class ConfigError(ValueError):
  """The config asks for something that does not exist or cannot work."""


class DataError(ValueError):
  """A dataset cannot be found, prepared or understood."""


class WorkdirError(ValueError):
  """The workdir cannot hold this run."""


class CheckpointError(ValueError):
  """No usable checkpoint, or one that does not fit the model."""


class TrainingError(RuntimeError):
  """Training cannot go on (e.g. a NaN); the last good checkpoint is kept."""


USER_ERRORS = (ConfigError, DataError, WorkdirError, CheckpointError, TrainingError)
