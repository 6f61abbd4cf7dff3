"""Test set-up: 4 CPU devices for multi-device tests, and small configs."""

import os
import sys

# Must precede the first `import jax` anywhere in the test session.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')

import pytest  # pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # experiments/ and launch.py live at the repository root.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def tiny_mnist_config(**train):
  """experiments/mnist.py with small networks and a short run."""
  from experiments import mnist  # pylint: disable=g-import-not-at-top

  config = mnist.get_config()
  config.model.g_hidden = (32, 32)
  config.model.d_units = (16, 16)
  config.model.d_pieces = 3
  config.train.batch_size = 8
  config.train.num_steps = 6
  config.train.log_every = 2
  config.train.checkpoint_every = 3
  config.train.sample_every = 3
  config.train.steps_per_call = 2
  config.eval.every = 0
  for k, v in train.items():
    config.train[k] = v
  return config


def small_eval(config):
  """Shrinks config.eval.parzen to a few dozen samples and points."""
  p = config.eval.parzen
  p.num_samples, p.valid_size, p.train_num_samples, p.train_valid_size = 50, 20, 30, 20
  p.batch_size = 16
  return config


@pytest.fixture
def tiny_config():
  return tiny_mnist_config


REAL_MNIST = os.environ.get('TFDS_DATA_DIR') and os.path.isdir(
    os.path.join(os.environ.get('TFDS_DATA_DIR', ''), 'mnist'))
