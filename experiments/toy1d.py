r"""Figure 1's 1-D toy problem: G learns p_data = N(4, 0.5^2) from uniform noise.

Trained by the same code as the image experiments (a maxout D without dropout, an MLP G,
simultaneous updates, Adam), a short run on a CPU:

  python launch.py --config=experiments/toy1d.py --workdir=runs/toy1d

then Figure 1 (p_data, p_g, D(x) and the optimal D*(x) at the initial state and 3 checkpoints
spread over training, with the map x = G(z) underneath):

  python launch.py --config=experiments/toy1d.py --workdir=runs/toy1d --mode=figures

writes runs/toy1d/figures/figure1.png (`--step=N` ends the figure at checkpoint N). Every
checkpoint is kept (keep_checkpoints >= num_steps / checkpoint_every) so the figure can reach back.

What to expect (measurements: results/README.md): G soon matches p_data's mean but not its shape,
and p_g does not converge to p_data. The figure shows why: D(x) settles near 1/2 where p_g and
p_data overlap although D* (thin line) is far from 1/2 wherever they differ, so D no longer pushes
G. A fresh D trained alone against the same G does separate them, and tests/test_theory.py checks
Proposition 1 at this scale, so this is a property of the simultaneous GAN dynamics here, not a
bug in D. Algorithm 1 with k = 5 D steps per G step, closer to the figure's story:

  python launch.py --config=experiments/toy1d.py --workdir=runs/toy1d_alg1 \
    --config.train.update_rule=alternating --config.train.k_steps=5

(the toy's dynamics are fragile either way: try other --config.seed values).

The data are drawn in code (config.data.toy_*, whose defaults are this problem's), so no TFDS
download is needed and `preprocessing` does not apply. The sample grids the training loop writes
are 1-pixel images: meaningless for 1-D data, but harmless.
"""

import ml_collections
import numpy as np

from gan_jax import config as config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The toy experiment; it takes no `arg`."""
  config_lib.parse_variant(arg, (), 'toy1d')
  config = config_lib.base_config()

  d = config.data
  d.name = 'toy1d'  # p_data = N(toy_mean, toy_std^2): the base's data.toy_* are Figure 1's.
  d.allow_download = False
  d.train_split, d.valid_split = 'train', 'valid'
  # preprocessing is ignored: synthetic data are used as drawn.

  m = config.model
  m.z_dim = 1
  m.g_hidden = (16, 16)  # prior: the base's uniform z, as in Figure 1.
  # Non-zero biases put the ReLU kinks at different z from the start: with zero biases
  # every kink of this 1-D G sits at z = 0 and it can only bend its map slowly.
  m.g_inits = ('uniform:1.0', 'uniform:1.0')
  m.g_bias = (0.5, 0.5)
  m.g_output_activation = 'linear'  # x is a real number, not a pixel in [0, 1].
  m.g_output_init = 'uniform:0.5'
  m.d_units = (16, 16)
  m.d_init_range = 0.1
  m.d_input_keep = m.d_hidden_keep = 1.0  # No dropout: D should approach D*(x) of Proposition 1.

  o = config.optim
  o.name = 'adam'
  o.learning_rate = 1e-3
  o.lr_decay_factor = 1.000288  # lr / 10 over the 8,000 steps: p_g settles instead of jittering.

  t = config.train
  t.batch_size = 1_000  # Large: D must see small differences between p_g and p_data.
  t.num_steps = 8_000
  t.log_every = t.checkpoint_every = 250
  t.sample_every = 8_000
  t.steps_per_call = 250
  t.keep_checkpoints = 100  # Keep them all: Figure 1 shows several points of training.

  config.eval.every = 0  # The Parzen estimate is for images; Figure 1 is the toy's evaluation.
  config.eval.parzen.sigmas = tuple(float(s) for s in np.logspace(-2, 0, 10))
  return config
