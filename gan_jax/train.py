"""The host loop of one run: compiled chunks of steps, and between them log, sample, evaluate,
checkpoint; resume, SIGTERM and the non-finite check.

`train(config, workdir)` prepares the run (config checks, the workdir, data, the state: fresh,
warm-started or resumed) and hands it to a `Trainer`, which owns what stays fixed for the run
(the compiled chunk, the data on the devices, the writers) and passes the changing state from
call to call.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from absl import logging
import jax
import numpy as np

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import evaluation
from gan_jax import experiment
from gan_jax import models
from gan_jax import optim
from gan_jax import parallel
from gan_jax import state as state_lib
from gan_jax import train_step
from gan_jax import validation
from gan_jax import warm_start
from gan_jax import workdir as workdir_lib
from gan_jax import writers
from gan_jax.errors import TrainingError
from gan_jax.errors import WorkdirError

# The quantities whose non-finite value stops training, in the order they are reported.
_WATCHED = ('d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm')


def train(config, workdir: str, allow_config_change: bool = False) -> dict:
  """Trains one run (resuming from the newest checkpoint in `workdir`); returns the last metrics.

  Args:
    config: a single-stage experiment config (gan_jax.api dispatches staged ones).
    workdir: the run's directory (created if needed).
    allow_config_change: resume a run whose config.json differs in more than its length and
      cadence fields.
  """
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
  exp = experiment.build(config, train_images.shape[1:], len(train_images))
  logging.info('Train split %s: %d images of shape %s.', config.data.train_split,
               len(train_images), train_images.shape[1:])
  state = exp.initial_state(train_images)
  logging.info('G: %d parameters, D: %d parameters.', state_lib.param_count(state.g_params),
               state_lib.param_count(state.d_params))
  with checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'),
                               config.train.keep_checkpoints) as ckpt:
    state, pending = _starting_state(exp, state, ckpt, workdir)
    with writers.MetricWriter(workdir, enabled=lead) as metric_writer:
      metric_writer.truncate_after(int(np.asarray(parallel.host_local(state.step))))
      trainer = Trainer(exp, splits, ckpt, metric_writer, workdir)
      return trainer.run(state, pending)


def _starting_state(exp, fresh, ckpt, workdir: str):
  """The state training starts from, and the metrics its checkpoint had not logged yet.

  The newest checkpoint if there is one; else the fresh state, with G warm-started from
  another run's final G where `config.model.g_init_from` names one.
  """
  restored, step = ckpt.restore_latest(fresh)
  if restored is None:
    if exp.config.model.g_init_from:
      fresh = warm_start.init_generator_from(exp, fresh, exp.config.model.g_init_from, workdir)
    return fresh, PendingMetrics(0)
  logging.info('Resumed from the checkpoint at step %d.', step)
  if exp.spec.g_ema_decay and restored.g_ema_params is None:
    # Only with --allow_config_change (the decay is part of the run's config).
    logging.warning('The checkpoint at step %d has no EMA of G: config.train.g_ema_decay=%g '
                    'starts one from the restored G.', step, exp.spec.g_ema_decay)
    restored = jax.device_put(state_lib.with_g_ema(restored, True), exp.replicated)
  return restored, PendingMetrics.from_json(step, ckpt.pending_metrics(step))


def _refuse_dropping_g_ema(workdir: str, config) -> None:
  """A run whose checkpoints carry an EMA of G is not resumed with the EMA off.

  Dropping it would lose it from every later checkpoint (and, once the older ones are pruned,
  for good), so it takes a new workdir. Checked before anything in the workdir is written.
  """
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  if config.train.g_ema_decay or not os.path.isdir(ckpt_dir):
    return
  has_ema = False
  with checkpoint.Checkpointer(ckpt_dir, read_only=True) as ckpt:
    for step in ckpt.steps()[::-1]:  # The one a resume restores.
      try:
        has_ema = 'g_ema_params' in ckpt.saved_fields(step)
        break
      except Exception:  # pylint: disable=broad-except  (unreadable: the restore skips it)
        continue
  if has_ema:
    raise WorkdirError(
        f'--workdir {workdir} holds a run whose checkpoint at step {step} carries an EMA of G, '
        'which config.train.g_ema_decay=0 would drop: pass the decay it was trained with '
        '(--config.train.g_ema_decay, see its config.json), or use a new --workdir.')


class PendingMetrics:
  """The per-step metrics since the last log line, and the clock of that stretch.

  Checkpoints carry them (`to_json`), so that a resumed run writes exactly the lines the
  uninterrupted run would.
  """

  def __init__(self, step: int, chunks: list[dict] | None = None):
    self.chunks = list(chunks or [])
    self.first_step = step - sum(len(c['finite']) for c in self.chunks)
    self.clock = (time.time(), step)  # (time, step) at which the steps/s count starts.

  @classmethod
  def from_json(cls, step: int, saved: dict) -> PendingMetrics:
    if not saved:
      return cls(step)
    chunk = {k: np.asarray(v, bool if k == 'finite' else np.float32) for k, v in saved.items()}
    return cls(step, [chunk])

  def append(self, metrics: dict) -> None:
    self.chunks.append(metrics)

  def on_host(self, names=None) -> dict:
    """The metrics `names` (default: all) over the pending steps, [steps], as NumPy arrays."""
    if not self.chunks:
      return {}
    return {k: np.concatenate([np.atleast_1d(np.asarray(parallel.host_local(c[k])))
                               for c in self.chunks]) for k in names or self.chunks[0]}

  def to_json(self) -> dict:
    """JSON-able lists (float32 values are exact as Python floats)."""
    return {k: v.tolist() for k, v in self.on_host().items()}

  def first_bad(self) -> tuple[int, str] | None:
    """The first step whose 'finite' flag is off, and the quantity that went bad."""
    finite = self.on_host(['finite']).get('finite')
    if finite is None or finite.all():
      return None
    i = int(np.argmin(finite))
    metrics = self.on_host(_WATCHED)
    bad = [name for name in _WATCHED if not np.isfinite(metrics[name][i])]
    return self.first_step + i + 1, (bad[0] if bad else 'parameters')


class Trainer:
  """Runs the steps of one run and does the host's work at its event steps."""

  def __init__(self, exp, splits: dict, ckpt: checkpoint.Checkpointer, metric_writer,
               workdir: str):
    config = exp.config
    self.exp, self.ckpt, self.metric_writer, self.workdir = exp, ckpt, metric_writer, workdir
    self.train_size = len(splits['train'])
    self.valid_images = splits.get('valid')
    self.lead = jax.process_index() == 0
    self.devices_here = parallel.process_devices()
    self.chunk = train_step.data_parallel_chunk(exp.g_model, exp.d_model, exp.g_tx, exp.d_tx,
                                                exp.spec)
    self.images = jax.device_put(splits['train'], exp.replicated)
    self.sampler = data.EpochSampler(self.train_size, config.train.batch_size, config.seed)
    self.rng = jax.random.fold_in(jax.random.key(config.seed), 1)
    sample_key = jax.random.fold_in(jax.random.key(config.seed), 2)
    self.fixed_z = models.sample_prior(sample_key, (100, exp.spec.z_dim), config.model.prior)
    self.lr_fn = optim.learning_rate_schedule(config.optim)
    self.momentum_fn = optim.momentum_schedule(config.optim, config.train.batch_size,
                                               self.train_size)

  def run(self, state, pending: PendingMetrics) -> dict:
    """Trains from `state` to config.train.num_steps, or until SIGTERM; returns the last
    logged metrics (with `preempted_at` after a SIGTERM)."""
    t = self.exp.config.train
    step = int(np.asarray(parallel.host_local(state.step)))
    result = {}
    with _Preemption() as preemption:
      while step < t.num_steps:
        target = next_event(step, self.exp.config)
        while step < target and not preemption.requested:
          count = t.steps_per_call if target - step >= t.steps_per_call else 1
          state, metrics = self._steps(state, step, count)  # Two compiled lengths only.
          pending.append(metrics)
          step += count
        if step == target:
          result = self._event(state, step, pending, result)
          if self._is_log_step(step):
            pending = PendingMetrics(step)
        if preemption.requested:
          self._check_finite(pending)
          self.ckpt.save(step, state, pending.to_json(), force=True)
          self.ckpt.wait()
          logging.warning('SIGTERM: saved a checkpoint at step %d in %s; exiting. Run the same '
                          'command to resume.', step, self.ckpt.directory)
          return dict(result, preempted_at=step)
    self.ckpt.wait()
    return result

  def _steps(self, state, first: int, count: int):
    """`count` steps from step `first`, in one compiled call; (state, metrics [count])."""
    per_step = self.exp.spec.minibatches_per_step
    num_devices = jax.device_count()
    local_batch = self.exp.config.train.batch_size // num_devices
    # Indices of the global batches, [count, per_step, B]; each device takes its slice of B,
    # and this process feeds its own devices.
    idx = self.sampler.indices(first * per_step, count * per_step)
    idx = idx.reshape(count, per_step, num_devices, local_batch).transpose(2, 0, 1, 3)
    return self.chunk(state, self.images, idx[self.devices_here], self.rng)

  def _is_log_step(self, step: int) -> bool:
    t = self.exp.config.train
    return step % t.log_every == 0 or step == t.num_steps

  def _due(self, step: int, every: int) -> bool:
    return bool(every) and (step % every == 0 or step == self.exp.config.train.num_steps)

  def _event(self, state, step: int, pending: PendingMetrics, result: dict) -> dict:
    """What the host does at an event step: check, log, sample, evaluate, checkpoint."""
    config = self.exp.config
    self._check_finite(pending)
    if self._is_log_step(step):
      result = self._log(step, pending)
    if self.lead and self._due(step, config.train.sample_every):
      samples = self.exp.g_apply(parallel.host_local(state.g_params), self.fixed_z)
      grid = writers.image_grid(np.asarray(samples), rows=10,
                                normalisation=config.data.preprocessing)
      writers.save_png(os.path.join(self.workdir, 'samples', f'step_{step:08d}.png'), grid)
    if self._due(step, config.eval.every):
      estimate = evaluation.training_estimate(self.exp, parallel.host_local(state.g_params),
                                              self.valid_images)
      self.metric_writer.write(step, estimate)
      logging.info('step %d  Parzen estimate on validation: %.1f nats (sigma %.3f)', step,
                   estimate['parzen_valid'], estimate['parzen_sigma'])
      result.update(estimate)
    if self._due(step, config.train.checkpoint_every):
      self.ckpt.save(step, state, {} if self._is_log_step(step) else pending.to_json())
    return result

  def _log(self, step: int, pending: PendingMetrics) -> dict:
    """Writes the mean of the pending metrics (and the schedules, speed, epoch) and the
    progress line; returns what it wrote."""
    t = self.exp.config.train
    per_step = self.exp.spec.minibatches_per_step
    result = {k: float(np.mean(v)) for k, v in pending.on_host().items() if k != 'finite'}
    since, since_step = pending.clock
    steps_per_sec = (step - since_step) / max(time.time() - since, 1e-9)
    result.update(lr=float(self.lr_fn(step * per_step)),
                  momentum=float(self.momentum_fn(step * per_step)),
                  steps_per_sec=steps_per_sec,
                  epoch=step * per_step * t.batch_size / self.train_size)
    self.metric_writer.write(step, result)
    eta = (t.num_steps - step) / max(steps_per_sec, 1e-9)
    logging.info('step %d/%d  %.1f steps/s  ETA %s  d_loss %.4f  g_loss %.4f  V %.4f  '
                 'D(x) %.3f  D(G(z)) %.3f', step, t.num_steps, steps_per_sec, _hms(eta),
                 result['d_loss'], result['g_loss'], result['value'], result['d_real'],
                 result['d_fake'])
    return result

  def _check_finite(self, pending: PendingMetrics) -> None:
    bad = pending.first_bad()
    if bad is not None:
      self.ckpt.wait()
      raise TrainingError(
          f'Non-finite {bad[1]} at step {bad[0]}: training stopped; the last good checkpoint '
          f'(step {self.ckpt.latest_step()}) is kept in {self.ckpt.directory}. Lower the '
          'learning rate or change the seed, then rerun to resume from it.')


def next_event(step: int, config) -> int:
  """The next step at which the host has something to do (log, sample, save, eval, stop)."""
  t = config.train
  intervals = [t.log_every, t.checkpoint_every, t.sample_every]
  if config.eval.every:
    intervals.append(config.eval.every)
  return min(min((step // i + 1) * i for i in intervals), t.num_steps)


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
