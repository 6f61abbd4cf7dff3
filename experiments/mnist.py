r"""MNIST, as goodfeli/adversarial's mnist.yaml ran it (Goodfellow et al., 2014, Table 1).

Train (resumes automatically when the workdir already holds a run):

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist

Evaluate with the paper's Parzen-window protocol (10,000 samples, sigma chosen on the first 1,000
validation images, mean log-likelihood on the 10,000 test images):

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist --mode=eval

Paper, Table 1: 225 +- 2 nats. Here (results/README.md): 223.1 +- 2.3 after 1,653,000 steps of
this config, seed 0 (213.6 at 500,000, 222.0 at 1,000,000, then flat at 222.9-223.2 from
1,300,000 as the learning rate decays); G's weights averaged over the run's checkpoints
(--config.eval.parzen.g_average=W) or an EMA of them (--config.train.g_ema_decay), neither the
paper's procedure, pass 225 early. The same estimator with 10,000 real training images as the
"samples" (an ideal memoriser) scores 243.6 +- 2.1 here (sigma 0.167).

Data: TFDS `mnist`; set TFDS_DATA_DIR (or --config.data.data_dir) to a prepared copy when offline.
Algorithm 1 instead of the original simultaneous update:
  --config.train.update_rule=alternating --config.train.k_steps=1
"""

import ml_collections
import numpy as np


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The MNIST experiment. `arg` is unused (kept for the `file.py:arg` convention)."""
  del arg
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict(dict(
      name='mnist',
      data_dir='',        # '' = TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets).
      manual_dir='',      # A folder of raw files for an offline prepare (e.g. the 4 IDX .gz).
      idx_dir='',         # A folder of the original IDX .gz files: read directly, no TensorFlow.
      allow_download=True,
      fold=0,
      train_split='train[:50000]',
      valid_split='train[50000:]',
      test_split='test',
      preprocessing='unit',  # Divide by 255; not binarised.
      gcn_scale=55.0,
  ))

  config.model = ml_collections.ConfigDict(dict(
      generator='mlp',
      z_dim=100,
      # U(-sqrt 3, sqrt 3), as mnist.yaml's Generator(noise='uniform'); another revision of that
      # file leaves the Generator's default N(0, 1) ('gaussian').
      prior='uniform',
      g_hidden=(1200, 1200),
      g_activations=('relu', 'relu'),
      g_inits=('uniform:0.05', 'uniform:0.05'),
      g_bias=(0.0, 0.0),
      g_output_activation='sigmoid',
      g_output_init='uniform:0.05',
      g_output_bias_from_marginals=True,
      discriminator='maxout_mlp',
      compute_dtype='float32',  # 'bfloat16' runs the matmuls in bf16 (params stay float32).
      d_units=(240, 240),
      d_pieces=5,
      d_init_range=0.005,
      d_input_keep=0.8,   # Pixels kept with p = 0.8 (scaled by 1.25).
      d_hidden_keep=0.5,  # Later layers' inputs kept with p = 0.5 (scaled by 2).
  ))

  config.optim = ml_collections.ConfigDict(dict(
      name='sgd_momentum',
      learning_rate=0.1,
      lr_decay_factor=1.000004,  # lr / 1.000004**t, floored at min_lr.
      min_lr=1e-6,
      init_momentum=0.5,
      final_momentum=0.7,
      momentum_start_epoch=1,
      momentum_saturate_epoch=250,
      adam_b1=0.5,
      adam_b2=0.999,
      max_col_norm=0.0,          # 0 = off.
  ))

  config.train = ml_collections.ConfigDict(dict(
      batch_size=100,
      num_steps=150_000,          # 300 epochs of 50,000 examples.
      k_steps=1,
      # 'update' is a ConfigDict method, so the field is named update_rule.
      update_rule='simultaneous',  # As the original configs; 'alternating' is Algorithm 1.
      generator_loss='non_saturating',
      log_every=500,
      checkpoint_every=5_000,
      sample_every=5_000,
      steps_per_call=50,          # Steps per compiled call (lax.scan); cuts dispatch overhead.
      keep_checkpoints=3,
      g_ema_decay=0.0,  # > 0 (e.g. 0.999): keep an EMA of G in training (eval.parzen.g_ema).
  ))

  config.eval = ml_collections.ConfigDict(dict(
      every=10_000,               # A cheap Parzen estimate on validation data (0 = off).
      parzen=ml_collections.ConfigDict(dict(
          num_samples=10_000,     # The paper's protocol (--mode=eval).
          sigmas=tuple(float(s) for s in np.logspace(-1, 0, 10)),
          valid_size=1_000,       # Sigma is chosen on the first 1,000 validation images.
          train_num_samples=2_000,  # The cheaper estimate during training ...
          train_valid_size=1_000,   # ... on this many validation images.
          batch_size=1_000,         # Generator batch when drawing samples.
          data_as_samples=False,  # Use training images as the samples (the memoriser reference).
          # > 0: G's weights averaged over every checkpoint in [step - g_average, step]
          # (post-hoc Polyak averaging; not the paper's protocol). Keep enough checkpoints.
          g_average=0,
          g_ema=False,  # Score / draw the EMA of G (needs train.g_ema_decay > 0).
          seed=1,
      )),
  ))
  return config
