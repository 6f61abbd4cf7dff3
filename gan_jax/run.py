"""Builds everything from a config and owns the host loop: train, log, sample, checkpoint, evaluate."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

from absl import logging
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import models
from gan_jax import optim
from gan_jax import state as state_lib
from gan_jax import train_step
from gan_jax import validation
from gan_jax import workdir as workdir_lib
from gan_jax import writers
from gan_jax.errors import TrainingError


@dataclasses.dataclass
class Experiment:
  """Everything built from a config, shared by training, evaluation and figures."""
  config: object
  g_model: object
  d_model: object
  g_tx: object
  d_tx: object
  spec: train_step.StepSpec
  image_shape: tuple
  devices: list
  replicated: NamedSharding

  def __post_init__(self):
    self.g_apply = jax.jit(self.g_model.apply)  # G in evaluation mode (it has no dropout).

  def initial_state(self, train_images: np.ndarray | None):
    key = jax.random.key(self.config.seed)
    bias_images = train_images if self.config.model.g_output_bias_from_marginals else None
    state = state_lib.create_state(key, self.g_model, self.d_model, self.g_tx, self.d_tx,
                                   self.spec.z_dim, self.image_shape, bias_images,
                                   self.spec.g_ema_decay)
    return jax.device_put(state, self.replicated)

  def generate(self, g_params, num: int, key, batch_size: int = 1000) -> np.ndarray:
    """Draws `num` samples from G in evaluation mode, as float32 [num, H, W, C] on the host."""
    out = []
    for i, start in enumerate(range(0, num, batch_size)):
      n = min(batch_size, num - start)
      z = models.sample_prior(jax.random.fold_in(key, i), (n, self.spec.z_dim), self.spec.prior)
      out.append(np.asarray(self.g_apply(g_params, z)))
    return np.concatenate(out)


def build(config, train_size: int, image_shape) -> Experiment:
  """Builds the models, optimisers and step settings for `config`."""
  devices = jax.local_devices()
  spec = train_step.StepSpec(
      update=config.train.update_rule, k_steps=config.train.k_steps,
      generator_loss=config.train.generator_loss, z_dim=config.model.z_dim,
      prior=config.model.prior, max_col_norm=config.optim.max_col_norm,
      # .get: configs rebuilt from the config.json of a run older than the field.
      g_ema_decay=float(config.train.get('g_ema_decay', 0.0)))
  batch = config.train.batch_size
  mesh = Mesh(np.array(jax.devices()), ('batch',))
  return Experiment(
      config=config,
      g_model=models.build_generator(config.model, image_shape),
      d_model=models.build_discriminator(config.model),
      g_tx=optim.build_optimizer(config.optim, batch, train_size),
      d_tx=optim.build_optimizer(config.optim, batch, train_size),
      spec=spec,
      image_shape=tuple(image_shape),
      devices=devices,
      replicated=NamedSharding(mesh, PartitionSpec()))


def _next_event(step: int, config) -> int:
  """The next step at which the host has something to do (log, sample, save, eval, stop)."""
  t = config.train
  intervals = [t.log_every, t.checkpoint_every, t.sample_every]
  if config.eval.every:
    intervals.append(config.eval.every)
  nxt = min((step // i + 1) * i for i in intervals)
  return min(nxt, t.num_steps)


def _first_bad(pending: list[dict], first_step: int) -> tuple[int, str] | None:
  """Finds the first step whose 'finite' flag is off, and the quantity that went bad."""
  step = first_step
  for chunk in pending:
    flags = to_host(chunk['finite'])
    for i, ok in enumerate(flags):
      if not ok:
        for name in ('d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm'):
          if not np.isfinite(to_host(chunk[name])[i]):
            return step + i + 1, name
        return step + i + 1, 'parameters'
    step += len(flags)
  return None


def train_and_evaluate(config, workdir: str, allow_config_change: bool = False) -> dict:
  """Trains (resuming from the newest checkpoint in `workdir`) and returns the last metrics.

  Args:
    config: the experiment config.
    workdir: the run's directory (created if needed).
    allow_config_change: resume a run whose config.json differs in more than its length and
      cadence fields.
  """
  if config.get('stages'):  # A multi-stage experiment (e.g. TFD): one run per stage.
    from gan_jax import pipeline  # pylint: disable=g-import-not-at-top
    return pipeline.train_stages(config, workdir, allow_config_change)
  num_devices = jax.device_count()
  validation.validate(config, num_devices)
  data.check_available(config.data)
  lead = jax.process_index() == 0
  _refuse_dropping_g_ema(workdir, config)  # Before config.json is rewritten.
  workdir_lib.prepare(workdir, config, write=lead, allow_new_config=allow_config_change)
  logging.info('%d devices (%s), %d process(es); outputs in %s', num_devices,
               jax.devices()[0].platform, jax.process_count(), os.path.abspath(workdir))

  splits = data.load_splits(config.data, ('train', 'valid') if config.eval.every else ('train',))
  train_images = splits['train']
  exp = build(config, len(train_images), train_images.shape[1:])
  logging.info('Train split %s: %d images of shape %s.', config.data.train_split,
               len(train_images), train_images.shape[1:])

  state = exp.initial_state(train_images)
  logging.info('G: %d parameters, D: %d parameters.', state_lib.param_count(state.g_params),
               state_lib.param_count(state.d_params))
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                 config.train.keep_checkpoints)
  if config.model.get('g_init_from') and ckpt.latest_step() is None:
    from gan_jax import pipeline  # pylint: disable=g-import-not-at-top
    state = pipeline.init_generator_from(exp, state, config.model.g_init_from, workdir)
  restored, restored_step = ckpt.restore_latest(state)
  if restored is not None:
    logging.info('Resumed from the checkpoint at step %d.', restored_step)
    if exp.spec.g_ema_decay and restored.g_ema_params is None:
      # Only with --allow_config_change (the decay is part of the run's config).
      logging.warning('The checkpoint at step %d has no EMA of G: config.train.g_ema_decay=%g '
                      'starts one from the restored G.', restored_step, exp.spec.g_ema_decay)
      restored = jax.device_put(state_lib.with_g_ema(restored, True), exp.replicated)
    state = restored
  step = int(to_host(state.step))

  metric_writer = writers.MetricWriter(workdir, enabled=lead)
  metric_writer.truncate_after(step)
  result = _train_loop(exp, state, step, train_images, splits.get('valid'), ckpt,
                       metric_writer, workdir, lead)
  metric_writer.close()
  ckpt.close()
  return result


def _refuse_dropping_g_ema(workdir: str, config) -> None:
  """A run whose checkpoints carry an EMA of G is not resumed with the EMA off.

  Dropping it would lose it from every later checkpoint (and, once the older ones are pruned,
  for good), so it takes a new workdir. Checked before anything in the workdir is written.
  """
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  if config.train.get('g_ema_decay', 0.0) or not os.path.isdir(ckpt_dir):
    return
  ckpt = checkpoint.Checkpointer(ckpt_dir, read_only=True)
  has_ema = False
  try:
    for step in sorted(ckpt.manager.all_steps(), reverse=True):  # The one a resume restores.
      try:
        has_ema = 'g_ema_params' in ckpt.saved_fields(step)
        break
      except Exception:  # pylint: disable=broad-except  (unreadable: the restore skips it)
        continue
  finally:
    ckpt.close()
  if has_ema:
    raise workdir_lib.WorkdirError(
        f'--workdir {workdir} holds a run whose checkpoint at step {step} carries an EMA of G, '
        'which config.train.g_ema_decay=0 would drop: pass the decay it was trained with '
        '(--config.train.g_ema_decay, see its config.json), or use a new --workdir.')


def _train_loop(exp, state, step, train_images, valid_images, ckpt, metric_writer, workdir,
                lead):
  config = exp.config
  t = config.train
  n_local = jax.local_device_count()
  per_step = exp.spec.minibatches_per_step
  local_batch = t.batch_size // jax.device_count()

  chunk = train_step.make_train_chunk(
      train_step.make_train_step(exp.g_model, exp.d_model, exp.g_tx, exp.d_tx, exp.spec))
  p_chunk = jax.pmap(chunk, axis_name='batch', in_axes=(None, None, 0, None),
                     out_axes=(None, None), donate_argnums=(0,))
  images = jax.device_put(train_images, exp.replicated)
  sampler = data.EpochSampler(len(train_images), t.batch_size, config.seed)
  rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  sample_key = jax.random.fold_in(jax.random.key(config.seed), 2)
  fixed_z = models.sample_prior(sample_key, (100, exp.spec.z_dim), config.model.prior)
  lr_fn = optim.learning_rate_schedule(config.optim)
  mom_fn = optim.momentum_schedule(config.optim, t.batch_size, len(train_images))
  # This process feeds its own devices, each with its own slice of every global batch.
  mine = np.array([i for i, d in enumerate(jax.devices())
                   if d.process_index == jax.process_index()])

  def run_steps(state, first, count):
    # Indices for the global batch, [count, per_step, B]; each device takes its own slice of B.
    idx = sampler.indices(first * per_step, count * per_step).reshape(count, per_step, -1)
    idx = idx.reshape(count, per_step, jax.device_count(), local_batch).transpose(2, 0, 1, 3)
    return p_chunk(state, images, idx[mine], rng)

  # Metrics of the steps since the last log line; a checkpoint carries them, so that a resumed
  # run writes exactly the lines the uninterrupted run would.
  pending = [_from_host(ckpt.host['pending'])] if ckpt.host.get('pending') else []
  pending_from = step - (len(pending[0]['finite']) if pending else 0)
  last_time, last_step = time.time(), step
  result = {}
  with _Preemption() as preemption:
    while step < t.num_steps:
      target = _next_event(step, config)
      while step < target and not preemption.requested:
        count = min(t.steps_per_call, target - step)
        if count < t.steps_per_call:
          count = 1  # Only two compiled lengths: steps_per_call and 1.
        state, metrics = run_steps(state, step, count)
        pending.append(metrics)
        step += count
      if step == target:
        result = _events(exp, state, step, pending, pending_from, ckpt, metric_writer, workdir,
                         lead, valid_images, (lr_fn, mom_fn), fixed_z, len(train_images),
                         (last_time, last_step), result)
        if step % t.log_every == 0 or step == t.num_steps:
          pending, pending_from = [], step
          last_time, last_step = time.time(), step
      if preemption.requested:
        _check_finite(pending, pending_from, ckpt)
        ckpt.save(step, state, {'pending': _to_host(pending)}, force=True)
        ckpt.wait()
        logging.warning('SIGTERM: saved a checkpoint at step %d in %s; exiting. Run the same '
                        'command to resume.', step, ckpt.directory)
        return dict(result, preempted_at=step)
  ckpt.wait()
  return result


def _events(exp, state, step, pending, pending_from, ckpt, metric_writer, workdir, lead,
            valid_images, schedules, fixed_z, train_size, last, result):
  """What the host does at an event step: check, log, sample, evaluate, checkpoint."""
  config = exp.config
  t = config.train
  per_step = exp.spec.minibatches_per_step
  lr_fn, mom_fn = schedules
  last_time, last_step = last
  _check_finite(pending, pending_from, ckpt)

  if step % t.log_every == 0 or step == t.num_steps:
    now = time.time()
    host = {k: np.concatenate([np.atleast_1d(to_host(m[k])) for m in pending])
            for k in pending[0]}
    result = {k: float(np.mean(v)) for k, v in host.items() if k != 'finite'}
    steps_per_sec = (step - last_step) / max(now - last_time, 1e-9)
    result.update(lr=float(lr_fn(step * per_step)), momentum=float(mom_fn(step * per_step)),
                  steps_per_sec=steps_per_sec, epoch=step * per_step * t.batch_size /
                  train_size)
    metric_writer.write(step, result)
    eta = (t.num_steps - step) / max(steps_per_sec, 1e-9)
    logging.info('step %d/%d  %.1f steps/s  ETA %s  d_loss %.4f  g_loss %.4f  V %.4f  '
                 'D(x) %.3f  D(G(z)) %.3f', step, t.num_steps, steps_per_sec,
                 _hms(eta), result['d_loss'], result['g_loss'], result['value'],
                 result['d_real'], result['d_fake'])

  if lead and (step % t.sample_every == 0 or step == t.num_steps):
    samples = exp.g_apply(local_copy(state.g_params), fixed_z)
    grid = writers.image_grid(np.asarray(samples), rows=10,
                              normalisation=config.data.preprocessing)
    writers.save_png(os.path.join(workdir, 'samples', f'step_{step:08d}.png'), grid)

  if config.eval.every and (step % config.eval.every == 0 or step == t.num_steps):
    from gan_jax import evaluation  # pylint: disable=g-import-not-at-top

    ll = evaluation.training_estimate(exp, local_copy(state.g_params), valid_images, step)
    metric_writer.write(step, ll)
    logging.info('step %d  Parzen estimate on validation: %.1f nats (sigma %.3f)', step,
                 ll['parzen_valid'], ll['parzen_sigma'])
    result.update(ll)

  if step % t.checkpoint_every == 0 or step == t.num_steps:
    logged = step % t.log_every == 0 or step == t.num_steps
    ckpt.save(step, state, {'pending': {} if logged else _to_host(pending)})
  return result


def to_host(x) -> np.ndarray:
  """A replicated array's value on this host (with several processes it is not fully addressable)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = x.addressable_data(0)
  return np.asarray(x)


def local_copy(tree):
  """This process's copy of a replicated pytree, for work that only one process does."""
  return jax.tree.map(
      lambda x: x.addressable_data(0) if isinstance(x, jax.Array) and not x.is_fully_addressable
      else x, tree)


def _check_finite(pending, pending_from, ckpt):
  bad = _first_bad(pending, pending_from)
  if bad is not None:
    ckpt.wait()
    raise TrainingError(
        f'Non-finite {bad[1]} at step {bad[0]}: training stopped; the last good checkpoint '
        f'(step {ckpt.latest_step()}) is kept in {ckpt.directory}. Lower the learning rate or '
        'change the seed, then rerun to resume from it.')


def _to_host(pending: list[dict]) -> dict:
  """Pending per-step metrics as JSON-able lists (float32 values are exact as Python floats)."""
  if not pending:
    return {}
  return {k: np.concatenate([np.atleast_1d(to_host(m[k])) for m in pending]).tolist()
          for k in pending[0]}


def _from_host(saved: dict) -> dict:
  return {k: np.asarray(v, bool if k == 'finite' else np.float32) for k, v in saved.items()}


class _Preemption:
  """Turns SIGTERM (the usual preemption signal) into a flag the loop checks between calls."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _hms(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'
