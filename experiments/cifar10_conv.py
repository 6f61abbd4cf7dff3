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
import numpy as np


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The convolutional CIFAR-10 experiment. `arg` is unused."""
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
      generator='deconv',
      z_dim=100,
      prior='gaussian',
      g_hidden=(8000, 8000),
      g_activations=('relu', 'sigmoid'),
      g_inits=('uniform:0.05', 'uniform:0.05'),
      g_bias=(0.0, 0.0),
      g_reshape=(10, 10, 80),      # (H, W, C) of the feature map; 10 * 10 * 80 = 8000.
      g_deconv_kernel=(5, 5),
      g_deconv_stride=(3, 3),
      g_deconv_pad=0,
      g_deconv_tied_bias=False,    # One bias per channel and position (the yaml's tied_b: 0).
      g_output_activation='linear',
      g_output_init='uniform:0.05',
      g_output_bias_from_marginals=False,
      discriminator='maxout_conv',
      d_conv_channels=(32, 32, 192),
      d_conv_pieces=2,
      d_conv_kernels=(8, 8, 5),
      d_conv_pads=(4, 3, 3),
      d_conv_pools=(4, 4, 2),
      d_conv_pool_strides=(2, 2, 2),
      d_units=(500,),
      d_pieces=5,
      d_init_range=0.005,
      d_input_keep=0.8,
      d_hidden_keep=0.5,
  ))

  config.optim = ml_collections.ConfigDict(dict(
      name='sgd_momentum',
      learning_rate=0.004,
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
      batch_size=128,
      num_steps=93_600,           # 300 epochs of 312 minibatches of 128.
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
