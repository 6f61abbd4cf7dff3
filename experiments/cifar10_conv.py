r"""CIFAR-10, convolutional, as goodfeli/adversarial's cifar10_convolutional.yaml ran it.

G: z (100-d Gaussian) -> ReLU 8000 -> sigmoid 8000 -> reshape to 10 x 10 x 80 -> transposed
convolution to 3 channels, 5x5 kernel, stride 3, no padding (3 * (10 - 1) + 5 = 32), linear, one
bias per channel and position; weights U(-0.05, 0.05).
D: three maxout convolution layers of 2 pieces (pylearn2's MaxoutConvC01B: zero padding,
convolution, maxout over channel pairs, cuda-convnet max pooling):
  32 ch 8x8 pad 4, pool 4 stride 2:  32 -> 33 -> 16
  32 ch 8x8 pad 3, pool 4 stride 2:  16 -> 15 -> 7   (192 channels "ran out of memory" there)
  192 ch 5x5 pad 3, pool 2 stride 2:  7 ->  9 -> 5
then maxout 500x5 and a sigmoid unit; weights U(-0.005, 0.005); dropout on every layer's input
(pixels kept with p = 0.8, scaled by 1.25; the rest with p = 0.5, scaled by 2).
SGD lr 0.004, batch 128, MNIST's momentum and decay schedules.

  python launch.py --config=experiments/cifar10_conv.py --workdir=runs/cifar10_conv

Paper: no Parzen number for CIFAR-10; samples of this model in Figure 2 (d).
The sample grids in <workdir>/samples undo the contrast normalisation for display.

Data: TFDS `cifar10` (downloaded by TFDS, or a prepared copy in TFDS_DATA_DIR when offline):
train[:40000] / train[40000:] / test, globally contrast normalised to L2 norm 55 (pylearn2's
gcn=55.). The original ran until stopped by hand; num_steps gives 300 epochs.
"""

import ml_collections

from experiments import cifar10
from gan_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The convolutional CIFAR-10 experiment; it takes no `arg`."""
  config_lib.parse_variant(arg, (), 'cifar10_conv')
  config = cifar10.get_config()  # The same data, prior, hidden layers and schedules.

  m = config.model
  m.generator = 'deconv'
  # The transposed convolution (g_reshape, g_deconv_*) and D's conv layers (d_conv_*) are the
  # base's defaults, which are this yaml's: 10 x 10 x 80 -> 5x5 stride 3 -> 32 x 32 x 3 (untied
  # bias), and the three maxout conv layers above.
  m.g_output_init = 'uniform:0.05'
  m.discriminator = 'maxout_conv'
  m.d_units = (500,)

  config.optim.learning_rate = 0.004
  config.train.batch_size = 128
  config.train.num_steps = 93_600  # 300 epochs of 312 minibatches of 128.
  return config
