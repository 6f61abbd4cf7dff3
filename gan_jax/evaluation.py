"""The paper's evaluation: Parzen-window log-likelihood of test data under G's samples.

Protocol of goodfeli/adversarial's parzen_ll.py: draw `num_samples` samples from G (evaluation
mode, the training prior), choose sigma from `sigmas` by the mean log-likelihood of the first
`valid_size` validation images, report the mean log-likelihood of the whole test split at that
sigma with its standard error (std / sqrt(n), ddof 0).
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
from gan_jax import validation
from gan_jax import writers
from gan_jax.errors import CheckpointError
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

  Args:
    config: a single-stage config (gan_jax.api picks a staged experiment's last stage).
    workdir: the run's directory.
    step: the checkpoint to score (default: the newest readable).

  Returns:
    The record written to `workdir/parzen.json` (or parzen_data_as_samples.json /
    parzen_step_<step>.json; with g_average or g_ema, the name carries generator_suffix).
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
    samples = splits['train'][:p.num_samples]
    record.update(samples='training images', train_split=config.data.train_split)
    name = 'parzen_data_as_samples.json'
  else:
    exp = experiment.build(config, valid.shape[1:])
    with checkpoint.Checkpointer.of_run(workdir) as ckpt:
      g_params, restored, averaged = restore_generator(ckpt, exp.g_shapes(), step, p.g_average,
                                                       p.g_ema)
    if p.g_average:
      record.update(g_average=p.g_average, averaged_steps=[int(s) for s in averaged])
    if p.g_ema:
      record.update(g_ema=True)
    samples = exp.generate(g_params, p.num_samples, jax.random.key(p.seed), p.batch_size)
    record.update(samples='generator', step=int(restored))
    name = 'parzen.json' if step is None else step_json_name(restored)
    # An averaged G never overwrites the protocol's own file for the step.
    name = name.replace('.json', generator_suffix(p.g_average, p.g_ema) + '.json')
  result = parzen.evaluate(flat(test), flat(valid), flat(samples), tuple(p.sigmas))
  record.update(
      mean_ll=result.mean_ll, std_err=result.std_err, sigma=result.sigma,
      sigmas=[float(s) for s in result.sigmas], valid_ll=[float(v) for v in result.valid_ll],
      n_samples=result.n_samples, n_valid=result.n_valid, n_test=result.n_test,
      seconds=round(time.time() - start, 1))
  path = os.path.join(workdir, name)
  writers.write_json(path, record, indent=2)
  source = 'training images' if p.data_as_samples else f'step {record["step"]}'
  if p.g_ema and not p.data_as_samples:
    source = f'the EMA of G at step {record["step"]}'
  if 'averaged_steps' in record:
    source = (f'G averaged over {len(record["averaged_steps"])} checkpoints, steps '
              f'{record["averaged_steps"][0]}-{record["step"]}')
  summary = (f'Parzen log-likelihood {result.mean_ll:.1f} +- {result.std_err:.1f} nats '
             f'(sigma {result.sigma:.3f}, {result.n_samples} samples from {source}, '
             f'{result.n_test} test images) -> {path}')
  logging.info(summary)
  print(summary)
  return record
