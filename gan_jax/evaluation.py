"""The paper's evaluation: Parzen-window log-likelihood of test data under G's samples.

Protocol of goodfeli/adversarial's parzen_ll.py: draw `num_samples` samples from G (evaluation
mode, the training prior), choose sigma from `sigmas` by the mean log-likelihood of the first
`valid_size` validation images, report the mean log-likelihood of the whole test split at that
sigma with its standard error (std / sqrt(n), ddof 0).
"""

from __future__ import annotations

import json
import os
import time

from absl import logging
import jax
import numpy as np

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import parzen
from gan_jax import run
from gan_jax import validation
from gan_jax import writers


def flat(images: np.ndarray) -> np.ndarray:
  """Images as float32 rows, [N, H*W*C]: what the Parzen kernels take."""
  return np.asarray(images, np.float32).reshape(len(images), -1)


def training_estimate(exp: run.Experiment, g_params, valid_images: np.ndarray,
                      step: int) -> dict:
  """A cheap progress signal during training: Parzen LL of validation images, best sigma.

  Sigma is chosen on the same images it is scored on, so this is optimistic next to the
  protocol's test number; it uses a fixed noise key, so successive values are comparable.
  """
  del step
  p = exp.config.eval.parzen
  samples = exp.generate(g_params, p.train_num_samples, jax.random.key(p.seed), p.batch_size)
  sigma, curve = parzen.select_sigma(flat(valid_images[:p.train_valid_size]), flat(samples),
                                     tuple(p.sigmas))
  return {'parzen_valid': float(np.max(curve)), 'parzen_sigma': float(sigma)}


def step_json_name(step: int) -> str:
  """The file `evaluate(..., step=step)` writes into the workdir."""
  return f'parzen_step_{int(step):08d}.json'


def restore_generator(ckpt: checkpoint.Checkpointer, target, step: int | None, window: int = 0,
                      ema: bool = False):
  """G's parameters at `step` (default: newest), averaged over [step - window, step], or its EMA.

  With `window` > 0, every checkpoint in that range counts once: post-hoc Polyak averaging along
  the run's own trajectory (Yazici et al., 2019), needing no change to training, only the
  checkpoints (`config.train.keep_checkpoints`). With `ema`, the exponential moving average of G
  that training kept (`config.train.g_ema_decay`) in the checkpoint at `step`.

  Returns:
    (g_params, the step restored, the steps averaged: just [step] when window is 0).
  """
  state, restored = ckpt.restore(target, step)
  if ema:
    return g_ema_params(state, restored, ckpt.directory), restored, [restored]
  if not window:
    return state.g_params, restored, [restored]
  steps = [s for s in sorted(ckpt.manager.all_steps()) if restored - window <= s <= restored]
  if len(steps) < 2:
    raise checkpoint.CheckpointError(
        f'config.eval.parzen.g_average={window} finds only the checkpoint(s) {steps} in '
        f'[{restored - window}, {restored}]: widen it, or keep more checkpoints while training '
        '(--config.train.keep_checkpoints).')
  total = None
  for s in steps:  # In step order; `restored` is already in memory.
    g = state.g_params if s == restored else ckpt.restore(target, s)[0].g_params
    total = g if total is None else jax.tree.map(lambda a, b: a + b, total, g)
  return jax.tree.map(lambda a: a / len(steps), total), restored, steps


def g_ema_params(state, step: int, directory: str):
  """The EMA of G a restored state carries; a clear error if its run kept none."""
  if state.g_ema_params is None:
    raise checkpoint.CheckpointError(
        f'config.eval.parzen.g_ema=True, but the checkpoint at step {step} in {directory} has no '
        'EMA of G: train with --config.train.g_ema_decay=0.999 (say) to keep one, or average '
        'checkpoints post hoc with --config.eval.parzen.g_average.')
  return state.g_ema_params


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

  Returns:
    The record written to `workdir/parzen.json` (or parzen_data_as_samples.json /
    parzen_step_<step>.json; with g_average or g_ema, the name carries generator_suffix).
  """
  from gan_jax import pipeline  # pylint: disable=g-import-not-at-top  (pipeline imports run)

  config, workdir = pipeline.final_stage(config, workdir)  # Multi-stage runs: the last stage.
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
      raise data.DataError(f'data_as_samples needs {p.num_samples} training images, the split '
                           f'has {len(splits["train"])}: lower config.eval.parzen.num_samples.')
    samples = splits['train'][:p.num_samples]
    record.update(samples='training images', train_split=config.data.train_split)
    name = 'parzen_data_as_samples.json'
  else:
    exp = run.build(config, train_size=len(valid), image_shape=valid.shape[1:])
    ckpt_dir = os.path.join(workdir, 'checkpoints')
    if not os.path.isdir(ckpt_dir):
      raise checkpoint.CheckpointError(
          f'No checkpoints in {workdir}: train first (--mode=train), or point --workdir at a '
          'trained run.')
    ckpt = checkpoint.Checkpointer(ckpt_dir, read_only=True)  # Evaluation never prunes a run.
    target = exp.initial_state(None)
    window, ema = p.get('g_average', 0), p.get('g_ema', False)
    try:
      g_params, restored, averaged = restore_generator(ckpt, target, step, window, ema)
    finally:
      ckpt.close()
    if window:
      record.update(g_average=window, averaged_steps=[int(s) for s in averaged])
    if ema:
      record.update(g_ema=True)
    samples = exp.generate(g_params, p.num_samples, jax.random.key(p.seed), p.batch_size)
    record.update(samples='generator', step=int(restored))
    name = 'parzen.json' if step is None else step_json_name(restored)
    # An averaged G never overwrites the protocol's own file for the step.
    name = name.replace('.json', generator_suffix(window, ema) + '.json')
  result = parzen.evaluate(flat(test), flat(valid), flat(samples), tuple(p.sigmas))
  record.update(
      mean_ll=result.mean_ll, std_err=result.std_err, sigma=result.sigma,
      sigmas=[float(s) for s in result.sigmas], valid_ll=[float(v) for v in result.valid_ll],
      n_samples=result.n_samples, n_valid=result.n_valid, n_test=result.n_test,
      seconds=round(time.time() - start, 1))
  path = os.path.join(workdir, name)
  writers.write_json(path, record, indent=2)
  source = 'training images' if p.data_as_samples else f'step {record["step"]}'
  if record.get('g_ema'):
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
