"""Checks a config before anything heavy starts, so a typo costs a second, not a run."""

from __future__ import annotations

import jax

from gan_jax import classifier
from gan_jax import config as config_lib
from gan_jax import data
from gan_jax import layers
from gan_jax import losses
from gan_jax import models
from gan_jax import optim
from gan_jax import train_step
from gan_jax import workdir as workdir_lib
from gan_jax.errors import ConfigError


def _choice(value, allowed, field):
  if value not in allowed:
    raise ConfigError(f"Unknown {field} '{value}': choose one of {sorted(allowed)} "
                      f"(--config.{field}=...).")


def _positive(value, field, integer=False):
  if integer and (not isinstance(value, int) or isinstance(value, bool)):
    raise ConfigError(f'config.{field} must be an integer, got {value!r}.')
  if not value > 0:
    raise ConfigError(f'config.{field} must be positive, got {value!r}.')


def _same_lengths(m, fields):
  lengths = [len(m[f]) for f in fields]
  if len(set(lengths)) > 1:
    raise ConfigError(f'config.model.{", ".join(fields)} must have the same length, got '
                      f'{lengths}.')


def _check_model_extras(m) -> None:
  """The optional G prefix layers (TFD stage 2) and the convolutional G and D (CIFAR-10)."""
  _same_lengths(m, ('g_pre_hidden', 'g_pre_activations', 'g_pre_inits', 'g_pre_bias'))
  for act in m.g_pre_activations:
    _choice(act, layers.ACTIVATIONS, 'model.g_pre_activations')
  for spec in m.g_pre_inits:
    try:
      layers.make_init(spec)
    except ValueError as e:
      raise ConfigError(str(e)) from None
  if m.g_output_bias_from_marginals and m.g_output_activation != 'sigmoid':
    raise ConfigError('config.model.g_output_bias_from_marginals sets logit(mean pixel) and needs '
                      f"g_output_activation='sigmoid', got '{m.g_output_activation}': set it to "
                      'False.')
  if m.generator == 'deconv':
    if not m.g_output_init.startswith('uniform:'):
      raise ConfigError("config.model.g_output_init of the 'deconv' generator must be "
                        f"'uniform:<scale>', got '{m.g_output_init}'.")
    if m.g_output_bias_from_marginals and m.g_deconv_tied_bias:
      raise ConfigError('config.model.g_output_bias_from_marginals needs an untied bias: set '
                        'g_deconv_tied_bias=False.')
  if m.discriminator == 'maxout_conv':
    fields = ('d_conv_channels', 'd_conv_kernels', 'd_conv_pads', 'd_conv_pools',
              'd_conv_pool_strides')
    _same_lengths(m, fields)
    for field in fields:
      for v in m[field]:
        if field == 'd_conv_pads':
          _positive(v + 1, f'model.{field}[i] + 1', integer=True)  # Pads may be 0.
        else:
          _positive(v, f'model.{field}[i]', integer=True)
    _positive(m.d_conv_pieces, 'model.d_conv_pieces', integer=True)


def _check_seeds(config) -> None:
  """config.num_seeds and config.sweep, and what several members in one program cannot do yet."""
  _positive(config.num_seeds, 'num_seeds', integer=True)
  _check_sweep(config.sweep)
  if config.num_seeds == 1 and not config.sweep.field:
    return
  what = (f'config.num_seeds={config.num_seeds}' if not config.sweep.field
          else f'config.sweep.field={config.sweep.field}')
  one = ('--config.num_seeds=1' if not config.sweep.field
         else "--config.num_seeds=1 --config.sweep.field=''")
  if config.model.g_init_from:
    raise ConfigError(f'{what} with config.model.g_init_from is not supported yet: warm-start '
                      f'one GAN per run ({one}).')
  if jax.process_count() > 1:
    raise ConfigError(f'{what} across {jax.process_count()} processes is not supported yet: '
                      f'run it on one host, or one GAN per run ({one}).')


def _check_sweep(sweep) -> None:
  """config.sweep: a field that keeps shapes and distinct numbers for it, or neither."""
  values = tuple(sweep.grid)
  if not sweep.field:
    if values:
      raise ConfigError(f'config.sweep.grid={values} but config.sweep.field is empty: name the '
                        'field they are for (--config.sweep.field=optim.learning_rate, say).')
    return
  _choice(sweep.field, config_lib.SWEEPABLE, 'sweep.field')
  if not values:
    raise ConfigError(f'config.sweep.field={sweep.field} needs values: pass '
                      '--config.sweep.grid="(0.1, 0.05)", say.')
  if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
    raise ConfigError(f'config.sweep.grid must be numbers, got {values}.')
  if len(set(float(v) for v in values)) < len(values):
    raise ConfigError(f'config.sweep.grid={values} repeats a value: give each once.')


def _check_members(config, device_count: int) -> None:
  """Each swept value checked as the run of that value alone, the error naming the value."""
  for member in workdir_lib.members(config):
    if member.seed == config.seed and member.value is not None:
      try:
        validate(workdir_lib.member_config(config, member.seed, member.value), device_count)
      except ConfigError as e:
        raise ConfigError(f'config.sweep.grid holds {member.value!r} for '
                          f'{config.sweep.field}: {e}') from None


def _check_points(config) -> None:
  """The synthetic point datasets (toy1d, ring8, grid25): their shape settings and G's output.

  Checked here, not only when the data are drawn, so that --mode=eval or figures on a bad
  setting also stops before anything is read.
  """
  d = config.data
  if d.name in data.MIXTURE_STDS:
    data.mixture_of(d)  # One-line DataError for a radius, spacing or std that is not positive.
  if data.DATASETS[d.name].synthetic and config.model.g_output_activation != 'linear':
    raise ConfigError(f"'{d.name}' holds real-valued points, which G's "
                      f"'{config.model.g_output_activation}' output cannot reach: set "
                      "--config.model.g_output_activation=linear.")


def validate(config, device_count: int) -> None:
  """Raises ConfigError with one clear line for the first problem found.

  Args:
    config: the experiment's ConfigDict.
    device_count: the number of devices the global batch is split over.
  """
  _check_seeds(config)
  _choice(config.data.name, data.DATASETS, 'data.name')
  _choice(config.data.preprocessing, data.PREPROCESSING, 'data.preprocessing')
  _check_points(config)
  _choice(config.model.generator, models.GENERATORS, 'model.generator')
  _choice(config.model.discriminator, models.DISCRIMINATORS, 'model.discriminator')
  _choice(config.model.prior, models.PRIORS, 'model.prior')
  models.compute_dtype(config.model)
  _choice(config.train.update_rule, train_step.UPDATE_RULES, 'train.update_rule')
  _choice(config.train.generator_loss, losses.GENERATOR_LOSSES, 'train.generator_loss')
  _choice(config.optim.name, optim.OPTIMIZERS, 'optim.name')
  m = config.model
  if not len(m.g_hidden) == len(m.g_activations) == len(m.g_inits) == len(m.g_bias):
    raise ConfigError('config.model.g_hidden, g_activations, g_inits and g_bias must have the '
                      f'same length, got {len(m.g_hidden)}, {len(m.g_activations)}, '
                      f'{len(m.g_inits)}, {len(m.g_bias)}.')
  for act in list(m.g_activations) + [m.g_output_activation]:
    _choice(act, layers.ACTIVATIONS, 'model.g_activations')
  for spec in list(m.g_inits) + [m.g_output_init]:
    try:
      layers.make_init(spec)
    except ValueError as e:
      raise ConfigError(str(e)) from None
  _check_model_extras(m)
  for field in ('d_input_keep', 'd_hidden_keep'):
    if not 0.0 < m[field] <= 1.0:
      raise ConfigError(f'config.model.{field} is a keep probability in (0, 1], got {m[field]}.')
  _positive(m.z_dim, 'model.z_dim', integer=True)
  t = config.train
  _positive(t.batch_size, 'train.batch_size', integer=True)
  if not isinstance(t.k_steps, int) or t.k_steps < 1:
    raise ConfigError(f'config.train.k_steps (D steps per G step) must be an integer >= 1, '
                      f'got {t.k_steps!r}.')
  if t.update_rule == 'simultaneous' and t.k_steps != 1:
    raise ConfigError('config.train.k_steps > 1 needs config.train.update_rule=alternating (the '
                      'simultaneous rule takes one D and one G step per minibatch).')
  for field in ('num_steps', 'log_every', 'checkpoint_every', 'sample_every', 'steps_per_call',
                'keep_checkpoints'):
    _positive(t[field], f'train.{field}', integer=True)
  _choice(t.member_axis, ('auto', *train_step.MEMBER_AXES), 'train.member_axis')
  g_ema_decay = t.g_ema_decay
  if isinstance(g_ema_decay, bool) or not 0.0 <= g_ema_decay < 1.0:
    raise ConfigError(f'config.train.g_ema_decay must be in [0, 1) (0 = off), got '
                      f'{g_ema_decay!r}: set --config.train.g_ema_decay=0.999, say, or 0.')
  if t.batch_size % device_count:
    raise ConfigError(f'config.train.batch_size={t.batch_size} is not divisible by the '
                      f'{device_count} devices: use a multiple of {device_count}.')
  _check_optim(config.optim)
  e = config.eval
  if e.every < 0:
    raise ConfigError(f'config.eval.every must be >= 0 (0 = off), got {e.every}.')
  if e.modes.every < 0:
    raise ConfigError(f'config.eval.modes.every must be >= 0 (0 = off), got {e.modes.every}.')
  p = e.parzen
  for field in ('num_samples', 'valid_size', 'train_num_samples', 'train_valid_size',
                'batch_size'):
    _positive(p[field], f'eval.parzen.{field}', integer=True)
  g_average = p.g_average
  if not isinstance(g_average, int) or isinstance(g_average, bool) or g_average < 0:
    raise ConfigError(f'config.eval.parzen.g_average must be an integer >= 0 (0 = off), got '
                      f'{g_average!r}.')
  if p.g_ema and g_average:
    raise ConfigError(f'config.eval.parzen.g_ema=True and g_average={g_average} ask for two '
                      'different Gs: set --config.eval.parzen.g_average=0 to use the EMA.')
  if not len(p.sigmas) or min(p.sigmas) <= 0:
    raise ConfigError(f'config.eval.parzen.sigmas must be non-empty and positive, got '
                      f'{tuple(p.sigmas)}.')
  _check_eval_methods(e, config.data.name)
  _check_members(config, device_count)


def _check_optim(o) -> None:
  """config.optim's numbers."""
  _positive(o.learning_rate, 'optim.learning_rate')
  if o.lr_decay_factor < 1.0:
    raise ConfigError(f'config.optim.lr_decay_factor divides the lr every step and must be >= 1, '
                      f'got {o.lr_decay_factor}.')
  if o.min_lr < 0:
    raise ConfigError(f'config.optim.min_lr (the lr\'s floor) must be >= 0, got {o.min_lr}.')
  for field in ('init_momentum', 'final_momentum', 'adam_b1', 'adam_b2'):
    if not 0.0 <= o[field] < 1.0:
      raise ConfigError(f'config.optim.{field} must be in [0, 1), got {o[field]}.')
  if o.max_col_norm < 0:
    raise ConfigError(f'config.optim.max_col_norm must be >= 0 (0 = off), got {o.max_col_norm}.')


def _check_eval_methods(e, data_name: str) -> None:
  """config.eval.method and the AIS / sample-quality settings."""
  _choice(e.method, ('parzen', 'ais', 'sample_quality', 'modes'), 'eval.method')
  if e.parzen.data_as_samples and e.method != 'parzen':
    raise ConfigError(f'config.eval.parzen.data_as_samples=True applies to the parzen method, '
                      f'not {e.method!r}: use --config.eval.sample_quality.data_as_samples=train '
                      'for sample quality (AIS scores a generator only).')
  a = e.ais
  for field in ('num_test', 'num_chains', 'num_temps', 'leapfrog_steps', 'valid_size',
                'batch_size'):
    _positive(a[field], f'eval.ais.{field}', integer=True)
  if a.bdmc_examples < 0:
    raise ConfigError(f'config.eval.ais.bdmc_examples must be >= 0 (0 = no BDMC bounds), got '
                      f'{a.bdmc_examples}.')
  if a.obs_std < 0:
    raise ConfigError(f'config.eval.ais.obs_std must be > 0 (or 0: chosen on validation images '
                      f'from obs_stds), got {a.obs_std}.')
  if not a.obs_std and (not len(a.obs_stds) or min(a.obs_stds) <= 0):
    raise ConfigError(f'config.eval.ais.obs_stds must be non-empty and positive, got '
                      f'{tuple(a.obs_stds)}.')
  q = e.sample_quality
  for field in ('num_samples', 'kid_subsets', 'kid_subset_size', 'nearest_k',
                'train_num_samples', 'batch_size'):
    _positive(q[field], f'eval.sample_quality.{field}', integer=True)
  _choice(q.data_as_samples, ('', 'train', 'valid'), 'eval.sample_quality.data_as_samples')
  if e.method == 'sample_quality' or q.in_training:
    classifier.shipped(q.classifier)  # Its features must exist: a one-line error otherwise.
  _check_modes(e, data_name)


def _check_modes(e, data_name: str) -> None:
  """config.eval.modes, and a dataset with modes to count."""
  m = e.modes
  _positive(m.min_count, 'eval.modes.min_count', integer=True)
  if not isinstance(m.num_samples, int) or isinstance(m.num_samples, bool) or m.num_samples < 0:
    raise ConfigError(f'config.eval.modes.num_samples must be an integer >= 0 (0 = the '
                      "dataset's default: 2,500 for a mixture, 26,000 for Stacked MNIST), got "
                      f'{m.num_samples!r}.')
  _choice(m.data_as_samples, ('', 'train', 'valid'), 'eval.modes.data_as_samples')
  if m.data_as_samples and e.method != 'modes':
    raise ConfigError(f"config.eval.modes.data_as_samples='{m.data_as_samples}' applies to the "
                      f'modes method, not {e.method!r}: add --config.eval.method=modes.')
  if e.method == 'modes' and data_name not in data.MIXTURE_STDS and data_name != 'stacked_mnist':
    raise ConfigError(f"config.eval.method=modes counts the modes of a 2-D mixture "
                      f"({', '.join(sorted(data.MIXTURE_STDS))}: experiments/mog2d.py) or of "
                      f"Stacked MNIST (experiments/stacked_mnist.py), not '{data_name}'.")
  if data_name == 'stacked_mnist' and (e.method == 'modes' or m.every):
    # Its modes are the MNIST classifier's labels: missing or corrupt weights stop here, in one
    # line naming the fix, before anything trains or samples.
    classifier.load('mnist')
