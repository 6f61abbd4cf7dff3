"""The paper's evaluation: Parzen-window log-likelihood of test data under G's samples.

Protocol of goodfeli/adversarial's parzen_ll.py: draw `num_samples` samples from G (evaluation
mode, the training prior), choose sigma from `sigmas` by the mean log-likelihood of the first
`valid_size` validation images, report the mean log-likelihood of the whole test split at that
sigma with its standard error (std / sqrt(n), ddof 0).

A run of several seeds (config.num_seeds > 1) is scored seed by seed, each exactly as its
single-seed run would be (seed_<s>/parzen.json), and summarised across seeds (parzen_seeds.json:
mean and sample standard deviation, ddof 1).
"""

from __future__ import annotations

import os
import time

from absl import logging
import jax
import numpy as np

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import experiment
from gan_jax import parzen
from gan_jax import state as state_lib
from gan_jax import validation
from gan_jax import workdir as workdir_lib
from gan_jax import writers
from gan_jax.errors import CheckpointError
from gan_jax.errors import ConfigError
from gan_jax.errors import DataError


def flat(images: np.ndarray) -> np.ndarray:
  """Images as float32 rows, [N, H*W*C]: what the Parzen kernels take."""
  return np.asarray(images, np.float32).reshape(len(images), -1)


def training_estimate(exp: experiment.Experiment, g_params, valid_images: np.ndarray) -> dict:
  """A cheap progress signal during training: Parzen LL of validation images, best sigma.

  Sigma is chosen on the same images it is scored on, so this is optimistic next to the
  protocol's test number; it uses a fixed noise key, so successive values are comparable.
  """
  p = exp.config.eval.parzen
  samples = exp.generate(g_params, p.train_num_samples, jax.random.key(p.seed), p.batch_size)
  sigma, curve = parzen.select_sigma(flat(valid_images[:p.train_valid_size]), flat(samples),
                                     tuple(p.sigmas))
  return {'parzen_valid': float(np.max(curve)), 'parzen_sigma': float(sigma)}


def step_json_name(step: int) -> str:
  """The file `evaluate(..., step=step)` writes into the workdir."""
  return f'parzen_step_{int(step):08d}.json'


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
  """Runs the protocol on the checkpoint at `step` (default: newest) and writes parzen.json.

  With `config.eval.parzen.data_as_samples`, the first `num_samples` training images replace
  G's samples: the score of an ideal memoriser under this estimator (no checkpoint needed).
  A run of several seeds (config.num_seeds > 1) is scored seed by seed, as `evaluate_seeds`.

  Args:
    config: a single-stage config (gan_jax.api picks a staged experiment's last stage).
    workdir: the run's directory.
    step: the checkpoint to score (default: the newest readable).

  Returns:
    The record written to `workdir/parzen.json` (or parzen_data_as_samples.json /
    parzen_step_<step>.json; with g_average or g_ema, the name carries generator_suffix); for
    several seeds, the summary `evaluate_seeds` writes.
  """
  validation.validate(config, jax.device_count())
  p = config.eval.parzen
  start = time.time()
  which = ('train', 'valid', 'test') if p.data_as_samples else ('valid', 'test')
  splits = data.load_splits(config.data, which)
  valid, test = splits['valid'][:p.valid_size], splits['test']
  record = {'dataset': config.data.name, 'valid_split': config.data.valid_split,
            'test_split': config.data.test_split, 'seed': p.seed}
  if p.data_as_samples:
    if len(splits['train']) < p.num_samples:
      raise DataError(f'data_as_samples needs {p.num_samples} training images, the split '
                      f'has {len(splits["train"])}: lower config.eval.parzen.num_samples.')
    record.update(samples='training images', train_split=config.data.train_split)
    record = protocol(p, splits['train'][:p.num_samples], valid, test, record, start)
    return _report(record, os.path.join(workdir, 'parzen_data_as_samples.json'))
  check_num_seeds(config, workdir)
  exp = experiment.build(config, valid.shape[1:])
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    g_params, restored, averaged = restore_generator(ckpt, exp.g_shapes(), step, p.g_average,
                                                     p.g_ema)
    stopped = ckpt.host_record(restored).get('stopped', {}) if exp.stacked else {}
  if p.g_average:
    record.update(g_average=p.g_average, averaged_steps=[int(s) for s in averaged])
  if p.g_ema:
    record.update(g_ema=True)
  record.update(samples='generator', step=int(restored))
  name = 'parzen.json' if step is None else step_json_name(restored)
  # An averaged G never overwrites the protocol's own file for the step.
  name = name.replace('.json', generator_suffix(p.g_average, p.g_ema) + '.json')
  if exp.stacked:
    return evaluate_seeds(exp, g_params, record, valid, test, workdir, name, stopped, start)
  record = score_generator(exp, g_params, valid, test, record, start)
  return _report(record, os.path.join(workdir, name))


def protocol(p, samples: np.ndarray, valid: np.ndarray, test: np.ndarray, record: dict,
             start: float) -> dict:
  """The protocol from the samples on: sigma chosen on `valid`, the test set scored at it.

  Args:
    p: config.eval.parzen.
    samples, valid, test: images [N, ...].
    record: what the record says before the result (dataset, splits, the G scored); updated.
    start: time.time() when the evaluation began, for the record's `seconds`.

  Returns:
    `record` with the result.
  """
  result = parzen.evaluate(flat(test), flat(valid), flat(samples), tuple(p.sigmas))
  record.update(
      mean_ll=result.mean_ll, std_err=result.std_err, sigma=result.sigma,
      sigmas=[float(s) for s in result.sigmas], valid_ll=[float(v) for v in result.valid_ll],
      n_samples=result.n_samples, n_valid=result.n_valid, n_test=result.n_test,
      seconds=round(time.time() - start, 1))
  return record


def score_generator(exp, g_params, valid, test, record: dict, start: float) -> dict:
  """The protocol on G's samples: `num_samples` of them drawn with the key config.eval.parzen.seed
  (the same for every run and seed, so that the samples differ only by G)."""
  p = exp.config.eval.parzen
  samples = exp.generate(g_params, p.num_samples, jax.random.key(p.seed), p.batch_size)
  return protocol(p, samples, valid, test, record, start)


def evaluate_seeds(exp, g_params, head: dict, valid, test, workdir: str, name: str,
                   stopped: dict, start: float) -> dict:
  """Each seed of a run of several scored as a run of that seed alone would be.

  Seed s's G is its slice of the stacked `g_params`; its record (the one its single-seed run,
  --config.seed=s, writes) goes to seed_<s>/`name`, and a seed that went non-finite in training
  (scored at the parameters it froze at) says so under 'stopped'. The summary goes to
  parzen_seeds[_step_N][suffix].json in `workdir`.

  Args:
    exp: the stacked run's Experiment.
    g_params: G's parameters with the leading seed axis.
    head: the record's fields before the result (as `evaluate` builds them).
    valid, test: the protocol's images.
    workdir: the run's directory.
    name: the per-seed file name.
    stopped: {str(seed): [step, quantity]} from the checkpoint's host record.
    start: time.time() when the evaluation began.

  Returns:
    The summary (see `seeds_summary`).
  """
  records = []
  for i, seed in enumerate(exp.seeds):
    record = dict(head)
    if str(seed) in stopped:
      record['stopped'] = stopped_info(stopped[str(seed)])
    record = score_generator(exp, state_lib.seed_slice(g_params, i), valid, test, record,
                             time.time())
    path = os.path.join(workdir_lib.seed_dir(workdir, seed), name)
    writers.write_json(path, record, indent=2)
    logging.info('Seed %d: %s', seed, summary_line(record, path))
    records.append(record)
  summary = seeds_summary(exp.seeds, records, name)
  summary['seconds'] = round(time.time() - start, 1)
  path = os.path.join(workdir, name.replace('parzen', 'parzen_seeds', 1))
  writers.write_json(path, summary, indent=2)
  line = seeds_summary_line(summary, path)
  logging.info(line)
  print(line)
  return summary


def stopped_info(entry) -> dict:
  """A checkpoint host record's [step, quantity] for a stopped seed, spelt out."""
  at, quantity = entry
  return {'nonfinite_at_step': int(at), 'quantity': quantity, 'params_from_step': int(at) - 1}


def across_seeds(values) -> dict:
  """Mean and sample standard deviation (ddof=1; None for a single value) of per-seed numbers."""
  values = np.asarray(values, np.float64)
  sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
  return {'mean_ll': float(np.mean(values)), 'sd_ll': sd, 'sd_ddof': 1, 'n_seeds': len(values)}


def seeds_summary(seeds: list[int], records: list[dict], name: str) -> dict:
  """parzen_seeds.json: the per-seed results and their mean and sd across seeds.

  Layout: dataset, splits, `sample_seed` (config.eval.parzen.seed), `step`, the G variant
  (g_average/averaged_steps or g_ema), n_samples/n_valid/n_test, `seeds`, `per_seed` (one entry
  per seed: seed, mean_ll, std_err, sigma, step, its record's path in the run, and `stopped`
  where it went non-finite), then mean_ll, sd_ll (ddof 1), sd_ddof, n_seeds over all seeds, the
  `stopped` seeds ({seed: ...}, {} when none) and, when some stopped, the same statistics over
  the others as `unstopped`.
  """
  first = records[0]
  summary = {'dataset': first['dataset'], 'valid_split': first['valid_split'],
             'test_split': first['test_split'], 'sample_seed': first['seed'],
             'step': first['step']}
  summary.update({k: first[k] for k in ('g_average', 'averaged_steps', 'g_ema') if k in first})
  summary.update({k: first[k] for k in ('n_samples', 'n_valid', 'n_test')})
  per_seed = []
  for seed, r in zip(seeds, records):
    entry = {'seed': seed, 'mean_ll': r['mean_ll'], 'std_err': r['std_err'], 'sigma': r['sigma'],
             'step': r['step'], 'record': os.path.join(workdir_lib.seed_dir('', seed), name)}
    if 'stopped' in r:
      entry['stopped'] = r['stopped']
    per_seed.append(entry)
  summary.update(seeds=list(seeds), per_seed=per_seed)
  summary.update(across_seeds([r['mean_ll'] for r in records]))
  summary['stopped'] = {str(e['seed']): e['stopped'] for e in per_seed if 'stopped' in e}
  if summary['stopped']:
    summary['unstopped'] = dict(
        seeds=[e['seed'] for e in per_seed if 'stopped' not in e],
        **across_seeds([e['mean_ll'] for e in per_seed if 'stopped' not in e]))
  return summary


def _source(record: dict) -> str:
  """What the record scored, in words."""
  if record['samples'] == 'training images':
    return 'training images'
  if record.get('g_ema'):
    return f'the EMA of G at step {record["step"]}'
  if 'averaged_steps' in record:
    return (f'G averaged over {len(record["averaged_steps"])} checkpoints, steps '
            f'{record["averaged_steps"][0]}-{record["step"]}')
  return f'step {record["step"]}'


def summary_line(record: dict, path: str) -> str:
  return (f'Parzen log-likelihood {record["mean_ll"]:.1f} +- {record["std_err"]:.1f} nats '
          f'(sigma {record["sigma"]:.3f}, {record["n_samples"]} samples from {_source(record)}, '
          f'{record["n_test"]} test images) -> {path}')


def seeds_summary_line(summary: dict, path: str) -> str:
  per_seed = ', '.join(f'{e["mean_ll"]:.1f}' for e in summary['per_seed'])
  stopped = ''.join(
      f'; seed {s} stopped early (non-finite {v["quantity"]} at step {v["nonfinite_at_step"]}), '
      f'scored at its step-{v["params_from_step"]} parameters'
      for s, v in summary['stopped'].items())
  return (f'Parzen log-likelihood over seeds {summary["seeds"]}: {summary["mean_ll"]:.1f} +- '
          f'{summary["sd_ll"]:.1f} nats (mean +- sd across seeds, ddof 1; per seed '
          f'{per_seed}{stopped}; {summary["n_samples"]} samples each from '
          f'{_source(dict(summary, samples="generator"))}, '
          f'{summary["n_test"]} test images) -> {path}')


def _report(record: dict, path: str) -> dict:
  """Writes a single run's record to `path` and prints its summary line."""
  writers.write_json(path, record, indent=2)
  line = summary_line(record, path)
  logging.info(line)
  print(line)
  return record


def check_num_seeds(config, workdir: str) -> None:
  """A clear error when the config's num_seeds is not the run's (its checkpoints would not fit:
  a run of several seeds stacks them along a leading axis)."""
  trained = workdir_lib.read_config(workdir)
  if trained is not None and trained.num_seeds != config.num_seeds:
    raise ConfigError(
        f'The run in {workdir} trained {trained.num_seeds} seed(s) in one program, the config '
        f'says config.num_seeds={config.num_seeds}: pass --config.num_seeds='
        f'{trained.num_seeds} (and --config.seed={trained.seed}) to read its checkpoints.')
