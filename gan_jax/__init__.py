"""gan_jax: Generative Adversarial Nets (Goodfellow et al., 2014) in JAX and Flax."""

from gan_jax import multihost
from gan_jax.checkpoint import CheckpointError
from gan_jax.data import DataError
from gan_jax.run import TrainingError
from gan_jax.run import train_and_evaluate
from gan_jax.validation import ConfigError
from gan_jax.workdir import WorkdirError


def evaluate(config, workdir, step=None):
  """Runs the paper's Parzen protocol on a checkpoint in `workdir` (default: the newest)."""
  from gan_jax import evaluation  # pylint: disable=g-import-not-at-top
  return evaluation.evaluate(config, workdir, step)


def make_figures(config, workdir, step=None):
  """Writes the paper's figures for the run in `workdir` into `workdir/figures`."""
  from gan_jax import figures  # pylint: disable=g-import-not-at-top
  return figures.make_figures(config, workdir, step)


# Errors caused by the user's input: launch.py prints them as one line and exits 2.
USER_ERRORS = (ConfigError, DataError, WorkdirError, CheckpointError, TrainingError)

__all__ = ['train_and_evaluate', 'evaluate', 'make_figures', 'USER_ERRORS']
