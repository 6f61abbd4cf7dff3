"""gan_jax: Generative Adversarial Nets (Goodfellow et al., 2014) in JAX and Flax."""

from gan_jax.checkpoint import CheckpointError
from gan_jax.data import DataError
from gan_jax.run import TrainingError
from gan_jax.run import train_and_evaluate
from gan_jax.validation import ConfigError
from gan_jax.workdir import WorkdirError


def evaluate(config, workdir):
  """Runs the paper's Parzen protocol on the newest checkpoint in `workdir`."""
  from gan_jax import evaluation  # pylint: disable=g-import-not-at-top
  return evaluation.evaluate(config, workdir)


# Errors caused by the user's input: launch.py prints them as one line and exits 2.
USER_ERRORS = (ConfigError, DataError, WorkdirError, CheckpointError, TrainingError)

__all__ = ['train_and_evaluate', 'evaluate', 'USER_ERRORS']
