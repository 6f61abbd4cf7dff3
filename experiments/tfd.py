r"""TFD, as goodfeli/adversarial's tfd_pretrain/ configs ran it (Goodfellow et al., 2014, Table 1).

The authors' repository holds two TFD configs, run one after the other; the paper's TFD number most
likely came from this recipe:

1. `pretrain` (pretrain.yaml): G z (100-d Gaussian) -> ReLU 8000 -> sigmoid 8000 (bias -2) ->
   sigmoid 2304 (sparse init, bias from the pixel marginals); D maxout 1200x5 -> maxout 1200x5 ->
   sigmoid; max column norm 1.9365 on every weight matrix; SGD lr 0.05 with MNIST's momentum and
   decay schedules; 50 epochs on the unlabeled faces.
2. `train` (train.yaml): a new ReLU 8000 -> sigmoid 100 (bias -2) in front of the pretrained G,
   whose three layers now read that 100-d code; a fresh D; 22 epochs.

Train both stages; each is a complete run in <workdir>/<stage> that resumes on its own, and a
finished stage is skipped:

  python launch.py --config=experiments/tfd.py --workdir=runs/tfd

One stage at a time (same --workdir; `train` starts from the final G in runs/tfd/pretrain):

  python launch.py --config=experiments/tfd.py:stage=pretrain --workdir=runs/tfd
  python launch.py --config=experiments/tfd.py:stage=train --workdir=runs/tfd

Evaluate with the paper's Parzen-window protocol (10,000 samples of the final G, sigma chosen on
the whole fold-0 `valid` split, mean log-likelihood of fold-0 `test`, d = 2304):

  python launch.py --config=experiments/tfd.py --workdir=runs/tfd --mode=eval

Paper, Table 1: 2057 +- 26 nats.

Data: TFDS `tfd/48x48_fold0` (gan_jax/datasets/tfd.py), built from the authors' TFD_48x48.mat,
which TFD's authors distribute on request only. Put it in <TFDS data dir>/downloads/manual/ (or
pass --config.data.manual_dir); without it the launch stops before training with one message
saying where the file must go. Images are divided by 255 (pylearn2's scale=True).

Per-stage fields live in config.stages.<stage> (e.g. --config.stages.pretrain.train.num_steps=10);
the shared ones (--config.model.g_hidden, --config.optim.learning_rate, ...) apply to both stages.
Fields not set below keep the base config's value (gan_jax/config.py, which explains each field).
"""

import ml_collections

from gan_jax import config as config_lib

# Steps per epoch: the unlabeled faces (fold-independent), 98,058 = 102,236 - 4,178 labelled, in
# minibatches of 100 (the last partial one dropped). Check the 'Train split unlabeled: N images'
# log line; with another N, set the stages' num_steps to epochs * (N // 100).
UNLABELED_IMAGES = 98_058
BATCH_SIZE = 100
PRETRAIN_EPOCHS, TRAIN_EPOCHS = 50, 22
STAGES = ('pretrain', 'train')


def _parse(arg: str | None) -> str:
  if not arg:
    return ''
  key, _, value = arg.partition('=')
  if key != 'stage' or value not in STAGES:
    raise ValueError(f"Unknown config argument '{arg}': use experiments/tfd.py:stage=pretrain, "
                     ':stage=train, or no argument for both stages.')
  return value


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The two-stage TFD experiment; `arg` 'stage=<name>' runs one stage only."""
  config = config_lib.base_config()
  config.stage = _parse(arg)  # '' = every stage, in stage_order.
  config.stage_order = STAGES
  steps_per_epoch = UNLABELED_IMAGES // BATCH_SIZE
  config.stages = ml_collections.ConfigDict(dict(
      pretrain=dict(train=dict(num_steps=PRETRAIN_EPOCHS * steps_per_epoch)),
      train=dict(
          train=dict(num_steps=TRAIN_EPOCHS * steps_per_epoch),
          model=dict(
              # z -> ReLU 8000 -> sigmoid 100 -> the pretrained G (layers h0, h1, out).
              g_pre_hidden=(8000, 100),
              g_pre_activations=('relu', 'sigmoid'),
              g_pre_inits=('uniform:0.05', 'uniform:0.05'),
              g_pre_bias=(0.0, -2.0),
              g_init_from='pretrain',  # G's h0, h1, out start from that stage's final G.
          )),
  ))

  d = config.data
  d.name = 'tfd'
  d.train_split, d.valid_split = 'unlabeled', 'valid'

  m = config.model
  m.prior = 'gaussian'  # The original Generator's default noise.
  m.g_hidden = (8000, 8000)
  m.g_activations = ('relu', 'sigmoid')
  m.g_bias = (0.0, -2.0)
  m.g_output_init = 'sparse:100'
  m.g_output_bias_from_marginals = True
  # The shared g_pre_* and g_init_from stay unset (the base's () and ''): set per stage above.
  m.d_units = (1200, 1200)  # Dropout as AdversaryCost2 in both yaml files: the base's 0.8 / 0.5.

  config.optim.learning_rate = 0.05
  config.optim.max_col_norm = 1.9365  # On every weight matrix of G and D, after every update.

  config.train.batch_size = BATCH_SIZE
  config.train.num_steps = 0  # Set per stage: config.stages.<stage>.train.num_steps.

  # All of fold 0's valid split chooses sigma, as parzen_ll.py did for TFD.
  config.eval.parzen.valid_size = 1_000_000
  return config
