r"""Mode collapse on 2-D Gaussian mixtures: `ring8` (default) and `grid25`.

The benchmarks of Metz et al. 2017 (Unrolled GANs), Srivastava et al. 2017 (VEEGAN) and Lin et
al. 2018 (PacGAN): 8 Gaussians of std 0.02 evenly on a circle of radius 2 (VEEGAN's and PacGAN's
code use radius 1 and std 0.01: the same ring at half the scale), or 25 of std 0.05 on a 5x5 grid
of spacing 2 (as PacGAN's code) (config.data.mixture_*), drawn in code (no download). Trained by
the same step as the image experiments; either update rule:

  python launch.py --config=experiments/mog2d.py:ring8 --workdir=runs/ring8 \
    --config.num_seeds=5 --config.train.update_rule=simultaneous   # or alternating (default)

gan_jax.modes scores 2,500 samples of G (modes covered, high-quality fraction, KL to uniform).

What is chosen and why:
* G: as Metz et al.'s 2-D demo (github.com/poolio/unrolled_gan): z of 256 N(0, 1) dimensions,
  2 hidden layers of 128 units (ReLU, as the paper's G; the demo's are tanh), a linear output to
  2-D. The weights are uniform at about Glorot's scale (the demo's orthogonal init is not among
  layers.make_init's). G writes x = x_scale * (its output), so that its output layer works in
  units where the data span about [-1, 1]: x_scale = 2 (ring8's radius), 4 (grid25's half-width).
* D: the paper's model family, a maxout MLP: 2 layers of 128 maxout units (5 pieces, as the
  paper's MNIST D; PacGAN's 2-D D is 3 maxout layers of 200 units x 5 pieces), then the sigmoid
  unit. No dropout: dropping one of two coordinates destroys the point (there are no redundant
  pixels), and the cited papers' 2-D runs use none. Its weights start at U(-0.05, 0.05) rather
  than MNIST's 0.005: the input has 2 coordinates of size ~2, not 784 pixels. (The maxout D reads
  raw x; x_center / x_scale are used by discriminator='mlp' only.)
* Adam (b1 0.5, as Metz et al.'s demo), batch 128 (PacGAN's 2-D runs use 100), lr 1e-3 decaying
  exponentially to 1e-4 at step 15,000 and held there. A maxout D's units start as functions of
  x through the origin (zero biases); to fit modes 2-4 away it must move its biases by about
  that much, which Adam at lr 1e-4 (about 1e-4 per step) takes tens of thousands of steps to do:
  at lr 1e-4 G was still undertrained at 10,000 steps. At 1e-3 G reaches the modes within a few
  thousand steps; the decay then lets it settle on them, so that the high-quality fraction at the
  end is not blurred by the large late steps.
* Algorithm 1 with k = 1 by default (the paper's experiments' k); 'simultaneous' (the original
  code's rule) by --config.train.update_rule=simultaneous.
* 20,000 steps (PacGAN trains 400 epochs, i.e. 400,000 steps of 100; this is what a CPU affords:
  a few minutes for 5 seeds batched on an idle 2-core machine), 100,000 training points (each
  seen ~26 times). Every 1,000th step's checkpoint is kept, for coverage over training
  (--mode=eval --step=N, and --mode=figures' modes.png), and the modes score is logged at each
  (config.eval.modes.every).
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
  o.learning_rate = 1e-3
  o.min_lr = 1e-4
  o.lr_decay_factor = 10.0 ** (1 / 15_000)  # lr / 10 after 15,000 updates, then min_lr.

  t = config.train
  t.update_rule = 'alternating'  # Algorithm 1 ...
  t.k_steps = 1                  # ... with k = 1.
  t.batch_size = 128
  t.num_steps = 20_000
  t.steps_per_call = 100
  t.checkpoint_every = 1_000
  t.keep_checkpoints = t.num_steps // t.checkpoint_every + 1  # Keep them all: coverage over time.
  t.log_every = 1_000
  t.sample_every = t.num_steps

  config.eval.every = 0  # The Parzen estimate is for images; gan_jax.modes is this task's.
  config.eval.modes.every = t.checkpoint_every  # Modes covered, logged at every checkpoint.
  return config
