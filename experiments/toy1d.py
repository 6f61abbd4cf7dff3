r"""Figure 1's 1-D toy problem: G learns p_data = N(4, 0.5^2) from uniform noise.

Trained by the same code as the image experiments (a maxout D, an MLP G, simultaneous updates):

  python launch.py --config=experiments/toy1d.py --workdir=runs/toy1d

(about 30 s on 2 CPU cores), then Figure 1 (p_data, p_g, D(x) and the optimal D*(x) at the
initial state and 3 checkpoints spread over training, with the map x = G(z) underneath):

  python launch.py --config=experiments/toy1d.py --workdir=runs/toy1d --mode=figures

writes runs/toy1d/figures/figure1.png (`--step=N` ends the figure at checkpoint N). Every
checkpoint is kept (keep_checkpoints >= num_steps / checkpoint_every) so the figure can reach back.

What to expect (seed 0, measured 2026-11-28 with 20,000 samples of G): G matches the mean within
0.06 after a few hundred steps but not the shape: its standard deviation is 0.28 at step 1,500,
0.94 at 4,000 and 0.77 at 8,000 (p_data's: 0.5), and the Kolmogorov-Smirnov distance to p_data is
0.21, 0.20 and 0.13, not going to 0. The reason is visible in the figure: from step ~250 on, D(x)
stays within 0.01 of 1/2 on [2, 6] although D* (thin line) is far from 1/2 where p_g and p_data
differ, so D no longer pushes G. A fresh D trained alone against the same G separates them
(|D - 1/2| reaches 0.5 there), and tests/test_theory.py checks Proposition 1 at this scale, so
this is a property of the simultaneous GAN dynamics here, not a bug in D.

Algorithm 1 with k = 5 D steps per G step (`--config.train.update_rule=alternating
--config.train.k_steps=5`), closer to the figure's story, does better for seed 0 (KS 0.054, std
0.43 from step 4,000 on, D(x) near 1/2 as in the paper's panel (d)) but diverges for seed 1 (G's
mean at 27 by step 8,000): the toy's dynamics are fragile either way.

The data are drawn in code (config.data.toy_*), so no TFDS download is needed and
`preprocessing` does not apply. The sample grids the training loop writes are 1-pixel images:
meaningless for 1-D data, but harmless.
"""

import ml_collections
import numpy as np


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The toy experiment. `arg` is unused (kept for the `file.py:arg` convention)."""
  del arg
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict(dict(
      name='toy1d',
      data_dir='',
      manual_dir='',
      allow_download=False,
      fold=0,
      train_split='train',
      valid_split='valid',
      test_split='test',
      preprocessing='unit',  # Ignored: synthetic data are used as drawn.
      gcn_scale=55.0,
      toy_mean=4.0,          # p_data = N(toy_mean, toy_std^2).
      toy_std=0.5,
      toy_size=10_000,       # Examples per split.
      toy_seed=0,
  ))

  config.model = ml_collections.ConfigDict(dict(
      generator='mlp',
      z_dim=1,
      prior='uniform',       # U(-sqrt 3, sqrt 3), the uniform z of Figure 1.
      g_hidden=(16, 16),
      g_activations=('relu', 'relu'),
      # Non-zero biases put the ReLU kinks at different z from the start: with zero biases
      # every kink of this 1-D G sits at z = 0 and it can only bend its map slowly.
      g_inits=('uniform:1.0', 'uniform:1.0'),
      g_bias=(0.5, 0.5),
      g_output_activation='linear',   # x is a real number, not a pixel in [0, 1].
      g_output_init='uniform:0.5',
      g_output_bias_from_marginals=False,
      discriminator='maxout_mlp',
      d_units=(16, 16),
      d_pieces=5,
      d_init_range=0.1,
      d_input_keep=1.0,      # No dropout: D should approach D*(x) of Proposition 1.
      d_hidden_keep=1.0,
  ))

  config.optim = ml_collections.ConfigDict(dict(
      name='adam',
      learning_rate=1e-3,
      lr_decay_factor=1.000288,  # lr / 10 over the 8,000 steps: p_g settles instead of jittering.
      min_lr=1e-6,
      init_momentum=0.5,
      final_momentum=0.7,
      momentum_start_epoch=1,
      momentum_saturate_epoch=250,
      adam_b1=0.5,
      adam_b2=0.999,
      max_col_norm=0.0,
  ))

  config.train = ml_collections.ConfigDict(dict(
      batch_size=1_000,     # Large: D must see small differences between p_g and p_data.
      num_steps=8_000,
      k_steps=1,
      update_rule='simultaneous',
      generator_loss='non_saturating',
      log_every=250,
      checkpoint_every=250,
      sample_every=8_000,
      steps_per_call=250,
      keep_checkpoints=100,  # Keep them all: Figure 1 shows several points of training.
      g_ema_decay=0.0,  # > 0 (e.g. 0.999): keep an EMA of G in training (eval.parzen.g_ema).
  ))

  config.eval = ml_collections.ConfigDict(dict(
      every=0,  # The Parzen estimate is for images; Figure 1 is the toy's evaluation.
      parzen=ml_collections.ConfigDict(dict(
          num_samples=10_000,
          sigmas=tuple(float(s) for s in np.logspace(-2, 0, 10)),
          valid_size=1_000,
          train_num_samples=2_000,
          train_valid_size=1_000,
          batch_size=1_000,
          data_as_samples=False,
          # > 0: G's weights averaged over every checkpoint in [step - g_average, step]
          # (post-hoc Polyak averaging; not the paper's protocol). Keep enough checkpoints.
          g_average=0,
          g_ema=False,  # Score / draw the EMA of G (needs train.g_ema_decay > 0).
          seed=1,
      )),
  ))
  return config
