r"""Mode collapse on 2-D Gaussian mixtures: `ring8` (default) and `grid25`.

The benchmarks of Metz et al. 2017 (Unrolled GANs) and Srivastava et al. 2017 (VEEGAN): 8
Gaussians of std 0.02 evenly on a circle of radius 2, or 25 of std 0.05 on a 5x5 grid of spacing
2 (config.data.mixture_*), drawn in code (no download). Trained by the same step as the image
experiments; either update rule:

  python launch.py --config=experiments/mog2d.py:ring8 --workdir=runs/ring8 \
    --config.num_seeds=5 --config.train.update_rule=simultaneous   # or alternating (default)

gan_jax.modes scores 2,500 samples of G (modes covered, high-quality fraction, KL to uniform).

What is chosen and why:
* G: Metz et al.'s (Appendix A): z of 256 N(0, 1) dimensions, 2 hidden layers of 128 ReLU, a
  linear output to 2-D. Their orthogonal init (gain 0.8) is not among layers.make_init's, so the
  weights are uniform at about Glorot's scale. G writes x = x_scale * (its output), so that its
  output layer works in units where the data span about [-1, 1] (Metz et al. scale D's input by
  1/4 for the same reason): x_scale = 2 (ring8's radius), 4 (grid25's half-width).
* D: the paper's model family, a maxout MLP, at the cited papers' width: 2 layers of 128 maxout
  units (5 pieces, as the paper's MNIST D), then the sigmoid unit. No dropout: dropping one of two
  coordinates destroys the point (there are no redundant pixels), and the cited papers' Ds have
  none. Its weights start at U(-0.05, 0.05) rather than MNIST's 0.005: the input has 2
  coordinates of size ~2, not 784 pixels. (The maxout D reads raw x; x_center / x_scale are used
  by discriminator='mlp' only.)
* Adam, lr 1e-4, b1 0.5, batch 512: Metz et al.'s optimiser and batch; constant lr.
* Algorithm 1 with k = 1 by default (the paper's experiments' k); 'simultaneous' (the original
  code's rule) by --config.train.update_rule=simultaneous.
* 10,000 steps (about a minute per seed on a CPU), 100,000 training points (each seen ~50
  times); every 1,000th step's checkpoint is kept, for coverage over training.

The sample PNGs the training loop writes hold 2 channels as grey + alpha: meaningless for 2-D
points, but harmless.
"""

import ml_collections

from gan_jax import config as config_lib

VARIANTS = ('ring8', 'grid25')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The 2-D mixture experiment; `ring8` (the default) or `grid25`."""
  variant = config_lib.parse_variant(arg, VARIANTS, 'mog2d') or 'ring8'
  config = config_lib.base_config()

  d = config.data
  d.name = variant  # Std, radius, spacing: the base's data.mixture_* are the papers'.
  d.allow_download = False
  d.train_split, d.valid_split = 'train', 'valid'
  d.toy_size = 100_000  # Points per split.
  # preprocessing is ignored: synthetic data are used as drawn.

  m = config.model
  m.z_dim = 256
  m.prior = 'gaussian'
  m.g_hidden = (128, 128)
  m.g_activations = ('relu', 'relu')
  m.g_inits = ('uniform:0.1', 'uniform:0.15')  # ~ Glorot's limit sqrt(6 / (fan_in + fan_out)).
  m.g_bias = (0.0, 0.0)
  m.g_output_activation = 'linear'  # x is a point of R^2, not a pixel in [0, 1].
  m.g_output_init = 'uniform:0.15'
  m.x_center = 0.0
  m.x_scale = 2.0 if variant == 'ring8' else 4.0
  m.discriminator = 'maxout_mlp'
  m.d_units = (128, 128)
  m.d_pieces = 5
  m.d_init_range = 0.05
  m.d_input_keep = 1.0
  m.d_hidden_keep = 1.0

  o = config.optim
  o.name = 'adam'  # b1 = 0.5, b2 = 0.999 (the base's).
  o.learning_rate = 1e-4
  o.lr_decay_factor = 1.0
  o.min_lr = 1e-4

  t = config.train
  t.update_rule = 'alternating'  # Algorithm 1 ...
  t.k_steps = 1                  # ... with k = 1.
  t.batch_size = 512
  t.num_steps = 10_000
  t.steps_per_call = 100
  t.checkpoint_every = 1_000
  t.keep_checkpoints = t.num_steps // t.checkpoint_every + 1  # Keep them all: coverage over time.
  t.log_every = 1_000
  t.sample_every = t.num_steps

  config.eval.every = 0  # The Parzen estimate is for images; gan_jax.modes is this task's.
  return config
