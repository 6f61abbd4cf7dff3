"""Multi-stage runs: one ordinary run per stage in `<workdir>/<stage>`, G passed between them.

A config with a non-empty `stages` section (e.g. experiments/tfd.py) describes one experiment made
of stages run in `config.stage_order`:

* `config.stages.<name>` holds that stage's overrides, as sections of fields (e.g.
  `stages.train.model.g_pre_hidden`). A stage's config is the shared config with its overrides
  applied; a field a stage sets must be left unset in the shared part (0, '' or ()), so a
  command-line override of the shared field can never be silently replaced by a stage's value.
* `config.stage` selects one stage ('' runs them all, in order).
* `model.g_init_from` names a finished run whose final G initialises this run's G by layer name
  (`init_generator_from`, called by run.train_and_evaluate before a fresh run's first step). A
  relative name is a sibling of the run's workdir, so in a stage override it names an earlier
  stage, and config.json records the name, not a path.

Every stage is a complete run in its own directory (config.json, checkpoints, samples), so each
resumes on its own, and a stage whose checkpoint has reached its `num_steps` is skipped.
"""

from __future__ import annotations

import json
import os

from absl import logging
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import state as state_lib
from gan_jax import validation
from gan_jax import workdir as workdir_lib

# Top-level fields that describe the stages; no single stage's config has them.
STAGE_FIELDS = ('stages', 'stage_order', 'stage')


def is_staged(config) -> bool:
  """True for a multi-stage config (a non-empty `stages` section)."""
  return bool(config.get('stages'))


def selected_stages(config) -> tuple[str, ...]:
  """The stages this launch runs: all of `stage_order`, or the one named by `config.stage`."""
  order = tuple(config.get('stage_order', ()))
  if sorted(order) != sorted(config.stages.keys()):
    raise validation.ConfigError(
        f'config.stage_order={order} must list each stage of config.stages '
        f'({sorted(config.stages.keys())}) exactly once.')
  chosen = config.get('stage', '')
  if not chosen:
    return order
  if chosen not in order:
    raise validation.ConfigError(f"Unknown stage '{chosen}': choose one of {list(order)} "
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
      raise validation.ConfigError(f'config.stages.{stage}{where} overrides config{where}, which '
                                   'does not exist: check the field name.')
    if isinstance(value, dict):
      if not isinstance(base[key], dict):
        raise validation.ConfigError(f'config.stages.{stage}{where} is a section but '
                                     f'config{where} is a field.')
      _apply(base[key], value, stage, where)
      continue
    if base[key] not in (None, 0, '', (), []) and not _same(base[key], value):
      raise validation.ConfigError(
          f'config{where}={base[key]!r} conflicts with the value {value!r} of stage '
          f"'{stage}': this field is set per stage; override it as "
          f'--config.stages.{stage}{where} instead.')
    base[key] = value


def stage_config(config, name: str) -> ml_collections.ConfigDict:
  """The config of stage `name`: the shared fields with the stage's overrides applied (locked)."""
  if name not in config.stages:
    raise validation.ConfigError(f"Unknown stage '{name}': choose one of "
                                 f'{sorted(config.stages.keys())}.')
  base = config.to_dict()
  for field in STAGE_FIELDS:
    base.pop(field, None)
  _apply(base, config.stages[name].to_dict(), name)
  source = base.get('model', {}).get('g_init_from', '')
  order = list(config.stage_order)
  if source and (source not in order or order.index(source) >= order.index(name)):
    raise validation.ConfigError(
        f"config.stages.{name}.model.g_init_from='{source}' must name an earlier stage of "
        f'{order}.')
  prefix = tuple(base['model'].get('g_pre_hidden', ()))
  if source and prefix:
    z_dim = stage_config(config, source).model.z_dim
    if prefix[-1] != z_dim:
      raise validation.ConfigError(
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


def _finished_step(run_dir: str, num_steps: int | None) -> int | None:
  """The newest checkpoint step in `run_dir` if it has reached `num_steps`, else None."""
  ckpt_dir = os.path.join(run_dir, 'checkpoints')
  if not os.path.isdir(ckpt_dir):
    return None
  manager = ocp.CheckpointManager(ckpt_dir, options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step()
  manager.close()
  if step is None or (num_steps is not None and step < num_steps):
    return None
  return step


def _recorded_num_steps(run_dir: str) -> int | None:
  path = os.path.join(run_dir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f).get('train', {}).get('num_steps')


def source_dir(source: str, workdir: str) -> str:
  """Resolves `model.g_init_from`: absolute, or relative to the parent of this run's workdir."""
  if os.path.isabs(source):
    return source
  return os.path.join(os.path.dirname(os.path.abspath(workdir)), source)


def finished_source(source: str, workdir: str) -> tuple[str, int]:
  """(directory, step) of the finished run `source`; raises CheckpointError if it is not one."""
  path = source_dir(source, workdir)
  num_steps = _recorded_num_steps(path)
  step = _finished_step(path, num_steps)
  if step is None:
    latest = _finished_step(path, None)
    state = ('has no checkpoint' if latest is None else
             f'stopped at step {latest} of {num_steps}: rerun it to finish')
    raise checkpoint.CheckpointError(
        f'G starts from the final G of the run in {path} (config.model.g_init_from='
        f"'{source}'), which {state}. Train that run (stage) first.")
  return path, step


def restore_g_params(run_dir: str, step: int):
  """G's parameters (NumPy, nested dicts) from checkpoint `step` of the run in `run_dir`.

  Only G is read (a partial restore), whatever devices the source run used; the caller places
  the arrays. Reads both checkpoint layouts of gan_jax.checkpoint: the GANState as the single
  item, or as item 'state' beside the host-side 'host' item.
  """
  ckpt_dir = os.path.join(run_dir, 'checkpoints')
  item = 'state' if os.path.isdir(os.path.join(ckpt_dir, str(step), 'state')) else None
  handler = ocp.PyTreeCheckpointHandler()
  manager = ocp.CheckpointManager(
      ckpt_dir, options=ocp.CheckpointManagerOptions(read_only=True),
      item_handlers={item: handler} if item else handler)
  try:
    metadata = manager.item_metadata(step)
    tree = (metadata[item] if item else metadata).tree
    target = {'g_params': jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype),
                                       tree['g_params'])}
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
    args = ocp.args.PyTreeRestore(target, restore_args=restore_args, partial_restore=True)
    out = manager.restore(step, args=ocp.args.Composite(**{item: args}) if item else args)
  finally:
    manager.close()
  return (out[item] if item else out)['g_params']


def transfer_layers(target, source):
  """Returns `target` (G params) with every layer of `source` copied in by name.

  Raises:
    CheckpointError: a layer of `source` is missing from `target` or has other shapes.
  """
  target_layers, source_layers = target['params'], source['params']
  out = dict(target_layers)
  for name, layer in source_layers.items():
    if name not in target_layers:
      raise checkpoint.CheckpointError(
          f"The pretrained G's layer '{name}' has no counterpart in this G (layers "
          f'{sorted(target_layers)}): the shared layers must keep their names.')
    want = jax.tree.map(np.shape, target_layers[name])
    got = jax.tree.map(np.shape, layer)
    if want != got:
      raise checkpoint.CheckpointError(
          f"The pretrained G's layer '{name}' ({got}) does not fit this G (its layer '{name}': "
          f'{want}): the shared layers must have the same widths in both stages.')
    out[name] = jax.tree.map(np.asarray, layer)
  return {**target, 'params': out}


def init_generator_from(exp, state, source: str, workdir: str):
  """Initialises G's parameters (and its optimiser) from the final G of the run `source`.

  Layers present in both Gs are copied from the source; the others (e.g. TFD's pre0, pre1) keep
  their fresh initialisation. D is not touched.
  """
  path, step = finished_source(source, workdir)
  source_params = restore_g_params(path, step)
  g_params = transfer_layers(jax.device_get(state.g_params), source_params)
  copied = sorted(source_params['params'])
  logging.info("G's layers %s start from step %d of %s; %s are new.", copied, step, path,
               sorted(set(g_params['params']) - set(copied)))
  state = state.replace(g_params=g_params, g_opt_state=exp.g_tx.init(g_params))
  if state.g_ema_params is not None:  # The EMA of G starts at the G training starts from.
    state = state_lib.with_g_ema(state.replace(g_ema_params=None), True)
  return jax.device_put(state, exp.replicated)


def train_stages(config, workdir: str, allow_config_change: bool = False) -> dict:
  """Runs the selected stages in order, each in `<workdir>/<stage>`; returns the last's metrics."""
  from gan_jax import run  # pylint: disable=g-import-not-at-top  (run dispatches here)

  names = selected_stages(config)
  configs = {name: stage_config(config, name) for name in config.stage_order}
  # Everything is checked before the first stage starts: a typo in the last stage, or a missing
  # data file, should not cost the first stage's hours.
  for name in names:
    validation.validate(configs[name], jax.device_count())
    data.check_available(configs[name].data)
  if os.path.isdir(os.path.join(workdir, 'checkpoints')):
    raise workdir_lib.WorkdirError(
        f'--workdir {workdir} holds a single-stage run, and a multi-stage run keeps its stages '
        'in sub-directories: use a new --workdir.')
  for name in names:
    # A stage starting from a stage not run by this launch needs that one finished already
    # (unless it has begun, and so resumes from its own checkpoint).
    source, stage_dir = configs[name].model.get('g_init_from', ''), os.path.join(workdir, name)
    if (source and source not in names[:names.index(name)] and
        _finished_step(stage_dir, None) is None):
      finished_source(source, stage_dir)

  result = {}
  for name in names:
    stage_dir, stage = os.path.join(workdir, name), configs[name]
    if _finished_step(stage_dir, stage.train.num_steps) is not None:
      # Still refuse a changed config, as a resumed run would.
      workdir_lib.prepare(stage_dir, stage, write=False, allow_new_config=allow_config_change)
      logging.info("Stage '%s' is finished (%s); skipping it.", name, stage_dir)
      continue
    logging.info("Stage '%s' (%d of %d) in %s.", name, names.index(name) + 1, len(names),
                 stage_dir)
    result = run.train_and_evaluate(stage, stage_dir, allow_config_change)
  return result
