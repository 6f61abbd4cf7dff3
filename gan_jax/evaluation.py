"""--mode=eval: a protocol run on a checkpoint's G (or on data as samples), its record written.

The protocol is `config.eval.method`: 'parzen' (the paper's, gan_jax.parzen_protocol), 'ais'
(annealed importance sampling with BDMC bounds, gan_jax.ais_protocol), 'sample_quality'
(classifier-feature FID, KID, precision/recall, memorisation: gan_jax.quality_protocol) or
'modes' (modes covered of a 2-D mixture or Stacked MNIST: gan_jax.modes_protocol). Each is a
module with the same few names (NAME, SPLITS, HEADLINE, SHARED, score_generator, describe, ...);
this driver restores G (the plain G, G averaged over checkpoints, or its EMA), names the output
(`<method>.json`, `<method>_step_N.json` with --step, a suffix for an averaged G) and handles a
run of several seeds.

A run of several seeds (config.num_seeds > 1) is scored seed by seed, each exactly as its
single-seed run would be (seed_<s>/<method>.json), and summarised across seeds
(<method>_seeds.json: mean and sample standard deviation, ddof 1, of the HEADLINE numbers).
"""

from __future__ import annotations

import os
import time

from absl import logging
import jax
import numpy as np

from gan_jax import ais_protocol
from gan_jax import checkpoint
from gan_jax import data
from gan_jax import experiment
from gan_jax import modes_protocol
from gan_jax import parzen_protocol
from gan_jax import quality_protocol
from gan_jax import state as state_lib
from gan_jax import validation
from gan_jax import workdir as workdir_lib
from gan_jax import writers
from gan_jax.errors import CheckpointError
from gan_jax.errors import ConfigError
from gan_jax.errors import DataError

METHODS = {m.NAME: m for m in (parzen_protocol, ais_protocol, quality_protocol,
                                modes_protocol)}


def step_json_name(step: int, method: str = 'parzen') -> str:
  """The file `evaluate(..., step=step)` writes into the workdir."""
  return f'{method}_step_{int(step):08d}.json'


def restore_generator(ckpt: checkpoint.Checkpointer, like, step: int | None, window: int = 0,
                      ema: bool = False):
  """G's parameters at `step` (default: newest), averaged over [step - window, step], or its EMA.

  With `window` > 0, every checkpoint in that range counts once: post-hoc Polyak averaging along
  the run's own trajectory (Yazici et al., 2019), needing no change to training, only the
  checkpoints (`config.train.keep_checkpoints`). With `ema`, the exponential moving average of G
  that training kept (`config.train.g_ema_decay`) in the checkpoint at `step`. Only G is read,
  and it must have the shapes of `like` (Experiment.g_shapes()).

  Returns:
    (g_params, the step restored, the steps averaged: just [step] when window is 0).
  """
  g_params, restored = ckpt.restore_params('g_params', step, like)
  if ema:
    if 'g_ema_params' not in ckpt.saved_fields(restored):
      raise _no_ema_error(restored, ckpt.directory)
    return ckpt.restore_params('g_ema_params', restored, like)[0], restored, [restored]
  if not window:
    return g_params, restored, [restored]
  steps = [s for s in ckpt.steps() if restored - window <= s <= restored]
  if len(steps) < 2:
    raise CheckpointError(
        f'config.eval.parzen.g_average={window} finds only the checkpoint(s) {steps} in '
        f'[{restored - window}, {restored}]: widen it, or keep more checkpoints while training '
        '(--config.train.keep_checkpoints).')
  total = None
  for s in steps:  # In step order; `restored` is already in memory.
    g = g_params if s == restored else ckpt.restore_params('g_params', s, like)[0]
    total = g if total is None else jax.tree.map(lambda a, b: a + b, total, g)
  return jax.tree.map(lambda a: a / len(steps), total), restored, steps


def g_ema_params(state, step: int, directory: str):
  """The EMA of G a restored state carries; a clear error if its run kept none."""
  if state.g_ema_params is None:
    raise _no_ema_error(step, directory)
  return state.g_ema_params


def _no_ema_error(step: int, directory: str) -> CheckpointError:
  return CheckpointError(
      f'config.eval.parzen.g_ema=True, but the checkpoint at step {step} in {directory} has no '
      'EMA of G: train with --config.train.g_ema_decay=0.999 (say) to keep one, or average '
      'checkpoints post hoc with --config.eval.parzen.g_average.')


def generator_suffix(window: int, ema: bool = False) -> str:
  """What --mode=eval and --mode=figures append to their outputs' names for an averaged G.

  Averaged over the checkpoints of the last `window` steps, or the EMA kept in training (`ema`);
  the plain G's outputs have no suffix, so neither ever overwrites them.
  """
  if ema:
    return '_g_ema'
  return f'_g_average_{window}' if window else ''


def evaluate(config, workdir: str, step: int | None = None) -> dict:
  """Runs config.eval.method's protocol on the checkpoint at `step` (default: newest).

  With data as samples (config.eval.parzen.data_as_samples, config.eval.sample_quality.
  data_as_samples) images of a data split replace G's samples: a reference row (no checkpoint
  needed). A run of several seeds (config.num_seeds > 1) is scored seed by seed, as
  `evaluate_seeds`.

  Args:
    config: a single-stage config (gan_jax.api picks a staged experiment's last stage).
    workdir: the run's directory.
    step: the checkpoint to score (default: the newest readable).

  Returns:
    The record written to `workdir/<method>.json` (or <method>_data_as_samples.json for
    training images, <method>_valid_as_samples.json for validation images, or
    <method>_step_<step>.json; with g_average or g_ema, the name carries generator_suffix); for
    several seeds, the summary `evaluate_seeds` writes.
  """
  validation.validate(config, jax.device_count())
  method = METHODS[config.eval.method]
  start = time.time()
  reference = method.data_samples(config)  # Which split, if any, serves as the samples.
  if not reference:  # A config unlike the run's is refused before any data is read.
    check_num_seeds(config, workdir)
  which = tuple(dict.fromkeys(method.SPLITS + ((reference,) if reference else ())))
  splits = data.load_splits(config.data, which)
  record = {'dataset': config.data.name, 'valid_split': config.data.valid_split,
            'test_split': config.data.test_split}
  if reference:
    return _score_data(config, method, reference, splits, (record, workdir))
  exp = experiment.build(config, splits['test'].shape[1:])
  p = config.eval.parzen  # Which G: g_average / g_ema apply to every method.
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    g_params, restored, averaged = restore_generator(ckpt, exp.g_shapes(), step, p.g_average,
                                                     p.g_ema)
    stopped = ckpt.host_record(restored).get('stopped', {}) if exp.stacked else {}
  if p.g_average:
    record.update(g_average=p.g_average, averaged_steps=[int(s) for s in averaged])
  if p.g_ema:
    record.update(g_ema=True)
  record.update(samples='generator', step=int(restored))
  name = f'{method.NAME}.json' if step is None else step_json_name(restored, method.NAME)
  # An averaged G never overwrites the protocol's own file for the step.
  name = name.replace('.json', generator_suffix(p.g_average, p.g_ema) + '.json')
  if exp.stacked:
    return evaluate_seeds(exp, g_params, record, splits, (workdir, name, stopped, start))
  record = method.score_generator(exp, g_params, splits, record)
  record['seconds'] = round(time.time() - start, 1)
  return _report(method, record, os.path.join(workdir, name))


def _score_data(config, method, split: str, splits: dict, where: tuple) -> dict:
  """A reference row: the images of `split` scored as if they were G's samples; `where` is
  (the record's head, the workdir)."""
  record, workdir = where
  start = time.time()
  wanted, field = method.samples_needed(config)
  if len(splits[split]) < wanted:
    raise DataError(f'Data as samples needs {wanted} images of the {split} split, it has '
                    f'{len(splits[split])}: lower {field}.')
  record.update({'samples': _SPLIT_IMAGES[split],
                 f'{split}_split': getattr(config.data, f'{split}_split')})
  record = method.score_samples(config, splits[split][:wanted], splits, record)
  record['seconds'] = round(time.time() - start, 1)
  # Training images keep the name the Parzen reference always had; other splits say theirs.
  name = 'data' if split == 'train' else split
  return _report(method, record, os.path.join(workdir, f'{method.NAME}_{name}_as_samples.json'))


_SPLIT_IMAGES = {'train': 'training images', 'valid': 'validation images'}


def evaluate_seeds(exp, g_params, head: dict, splits: dict, where: tuple) -> dict:
  """Each member of a run of several scored as a run of that member alone would be.

  Member m's G is its slice of the stacked `g_params`; its record (the one its run alone,
  workdir.member_config, writes) goes to <m's folder>/`name`, and a member that went non-finite
  in training (scored at the parameters it froze at) says so under 'stopped'. The seeds'
  summary goes to <method>_seeds[_step_N][suffix].json in `workdir`; in a sweep, one per value
  in <workdir>/<field>=<value>/, and the values side by side in <method>_sweep[...].json.

  Args:
    exp: the stacked run's Experiment.
    g_params: G's parameters with the leading member axis.
    head: the record's fields before the result (as `evaluate` builds them).
    splits: the protocol's data splits.
    where: (workdir, the per-member file name, the checkpoint host record's `stopped`
      ({str(member.key): [step, quantity]}), time.time() when the evaluation began).

  Returns:
    The summary (see `seeds_summary`); in a sweep, the sweep's (see `sweep_summary`).
  """
  workdir, name, stopped, start = where
  method = METHODS[exp.config.eval.method]
  records = []
  for i, member in enumerate(exp.members):
    member_start = time.time()
    record = dict(head)
    if str(member.key) in stopped:
      record['stopped'] = stopped_info(stopped[str(member.key)])
    record = method.score_generator(exp, state_lib.seed_slice(g_params, i), splits, record)
    record['seconds'] = round(time.time() - member_start, 1)
    path = os.path.join(workdir, member.name, name)
    writers.write_json(path, record, indent=2)
    logging.info('%s: %s -> %s', str(member).capitalize(),
                 method.describe(record, _source(record)), path)
    records.append(record)
  seeds_name = name.replace(method.NAME, f'{method.NAME}_seeds', 1)
  if not exp.config.sweep.field:
    summary = seeds_summary(method, exp.seeds, records, name)
    summary['seconds'] = round(time.time() - start, 1)
    _write_summary(os.path.join(workdir, seeds_name), summary,
                   seeds_summary_line(method, summary))
    return summary
  summaries = []
  for value, at in workdir_lib.by_value(exp.config):
    summary = seeds_summary(method, [exp.seeds[i] for i in at], [records[i] for i in at], name)
    path = os.path.join(workdir, workdir_lib.value_name(exp.config, value), seeds_name)
    # One seed has no spread to state: its own record's line.
    line = (seeds_summary_line(method, summary) if len(at) > 1
            else method.describe(records[at[0]], _source(records[at[0]])))
    _write_summary(path, summary, f'{exp.config.sweep.field}={value!r}: {line}')
    summaries.append(summary)
  sweep = sweep_summary(method, exp.config, summaries, seeds_name)
  sweep['seconds'] = round(time.time() - start, 1)
  path = os.path.join(workdir, name.replace(method.NAME, f'{method.NAME}_sweep', 1))
  _write_summary(path, sweep, f'{method.NAME} over {exp.config.sweep.field} = '
                 f'{list(exp.config.sweep.grid)}, {exp.config.num_seeds} seed(s) each')
  return sweep


def _write_summary(path: str, summary: dict, line: str) -> None:
  writers.write_json(path, summary, indent=2)
  line = f'{line} -> {path}'
  logging.info(line)
  print(line)


def sweep_summary(method, config, summaries: list[dict], seeds_name: str) -> dict:
  """<method>_sweep.json: each swept value's statistics across its seeds, side by side.

  Layout: `field`, `seeds` (the same at every value), `step`, and `per_value`: one entry per
  value of config.sweep.grid with the value, its HEADLINE means and sds across seeds (sd None for
  one seed), n_seeds, the seeds that stopped, and the path of its <method>_seeds.json.
  """
  per_value = []
  for value, summary in zip(config.sweep.grid, summaries):
    stats = {k: v for k, v in summary.items()
             if k in method.HEADLINE or k.startswith('sd_') or k == 'n_seeds'}
    per_value.append({'value': float(value), **stats, 'stopped': summary['stopped'],
                      'record': os.path.join(workdir_lib.value_name(config, value),
                                             seeds_name)})
  return {'field': config.sweep.field, 'seeds': summaries[0]['seeds'],
          'step': summaries[0]['step'], 'per_value': per_value}


def stopped_info(entry) -> dict:
  """A checkpoint host record's [step, quantity] for a stopped seed, spelt out."""
  at, quantity = entry
  return {'nonfinite_at_step': int(at), 'quantity': quantity, 'params_from_step': int(at) - 1}


def across_seeds(values, key: str = 'mean_ll') -> dict:
  """Mean and sample standard deviation (ddof=1; None for a single value) of per-seed numbers.

  The mean is named `key`, the sd 'sd_' + `key` without a 'mean_' prefix (mean_ll -> sd_ll).
  """
  values = np.asarray(values, np.float64)
  sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
  sd_key = 'sd_' + key.removeprefix('mean_')
  return {key: float(np.mean(values)), sd_key: sd, 'sd_ddof': 1, 'n_seeds': len(values)}


def _across(method, records: list[dict]) -> dict:
  out = {}
  for key in method.HEADLINE:
    values = [r.get(key) for r in records]
    if None not in values:  # Not every record's number (modes: a mixture's, Stacked MNIST's).
      out.update(across_seeds(values, key))
  return out


def seeds_summary(method, seeds: list[int], records: list[dict], name: str) -> dict:
  """<method>_seeds.json: the per-seed results and their mean and sd across seeds.

  Layout: dataset, splits, the protocol's SHARED fields (e.g. sample_seed, n_samples/n_valid/
  n_test), `step`, the G variant (g_average/averaged_steps or g_ema), `seeds`, `per_seed` (one entry
  per seed: seed, its HEADLINE numbers and other per_seed_fields, step, its record's path in the
  run, and `stopped` where it went non-finite), then each HEADLINE number's mean and sd (ddof 1;
  mean_ll and sd_ll for a log-likelihood), sd_ddof, n_seeds over all seeds, the `stopped` seeds
  ({seed: ...}, {} when none) and, when some stopped, the same statistics over the others as
  `unstopped`.
  """
  first = records[0]
  summary = {k: first[k] for k in ('dataset', 'valid_split', 'test_split')}
  if 'seed' in first:  # The samples' key (config.eval.<method>.seed), the same for every seed.
    summary['sample_seed'] = first['seed']
  summary.update({k: first[k] for k in method.SHARED if k in first})
  summary['step'] = first['step']
  summary.update({k: first[k] for k in ('g_average', 'averaged_steps', 'g_ema') if k in first})
  per_seed = []
  for seed, r in zip(seeds, records):
    entry = {'seed': seed, **method.per_seed_fields(r), 'step': r['step'],
             'record': os.path.join(workdir_lib.seed_dir('', seed), name)}
    if 'stopped' in r:
      entry['stopped'] = r['stopped']
    per_seed.append(entry)
  summary.update(seeds=list(seeds), per_seed=per_seed)
  summary.update(_across(method, records))
  summary['stopped'] = {str(e['seed']): e['stopped'] for e in per_seed if 'stopped' in e}
  if summary['stopped']:
    summary['unstopped'] = dict(
        seeds=[e['seed'] for e in per_seed if 'stopped' not in e],
        **_across(method, [r for r in records if 'stopped' not in r]))
  return summary


def _source(record: dict) -> str:
  """What the record scored, in words."""
  if record['samples'] != 'generator':
    return record['samples']
  if record.get('g_ema'):
    return f'the EMA of G at step {record["step"]}'
  if 'averaged_steps' in record:
    return (f'G averaged over {len(record["averaged_steps"])} checkpoints, steps '
            f'{record["averaged_steps"][0]}-{record["step"]}')
  return f'step {record["step"]}'


def seeds_summary_line(method, summary: dict) -> str:
  stopped = ''.join(
      f'; seed {s} stopped early (non-finite {v["quantity"]} at step {v["nonfinite_at_step"]}), '
      f'scored at its step-{v["params_from_step"]} parameters'
      for s, v in summary['stopped'].items())
  return method.describe_seeds(summary, _source(dict(summary, samples='generator')), stopped)


def _report(method, record: dict, path: str) -> dict:
  """Writes a single run's record to `path` and prints its summary line."""
  writers.write_json(path, record, indent=2)
  line = f'{method.describe(record, _source(record))} -> {path}'
  logging.info(line)
  print(line)
  return record


def check_num_seeds(config, workdir: str) -> None:
  """A clear error when the config's prior, num_seeds or sweep is not the run's (G's samples are
  its own only under its prior; a run of several members stacks its checkpoints along a leading
  axis)."""
  trained = workdir_lib.read_config(workdir)
  if trained is not None and trained.model.prior != config.model.prior:
    # G's samples, and AIS's posterior, are only G's under the prior it was trained with.
    raise ConfigError(
        f'The run in {workdir} trained G with the {trained.model.prior!r} prior, the config says '
        f'config.model.prior={config.model.prior!r}: drop the override (or pass '
        f'--config.model.prior={trained.model.prior}).')
  if trained is not None and trained.num_seeds != config.num_seeds:
    raise ConfigError(
        f'The run in {workdir} trained {trained.num_seeds} seed(s) in one program, the config '
        f'says config.num_seeds={config.num_seeds}: pass --config.num_seeds='
        f'{trained.num_seeds} (and --config.seed={trained.seed}) to read its checkpoints.')
  if trained is not None and (trained.sweep.field, tuple(trained.sweep.grid)) != (
      config.sweep.field, tuple(config.sweep.grid)):
    raise ConfigError(
        f'The run in {workdir} swept {trained.sweep.field or "nothing"}'
        f'{" over " + str(tuple(trained.sweep.grid)) if trained.sweep.field else ""}, the config '
        f'says config.sweep.field={config.sweep.field!r}, grid={tuple(config.sweep.grid)}: pass '
        f'--config.sweep.field={trained.sweep.field!r} --config.sweep.grid="'
        f'{tuple(trained.sweep.grid)}" to read its checkpoints.')
