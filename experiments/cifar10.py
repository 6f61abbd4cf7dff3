r"""CIFAR-10, fully connected, as goodfeli/adversarial's cifar10_fully_connected.yaml ran it.

G: z (100-d Gaussian) -> ReLU 8000 -> sigmoid 8000 -> linear 3072 (output weights U(-0.5, 0.5));
D: maxout 1600x5 -> maxout 1600x5 -> sigmoid (weights U(-0.005, 0.005)), dropout on every layer's
input (pixels kept with p = 0.8, the rest with p = 0.5); SGD lr 0.025, batch 100, MNIST's momentum
and decay schedules; no max-norm constraint.

  python launch.py --config=experiments/cifar10.py --workdir=runs/cifar10

Paper: no Parzen number for CIFAR-10 (Table 1 has MNIST and TFD only); samples in Figure 2 (c).
The sample grids in <workdir>/samples undo the contrast normalisation for display.

Data: TFDS `cifar10` (downloaded by TFDS, or a prepared copy in TFDS_DATA_DIR when offline):
train[:40000] to train, train[40000:] to validate, test to test, each image globally contrast
normalised as pylearn2's CIFAR10(gcn=55.): mean subtracted, scaled to L2 norm 55.
The original ran until stopped by hand; num_steps gives 300 epochs, as our MNIST run.
"""

import ml_collections

from gan_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The fully connected CIFAR-10 experiment; it takes no `arg`."""
  config_lib.parse_variant(arg, (), 'cifar10')
  config = config_lib.base_config()

  d = config.data
  d.name = 'cifar10'
  d.train_split, d.valid_split = 'train[:40000]', 'train[40000:]'
  d.preprocessing = 'gcn'

  m = config.model
  m.prior = 'gaussian'
  m.g_hidden = (8000, 8000)
  m.g_activations = ('relu', 'sigmoid')
  m.g_output_activation = 'linear'  # Contrast-normalised pixels have no fixed range.
  m.g_output_init = 'uniform:0.5'
  # g_output_bias_from_marginals stays off: for sigmoid outputs only (commented out in the yaml).
  m.d_units = (1600, 1600)

  config.optim.learning_rate = 0.025
  config.train.num_steps = 120_000  # 300 epochs of 40,000 examples.
  config.eval.every = 0  # Off: the paper reports no CIFAR-10 likelihood (--mode=eval still works).
  return config
