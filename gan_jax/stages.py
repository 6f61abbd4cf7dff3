"""Multi-stage runs: one ordinary run per stage in `<workdir>/<stage>`, G passed between them.

A config with a non-empty `stages` section (e.g. experiments/tfd.py) describes one experiment made
of stages run in `config.stage_order`:

* `config.stages.<name>` holds that stage's overrides, as sections of fields (e.g.
  `stages.train.model.g_pre_hidden`). A stage's config is the shared config with its overrides
  applied; a field a stage sets must be left unset in the shared part (0, '' or ()), so a
  command-line override of the shared field can never be silently replaced by a stage's value.
* `config.stage` selects one stage ('' runs them all, in order).
* `model.g_init_from` names a finished run whose final G initialises this run's G by layer name
  (gan_jax.warm_start, before a fresh run's first step). A relative name is a sibling of the
  run's workdir, so in a stage override it names an earlier stage.

Every stage is a complete run in its own directory (config.json, checkpoints, samples), so each
resumes on its own, and a stage whose checkpoint has reached its `num_steps` is skipped.
"""

from __future__ import annotations

import os

from absl import logging
import jax
import ml_collections

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import train
from gan_jax import validation
from gan_jax import warm_start
from gan_jax import workdir as workdir_lib
from gan_jax.errors import ConfigError
from gan_jax.errors import WorkdirError

# Top-level fields that describe the stages; each stage's config has them empty.
STAGE_FIELDS = {'stages': {}, 'stage_order': (), 'stage': ''}


def is_staged(config) -> bool:
  """True for a multi-stage config (a non-empty `stages` section)."""
  return bool(config.stages)


def selected_stages(config) -> tuple[str, ...]:
  """The stages this launch runs: all of `stage_order`, or the one named by `config.stage`."""
  if config.num_seeds != 1:
    raise ConfigError(f'config.num_seeds={config.num_seeds} is not supported for a staged '
                      f'experiment (stages {list(config.stage_order)}) yet: train it with '
                      '--config.num_seeds=1, once per seed (--config.seed).')
  if config.sweep.field:
    raise ConfigError(f'config.sweep.field={config.sweep.field} is not supported for a staged '
                      f'experiment (stages {list(config.stage_order)}) yet: train it once per '
                      "value, with --config.sweep.field=''.")
  order = tuple(config.stage_order)
  if sorted(order) != sorted(config.stages.keys()):
    raise ConfigError(
        f'config.stage_order={order} must list each stage of config.stages '
        f'({sorted(config.stages.keys())}) exactly once.')
  chosen = config.stage
  if not chosen:
    return order
  if chosen not in order:
    raise ConfigError(f"Unknown stage '{chosen}': choose one of {list(order)} "
                                 "(or '' for all of them, in order).")
  return (chosen,)


def _same(a, b) -> bool:
  if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
    return tuple(a) == tuple(b)
  return a == b


def _apply(base: dict, overrides: dict, stage: str, path: str = '') -> None:
  """Writes a stage's `overrides` into `base` (both nested dicts), refusing conflicts."""
  for key, value in overrides.items():
    where = f'{path}.{key}'
    if key not in base:
      raise ConfigError(f'config.stages.{stage}{where} overrides config{where}, which '
                                   'does not exist: check the field name.')
    if isinstance(value, dict):
      if not isinstance(base[key], dict):
        raise ConfigError(f'config.stages.{stage}{where} is a section but '
                                     f'config{where} is a field.')
      _apply(base[key], value, stage, where)
      continue
    if base[key] not in (None, 0, '', (), []) and not _same(base[key], value):
      raise ConfigError(
          f'config{where}={base[key]!r} conflicts with the value {value!r} of stage '
          f"'{stage}': this field is set per stage; override it as "
          f'--config.stages.{stage}{where} instead.')
    base[key] = value


def stage_config(config, name: str) -> ml_collections.ConfigDict:
  """The config of stage `name`: the shared fields with the stage's overrides applied (locked)."""
  if name not in config.stages:
    raise ConfigError(f"Unknown stage '{name}': choose one of "
                                 f'{sorted(config.stages.keys())}.')
  base = config.to_dict()
  base.update(STAGE_FIELDS)
  _apply(base, config.stages[name].to_dict(), name)
  source = base['model']['g_init_from']
  order = list(config.stage_order)
  if source and (source not in order or order.index(source) >= order.index(name)):
    raise ConfigError(
        f"config.stages.{name}.model.g_init_from='{source}' must name an earlier stage of "
        f'{order}.')
  prefix = tuple(base['model']['g_pre_hidden'])
  if source and prefix:
    z_dim = stage_config(config, source).model.z_dim
    if prefix[-1] != z_dim:
      raise ConfigError(
          f'The last layer in front of the pretrained G (config.stages.{name}.model.g_pre_hidden='
          f"{prefix}) must have the {z_dim} units of stage '{source}''s z, which it replaces.")
  stage = ml_collections.ConfigDict(base)
  stage.lock()
  return stage


def final_stage(config, workdir: str):
  """(config, workdir) of the run that holds the experiment's final G, e.g. for evaluation.

  For a multi-stage config that is the last selected stage, in `<workdir>/<stage>`; any other
  config is returned as it is.
  """
  if not is_staged(config):
    return config, workdir
  name = selected_stages(config)[-1]
  return stage_config(config, name), os.path.join(workdir, name)


def train_stages(config, workdir: str, allow_config_change: bool = False) -> dict:
  """Runs the selected stages in order, each in `<workdir>/<stage>`; returns the last's metrics."""
  names = selected_stages(config)
  configs = {name: stage_config(config, name) for name in config.stage_order}
  # Everything is checked before the first stage starts: a typo in the last stage, or a missing
  # data file, should not cost the first stage's hours.
  for name in names:
    validation.validate(configs[name], jax.device_count())
    data.check_available(configs[name].data)
  if os.path.isdir(os.path.join(workdir, 'checkpoints')):
    raise WorkdirError(
        f'--workdir {workdir} holds a single-stage run, and a multi-stage run keeps its stages '
        'in sub-directories: use a new --workdir.')
  for name in names:
    # A stage starting from a stage not run by this launch needs that one finished already
    # (unless it has begun, and so resumes from its own checkpoint).
    source, stage_dir = configs[name].model.g_init_from, os.path.join(workdir, name)
    if (source and source not in names[:names.index(name)] and
        checkpoint.finished_step(stage_dir, None) is None):
      warm_start.finished_source(source, stage_dir)

  result = {}
  for name in names:
    stage_dir, stage = os.path.join(workdir, name), configs[name]
    if checkpoint.finished_step(stage_dir, stage.train.num_steps) is not None:
      # Still refuse a changed config, as a resumed run would.
      workdir_lib.prepare(stage_dir, stage, write=False, allow_new_config=allow_config_change)
      logging.info("Stage '%s' is finished (%s); skipping it.", name, stage_dir)
      continue
    logging.info("Stage '%s' (%d of %d) in %s.", name, names.index(name) + 1, len(names),
                 stage_dir)
    result = train.train(stage, stage_dir, allow_config_change)
  return result
