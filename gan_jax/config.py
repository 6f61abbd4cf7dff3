"""The config schema: every field any experiment has, with its default, in one place.

`base_config()` is the whole schema. Its values are the MNIST recipe of goodfeli/adversarial's
mnist.yaml (the paper's main experiment), except where a field was added after runs were first
written: there the default is the value that behaves as the field's absence did, so that a run's
config.json from before the field existed describes the same run once `upgrade`d. Each
experiments/<name>.py starts from `base_config()` (locked: a misspelt field is an error) and
overrides only what differs.

`upgrade(d)` fills a config.json's dict with every field it lacks (a run written before the field
existed); `from_json_dict(d)` turns it into a locked ConfigDict.

A leaf module: nothing from gan_jax, so experiment files stay cheap to read.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import ml_collections
import numpy as np

# Top-level sections whose keys are names, not schema fields (e.g. stage names): never upgraded.
FREE_FORM = ('stages',)

# The fields config.sweep may vary: numbers that keep every shape, read by the train step from
# each member's own values (gan_jax.train_step.Hypers).
SWEEPABLE = ('optim.learning_rate', 'optim.min_lr', 'optim.lr_decay_factor',
             'optim.init_momentum', 'optim.final_momentum', 'optim.adam_b1', 'optim.adam_b2',
             'train.g_ema_decay')


def base_config() -> ml_collections.ConfigDict:
  """The whole schema with its defaults (locked): the MNIST recipe, added fields off."""
  config = ml_collections.ConfigDict()
  # 'gan'; experiments/mnist_classifier.py's config says 'classifier' (its own schema: the
  # classifier whose features gan_jax's sample-quality metrics use).
  config.task = 'gan'
  config.seed = 0
  # > 1: seeds seed, seed + 1, ..., seed + num_seeds - 1 trained as independent GANs in one
  # compiled program (every leaf of the state gains a leading seed axis); each seed's outputs in
  # <workdir>/seed_<s>/, the stacked checkpoints once in <workdir>/checkpoints.
  config.num_seeds = 1
  # A hyper-parameter sweep in the same program: config.num_seeds seeds for each value in `grid`
  # of `field` (one of SWEEPABLE), all trained at once, paired (the same seeds at every value).
  # Each member's outputs in <workdir>/<field>=<value>/seed_<s>/. field '' = no sweep.
  config.sweep = ml_collections.ConfigDict(dict(field='', grid=()))

  # Multi-stage experiments (gan_jax/stages.py, e.g. experiments/tfd.py): one run per stage in
  # <workdir>/<stage>. `stages.<name>` holds that stage's overrides as nested sections; an empty
  # `stages` is an ordinary single run.
  config.stages = ml_collections.ConfigDict()
  config.stage_order = ()  # The stages' names, in the order they run.
  config.stage = ''        # One stage to run; '' = every stage, in stage_order.

  config.data = ml_collections.ConfigDict(dict(
      # gan_jax.data.DATASETS: mnist, cifar10, tfd, tfd96, toy1d, ring8, grid25, stacked_mnist.
      name='mnist',
      data_dir='',        # '' = TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets).
      manual_dir='',      # A folder of raw files for an offline prepare (e.g. the 4 IDX .gz).
      idx_dir='',         # A folder of MNIST's original IDX .gz files: read directly, no TFDS.
      allow_download=True,  # False: stop with a message rather than download the data.
      fold=0,             # TFD's fold (its tfd/48x48_fold<N> splits).
      train_split='train[:50000]',  # TFDS split syntax.
      valid_split='train[50000:]',
      test_split='test',
      preprocessing='unit',  # 'unit': divide by 255 (not binarised); 'gcn': global contrast norm.
      gcn_scale=55.0,     # 'gcn' scales each image to this L2 norm (pylearn2's gcn=55.).
      # The synthetic 1-D dataset 'toy1d' (Figure 1): p_data = N(toy_mean, toy_std^2), drawn in
      # code with toy_seed, toy_size examples per split. Unused by the image datasets.
      toy_mean=4.0,
      toy_std=0.5,
      toy_size=10_000,
      toy_seed=0,
      # The 2-D Gaussian mixtures 'ring8' and 'grid25' (experiments/mog2d.py), drawn in code with
      # toy_seed, toy_size examples per split: the components' std (0 = the mixture's default,
      # 0.02 for ring8, 0.05 for grid25), ring8's radius, grid25's spacing.
      mixture_std=0.0,
      mixture_radius=2.0,
      mixture_spacing=2.0,
      # Stacked MNIST 'stacked_mnist' (experiments/stacked_mnist.py): each split's examples stack
      # three digits drawn from MNIST's split of that name with stacked_seed; stacked_size
      # examples per split (0 = as many as that MNIST split holds).
      stacked_seed=0,
      stacked_size=0,
  ))

  config.model = ml_collections.ConfigDict(dict(
      generator='mlp',    # 'mlp', or 'deconv' (the MLP then a transposed convolution).
      z_dim=100,
      # 'uniform' is U(-sqrt 3, sqrt 3), as mnist.yaml's Generator(noise='uniform'); 'gaussian'
      # is N(0, 1), the original Generator's default (another revision of mnist.yaml leaves it).
      prior='uniform',
      g_hidden=(1200, 1200),              # G's hidden widths, ...
      g_activations=('relu', 'relu'),     # ... their activations, ...
      g_inits=('uniform:0.05', 'uniform:0.05'),  # ... weight inits (U(-0.05, 0.05)), ...
      g_bias=(0.0, 0.0),                  # ... and initial biases.
      g_output_activation='sigmoid',      # Pixels in [0, 1]; 'linear' for real-valued data.
      g_output_init='uniform:0.05',
      # True: G's output bias starts at logit(mean pixel) of the training set (pylearn2's
      # init_bias_target_marginals; sigmoid outputs only).
      g_output_bias_from_marginals=False,
      # Layers in front of G's h0 (TFD's second stage): widths, activations, inits, biases.
      g_pre_hidden=(),
      g_pre_activations=(),
      g_pre_inits=(),
      g_pre_bias=(),
      # A finished run (a sibling workdir's name, or a path) whose final G initialises this G's
      # layers of the same name; '' = a fresh G.
      g_init_from='',
      # generator='deconv' only (cifar10_convolutional.yaml's values): g_hidden's last layer
      # reshaped to (H, W, C), then a transposed convolution to the image.
      g_reshape=(10, 10, 80),
      g_deconv_kernel=(5, 5),
      g_deconv_stride=(3, 3),
      g_deconv_pad=0,
      g_deconv_tied_bias=False,  # False: one bias per channel and position.
      # 'maxout_mlp', 'maxout_conv' (maxout conv layers first), or 'mlp' (plain layers of
      # d_activation on a standardised input, no dropout: the 1-D toy's).
      discriminator='maxout_mlp',
      compute_dtype='float32',  # 'bfloat16' runs the matmuls in bf16 (params stay float32).
      # discriminator='maxout_conv' only (cifar10_convolutional.yaml's values): per conv layer,
      # output channels, kernel size, zero padding, max-pool size and stride; pieces per unit.
      d_conv_channels=(32, 32, 192),
      d_conv_pieces=2,
      d_conv_kernels=(8, 8, 5),
      d_conv_pads=(4, 3, 3),
      d_conv_pools=(4, 4, 2),
      d_conv_pool_strides=(2, 2, 2),
      d_units=(240, 240),  # D's maxout layers (after any conv layers): units ...
      d_pieces=5,          # ... and pieces per unit; then one sigmoid unit.
      d_init_range=0.005,  # D's weights U(-0.005, 0.005).
      d_input_keep=0.8,    # Dropout: pixels kept with p = 0.8 (scaled by 1.25) ...
      d_hidden_keep=0.5,   # ... later layers' inputs kept with p = 0.5 (scaled by 2).
      d_activation='relu',  # discriminator='mlp' only: its d_units layers' activation.
      # The units the networks work in: D reads (x - x_center) / x_scale, G writes x_center +
      # x_scale * (its output layer), as data standardised for both (the 1-D toy: p_data's mean
      # and sd). Used by generator='mlp' and discriminator='mlp'; 0 and 1 = off.
      x_center=0.0,
      x_scale=1.0,
  ))

  config.optim = ml_collections.ConfigDict(dict(
      name='sgd_momentum',       # 'sgd_momentum' (the original) or 'adam'.
      learning_rate=0.1,
      lr_decay_factor=1.000004,  # lr / lr_decay_factor**t, floored at min_lr.
      min_lr=1e-6,
      init_momentum=0.5,         # Momentum rises linearly from init_momentum ...
      final_momentum=0.7,        # ... to final_momentum ...
      momentum_start_epoch=1,    # ... between these epochs.
      momentum_saturate_epoch=250,
      adam_b1=0.5,               # optim.name='adam' only.
      adam_b2=0.999,
      max_col_norm=0.0,          # Max L2 norm of each weight column after every update; 0 = off.
  ))

  config.train = ml_collections.ConfigDict(dict(
      batch_size=100,
      num_steps=1_650_000,        # Where the MNIST run's Parzen estimate stopped rising.
      k_steps=1,                  # D steps per G step ('alternating' only).
      # 'update' is a ConfigDict method, so the field is named update_rule.
      update_rule='simultaneous',  # As the original configs; 'alternating' is Algorithm 1.
      generator_loss='non_saturating',  # -log D(G(z)); 'minimax' is log(1 - D(G(z))).
      log_every=500,
      checkpoint_every=5_000,
      sample_every=5_000,
      steps_per_call=50,          # Steps per compiled call (lax.scan); cuts dispatch overhead.
      keep_checkpoints=3,
      g_ema_decay=0.0,  # > 0 (e.g. 0.999): keep an EMA of G in training (eval.parzen.g_ema).
      # Several members (num_seeds, sweep): 'vmap' batches their steps (wider dots, for
      # accelerators), 'map' runs them one after another in the compiled call (a CPU's cores are
      # full with one); 'auto' = 'map' on CPU, 'vmap' elsewhere. The same update either way.
      member_axis='auto',
  ))

  config.eval = ml_collections.ConfigDict(dict(
      # What --mode=eval runs: 'parzen' (the paper's protocol), 'ais' (annealed importance
      # sampling with BDMC bounds, Wu et al. 2017) or 'sample_quality' (classifier-feature FID,
      # KID, precision/recall/density/coverage, classifier score, memorisation); 'modes' (modes
      # covered of a 2-D mixture, experiments/mog2d.py, or of Stacked MNIST).
      method='parzen',
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
      ais=ml_collections.ConfigDict(dict(
          num_test=1_000,         # The first num_test test images are scored.
          num_chains=16,          # Wu et al.'s setting: 16 chains, ...
          num_temps=1_000,        # ... temperatures on a sigmoid schedule (they used thousands), ...
          leapfrog_steps=10,      # ... and 10 leapfrog steps per HMC move.
          obs_std=0.0,            # p(x|z) = N(G(z), obs_std^2 I); 0 = chosen from obs_stds ...
          obs_stds=(0.05, 0.1, 0.15, 0.2, 0.3),  # MNIST G: best near 0.2 (results/README.md).
          valid_size=100,         # ... by AIS on the first valid_size validation images.
          bdmc_examples=100,      # Images simulated from G for the BDMC bounds (0 = skip).
          batch_size=100,         # Images per AIS batch (each with num_chains chains).
          seed=2,
      )),
      sample_quality=ml_collections.ConfigDict(dict(
          num_samples=10_000,     # G's samples, scored against the whole test split.
          classifier='mnist',     # The shipped classifier whose features are used.
          kid_subsets=100,        # KID: mean +- sd of the unbiased MMD^2 over this many ...
          kid_subset_size=1_000,  # ... subsets of this size.
          nearest_k=5,            # k of precision / recall / density / coverage (Naeem et al.).
          # 'train': 10,000 training images as the samples (the memoriser); 'valid': validation
          # images (held-out real data: the floor); '' = G's samples.
          data_as_samples='',
          in_training=False,      # True: a cheap FID / KID every eval.every steps in training ...
          train_num_samples=2_000,  # ... from this many samples against as many test images.
          batch_size=1_000,
          seed=1,
      )),
      modes=ml_collections.ConfigDict(dict(
          # G's samples scored; 0 = the dataset's default, as VEEGAN and PacGAN: 2,500 for a
          # mixture, 26,000 for Stacked MNIST.
          num_samples=0,
          # Samples within 3 std of a centre that cover its mode (mixtures); 1 as VEEGAN and
          # PacGAN count, gan_jax.modes.
          min_count=1,
          # 'train' or 'valid': that split's data scored as the samples (the reference row);
          # '' = G's samples.
          data_as_samples='',
          seed=1,
          every=0,  # > 0: the same score every this many training steps, logged (0 = off).
      )),
  ))
  config.lock()
  return config


def _json(value: Any) -> Any:
  """`value` as json.load would return it (tuples as lists)."""
  return json.loads(json.dumps(value, default=list))


def _fill(d: dict, defaults: dict) -> None:
  for key, default in defaults.items():
    if key not in d:
      d[key] = copy.deepcopy(default)
    elif isinstance(default, dict) and isinstance(d[key], dict) and key not in FREE_FORM:
      _fill(d[key], default)


def upgrade(config_dict: dict) -> dict:
  """A config.json's dict with every field it lacks filled from `base_config()`.

  A field added to the schema after a run was written gets its default, which behaves as the
  field's absence did. Fields and values present are kept as they are (also ones the schema no
  longer has), and nothing inside `stages` is touched: its keys are stage names. The input is not
  modified; the added values are JSON-like (lists, not tuples).
  """
  out = copy.deepcopy(config_dict)
  _fill(out, _json(base_config().to_dict()))
  return out


def _tuples(x: Any) -> Any:
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def from_json_dict(config_dict: dict) -> ml_collections.ConfigDict:
  """A run's config (a config.json's dict) upgraded to the full schema, lists as tuples, locked."""
  config = ml_collections.ConfigDict(_tuples(upgrade(config_dict)))
  config.lock()
  return config


def parse_variant(arg: str | None, variants: tuple[str, ...], experiment: str) -> str:
  """The variant named by `arg` of experiments/<experiment>.py:<arg> ('' for none).

  Raises:
    ValueError: `arg` is not one of `variants`, naming the valid ones.
  """
  if not arg:
    return ''
  if arg not in variants:
    valid = ', '.join(f'experiments/{experiment}.py:{v}' for v in variants)
    raise ValueError(f"Unknown config argument '{arg}': use "
                     f"{valid + ', or ' if valid else ''}experiments/{experiment}.py (no "
                     'argument).')
  return arg
