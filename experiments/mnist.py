r"""MNIST, as goodfeli/adversarial's mnist.yaml ran it (Goodfellow et al., 2014, Table 1).

The paper's main experiment, so its recipe is the base config (gan_jax/config.py, where every
field is explained): G z (100-d uniform) -> ReLU 1200 -> ReLU 1200 -> sigmoid 784 (output bias
from the pixel marginals); D maxout 240x5 -> maxout 240x5 -> sigmoid with dropout on every
layer's input; SGD with momentum, lr 0.1 decaying as lr / 1.000004^t, batch 100; the original
code's simultaneous update of D and G.

Train (resumes automatically when the workdir already holds a run):

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist

This is the full run: 1,650,000 steps, where the run reported in results/README.md had stopped
improving (its Parzen estimate flattens as the learning rate decays). That run's own config is
results/mnist_simultaneous_seed0.config.json; it also had --config.eval.every=0 (no estimates
during training) and --config.train.keep_checkpoints=500 (every checkpoint kept, to score them
afterwards): add those to match it.

A demo of the same recipe that runs for minutes, not hours (30,000 steps; everything else equal):

  python launch.py --config=experiments/mnist.py:quick --workdir=runs/mnist_quick

Evaluate with the paper's Parzen-window protocol (10,000 samples, sigma chosen on the first 1,000
validation images, mean log-likelihood on the 10,000 test images):

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist --mode=eval

Paper, Table 1: 225 +- 2 nats; this reproduction's numbers are in results/README.md.
Variants that are not the paper's procedure: G's weights averaged over the run's checkpoints
(--config.eval.parzen.g_average=W) or an EMA of them (--config.train.g_ema_decay=0.999 and
--config.eval.parzen.g_ema=True); the estimator's reference with training images as the samples
(--config.eval.parzen.data_as_samples=True).

Algorithm 1 instead of the original simultaneous update:
  --config.train.update_rule=alternating --config.train.k_steps=1

Data: TFDS `mnist` (train[:50000] to train, train[50000:] to validate, test to test; pixels divided
by 255); set TFDS_DATA_DIR (or --config.data.data_dir) to a prepared copy when offline, or
--config.data.idx_dir to the four original IDX files.
"""

import ml_collections

from gan_jax import config as config_lib

VARIANTS = ('quick',)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The MNIST experiment; `arg` 'quick' is the 30,000-step demo."""
  variant = config_lib.parse_variant(arg, VARIANTS, 'mnist')
  config = config_lib.base_config()
  # mnist.yaml's init_bias_target_marginals (off in the base, as runs without the field were).
  config.model.g_output_bias_from_marginals = True
  if variant == 'quick':
    config.train.num_steps = 30_000
  return config
