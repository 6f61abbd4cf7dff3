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
import numpy as np


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The fully connected CIFAR-10 experiment. `arg` is unused."""
  del arg
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict(dict(
      name='cifar10',
      data_dir='',
      manual_dir='',
      allow_download=True,
      fold=0,
      train_split='train[:40000]',
      valid_split='train[40000:]',
      test_split='test',
      preprocessing='gcn',
      gcn_scale=55.0,
  ))

  config.model = ml_collections.ConfigDict(dict(
      generator='mlp',
      z_dim=100,
      prior='gaussian',
      g_hidden=(8000, 8000),
      g_activations=('relu', 'sigmoid'),
      g_inits=('uniform:0.05', 'uniform:0.05'),
      g_bias=(0.0, 0.0),
      g_output_activation='linear',  # Contrast-normalised pixels have no fixed range.
      g_output_init='uniform:0.5',
      g_output_bias_from_marginals=False,  # For sigmoid outputs only (commented out in the yaml).
      discriminator='maxout_mlp',
      compute_dtype='float32',  # 'bfloat16' runs the matmuls in bf16 (params stay float32).
      d_units=(1600, 1600),
      d_pieces=5,
      d_init_range=0.005,
      d_input_keep=0.8,
      d_hidden_keep=0.5,
  ))

  config.optim = ml_collections.ConfigDict(dict(
      name='sgd_momentum',
      learning_rate=0.025,
      lr_decay_factor=1.000004,
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
      batch_size=100,
      num_steps=120_000,          # 300 epochs of 40,000 examples.
      k_steps=1,
      update_rule='simultaneous',
      generator_loss='non_saturating',
      log_every=500,
      checkpoint_every=5_000,
      sample_every=5_000,
      steps_per_call=50,
      keep_checkpoints=3,
      g_ema_decay=0.0,  # > 0 (e.g. 0.999): keep an EMA of G in training (eval.parzen.g_ema).
  ))

  config.eval = ml_collections.ConfigDict(dict(
      every=0,  # Off: the paper reports no CIFAR-10 likelihood (--mode=eval still works).
      parzen=ml_collections.ConfigDict(dict(
          num_samples=10_000,
          sigmas=tuple(float(s) for s in np.logspace(-1, 0, 10)),
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
