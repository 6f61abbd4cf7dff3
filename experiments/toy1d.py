r"""Figure 1's 1-D toy problem: G learns p_data = N(4, 0.5^2) from a uniform z by Algorithm 1.

Trained by the same train step as the image experiments, Algorithm 1 with k = 5 D steps per G
step, on a CPU in a couple of minutes (5 seeds in one program):

  python launch.py --config=experiments/toy1d.py --workdir=runs/toy1d --config.num_seeds=5

then Figure 1 by the paper's procedure, its numbers and an animation of the whole run, per seed:

  python launch.py --config=experiments/toy1d.py --workdir=runs/toy1d --config.num_seeds=5 \
    --mode=figures

writes runs/toy1d/seed_<s>/figures/figure1.{png,json,gif} (gan_jax/toy_figures.py says what the
panels and numbers are; `--step=N` ends the figure at checkpoint N). Every checkpoint is kept for
the animation and for panel (a). `experiments/toy1d.py:short` is the same problem in 1,000
steps (the tests train it).

What is chosen and why (measurements: results/README.md):
* G: a 1-16-16-1 MLP with tanh units. It writes x in p_data's units: x = 4 + 0.5 * (its output
  layer) (config.model.x_center, x_scale), as data standardised for the networks; the original
  MNIST G likewise started its output bias at the data's mean pixel. Without it G first has to
  travel from 0 to 4 and folds its map on the way (a non-monotone x = G(z), spikes in p_g).
* D: a plain 1-32-32-1 ReLU MLP (discriminator='mlp', no dropout) reading (x - 4) / 0.5. A
  maxout or ReLU D on raw x with zero biases is linear in x on x > 0 (all its kinks sit at 0), so
  it cannot tell a narrow or wide p_g from p_data until its biases have grown: D(x) then sits
  near 1/2 while D* does not. Standardised, D follows D* closely (panel (b)).
* Adam (b1 0.5), lr 2e-3 decayed by 1.000768 per update to a floor of 2e-4: a constant lr leaves
  G jittering around p_data (KS 0.02-0.06 from snapshot to snapshot). D's lr counts its k = 5
  updates per step and so reaches the floor 5 times sooner (step 600) than G's (step 3,000);
  with k = 5 D stays ahead of G throughout.
* Batch 512, 6,000 steps.

The data are drawn in code (config.data.toy_*, whose defaults are this problem's), so no TFDS
download is needed and `preprocessing` does not apply. The training loop writes no sample grids
for point data: the figures draw them.
"""

import ml_collections
import numpy as np

from gan_jax import config as config_lib

VARIANTS = ('short',)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The toy experiment; `short` is a 1,000-step run of it (batch 256, a faster decay)."""
  variant = config_lib.parse_variant(arg, VARIANTS, 'toy1d')
  config = config_lib.base_config()

  d = config.data
  d.name = 'toy1d'  # p_data = N(toy_mean, toy_std^2): the base's data.toy_* are Figure 1's.
  d.allow_download = False
  d.train_split, d.valid_split = 'train', 'valid'
  # preprocessing is ignored: synthetic data are used as drawn.

  m = config.model
  m.z_dim = 1  # prior: the base's uniform z, as in Figure 1.
  m.g_hidden = (16, 16)
  m.g_activations = ('tanh', 'tanh')
  m.g_inits = ('uniform:1.0', 'uniform:1.0')
  m.g_bias = (0.5, 0.5)
  m.g_output_activation = 'linear'  # x is a real number, not a pixel in [0, 1].
  m.g_output_init = 'uniform:0.5'
  m.discriminator = 'mlp'
  m.d_units = (32, 32)
  m.d_activation = 'relu'
  m.x_center, m.x_scale = d.toy_mean, d.toy_std  # The networks work in p_data's sd units.

  o = config.optim
  o.name = 'adam'  # b1 = 0.5, b2 = 0.999 (the base's).
  o.learning_rate = 2e-3
  o.lr_decay_factor = 1.000768  # Per update: G's lr / 10 by step 3,000, D's by step 600 ...
  o.min_lr = 2e-4               # ... and both held there.

  t = config.train
  t.update_rule = 'alternating'  # Algorithm 1 ...
  t.k_steps = 5                  # ... with k = 5 D steps per G step.
  t.batch_size = 512
  t.num_steps = 6_000
  t.steps_per_call = 50
  t.checkpoint_every = 50  # The animation's frames, and the candidates for panel (a).
  t.log_every = 250
  if variant == 'short':
    t.batch_size = 256
    t.num_steps = 1_000
    o.lr_decay_factor = 1.003075  # G's lr / 10 by step 750.
  t.sample_every = t.num_steps
  t.keep_checkpoints = t.num_steps // t.checkpoint_every + 1  # Keep them all.

  config.eval.every = 0  # The Parzen estimate is for images; Figure 1 is the toy's evaluation.
  config.eval.parzen.sigmas = tuple(float(s) for s in np.logspace(-2, 0, 10))
  return config
