"""gan_jax: Generative Adversarial Nets (Goodfellow et al., 2014) in JAX and Flax."""

from gan_jax import multihost
from gan_jax.api import evaluate
from gan_jax.api import make_figures
from gan_jax.api import train_and_evaluate
from gan_jax.errors import CheckpointError
from gan_jax.errors import ConfigError
from gan_jax.errors import DataError
from gan_jax.errors import TrainingError
from gan_jax.errors import USER_ERRORS
from gan_jax.errors import WorkdirError

__all__ = ['train_and_evaluate', 'evaluate', 'make_figures', 'USER_ERRORS', 'CheckpointError',
           'ConfigError', 'DataError', 'TrainingError', 'WorkdirError']
