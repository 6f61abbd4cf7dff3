"""The host loop of one run: compiled chunks of steps, and between them log, sample, evaluate,
checkpoint; resume, SIGTERM and the non-finite check.

`train(config, workdir)` prepares the run (config checks, the workdir, data, the state: fresh,
warm-started or resumed) and hands it to a `Trainer`, which owns what stays fixed for the run
(the compiled chunk, the data on the devices, the writers) and passes the changing state from
call to call. With several members (seeds, config.num_seeds, for each value of a sweep,
config.sweep) the state has a leading member axis, each member writes its own folder
(`<workdir>/seed_<s>/`, or `<workdir>/<field>=<value>/seed_<s>/`) as a run of its own, and a
member whose step goes non-finite stops alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

from absl import logging
import jax
import numpy as np

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import experiment
from gan_jax import models
from gan_jax import modes_protocol
from gan_jax import optim
from gan_jax import parallel
from gan_jax import parzen_protocol
from gan_jax import progress
from gan_jax import quality_protocol
from gan_jax import state as state_lib
from gan_jax import train_step
from gan_jax import validation
from gan_jax import warm_start
from gan_jax import workdir as workdir_lib
from gan_jax import writers
from gan_jax.errors import TrainingError
from gan_jax.errors import WorkdirError


@dataclasses.dataclass
class SeedOutput:
  """Where one member's logs and samples go: the run's workdir, or the member's folder in it."""
  member: workdir_lib.Member
  directory: str
  metric_writer: writers.MetricWriter


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
  one = state_lib.seed_slice(state, 0) if exp.stacked else state
  logging.info('G: %d parameters, D: %d parameters%s.', state_lib.param_count(one.g_params),
               state_lib.param_count(one.d_params),
               f'; {len(exp.members)} members in one program ({", ".join(map(str, exp.members))}'
               f'; member_axis {exp.member_axis})' if exp.stacked else '')
  with checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'),
                               config.train.keep_checkpoints) as ckpt:
    state, host = _starting_state(exp, state, ckpt, workdir)
    step = int(np.asarray(parallel.host_local(state.step)).max())
    with contextlib.ExitStack() as stack:
      outputs = []
      for member in exp.members:
        directory = os.path.join(workdir, member.name) if exp.stacked else workdir
        if exp.stacked:  # Each member's folder is laid out as a run of that member alone.
          alone = workdir_lib.member_config(config, member.seed, member.value)
          workdir_lib.prepare(directory, alone, write=lead, allow_new_config=True)
        metric_writer = stack.enter_context(writers.MetricWriter(directory, enabled=lead))
        metric_writer.truncate_after(step)
        outputs.append(SeedOutput(member, directory, metric_writer))
      trainer = Trainer(exp, splits, ckpt, outputs)
      keys = {str(m.key): m.key for m in exp.members}  # The host record's keys are strings.
      return trainer.run(state, progress.PendingMetrics.from_json(step, host.get('pending')),
                         {keys[k]: tuple(v) for k, v in host.get('stopped', {}).items()})


def _starting_state(exp, fresh, ckpt, workdir: str):
  """The state training starts from, and the loop's record its checkpoint carries.

  The newest checkpoint if there is one; else the fresh state, with G warm-started from
  another run's final G where `config.model.g_init_from` names one.
  """
  restored, step = ckpt.restore_latest(fresh)
  if restored is None:
    if exp.config.model.g_init_from:
      fresh = warm_start.init_generator_from(exp, fresh, exp.config.model.g_init_from, workdir)
    return fresh, {}
  logging.info('Resumed from the checkpoint at step %d.', step)
  if exp.spec.g_ema and restored.g_ema_params is None:
    # Only with --allow_config_change (the decay is part of the run's config).
    logging.warning('The checkpoint at step %d has no EMA of G: config.train.g_ema_decay=%g '
                    'starts one from the restored G.', step, exp.config.train.g_ema_decay)
    restored = jax.device_put(state_lib.with_g_ema(restored, True), exp.replicated)
  return restored, ckpt.host_record(step)


def _refuse_dropping_g_ema(workdir: str, config) -> None:
  """A run whose checkpoints carry an EMA of G is not resumed with the EMA off.

  Dropping it would lose it from every later checkpoint (and, once the older ones are pruned,
  for good), so it takes a new workdir. Checked before anything in the workdir is written.
  """
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  if experiment.step_spec(config).g_ema or not os.path.isdir(ckpt_dir):
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


class Trainer:
  """Runs the steps of one run and does the host's work at its event steps."""

  def __init__(self, exp, splits: dict, ckpt: checkpoint.Checkpointer,
               outputs: list[SeedOutput]):
    config = exp.config
    self.exp, self.ckpt, self.outputs = exp, ckpt, outputs
    self.train_size = len(splits['train'])
    self.valid_images = splits.get('valid')
    self.points = splits['train'].shape[1:3] == (1, 1)
    self.lead = jax.process_index() == 0
    self.devices_here = parallel.process_devices()
    self.own_hypers = exp.hypers()[1]  # Each member's where they differ (a sweep's field).
    self.chunk = exp.parallel_chunk()
    self.images = jax.device_put(splits['train'], exp.replicated)
    self.samplers = [data.EpochSampler(self.train_size, config.train.batch_size, seed)
                     for seed in exp.seeds]
    rngs = [jax.random.fold_in(jax.random.key(seed), 1) for seed in exp.seeds]
    self.rng = jax.numpy.stack(rngs) if exp.stacked else rngs[0]
    self.fixed_z = [models.sample_prior(jax.random.fold_in(jax.random.key(seed), 2),
                                        (100, exp.spec.z_dim), config.model.prior)
                    for seed in exp.seeds]
    # Each member's schedules, for its log (a sweep's members have their own numbers).
    each = [optim.hypers(workdir_lib.member_config(config, o.member.seed, o.member.value).optim)
            for o in outputs]
    self.lr_fns = [optim.learning_rate_schedule(h) for h in each]
    self.momentum_fns = [optim.momentum_schedule(h, config.optim, config.train.batch_size,
                                                 self.train_size) for h in each]

  def run(self, state, pending: progress.PendingMetrics, stopped: dict) -> dict:
    """Trains from `state` to config.train.num_steps, or until SIGTERM.

    Args:
      state: the state to start from (stacked with several seeds).
      pending: the metrics its checkpoint had not logged yet.
      stopped: {member.key: (step, quantity)} of the members that went non-finite before.

    Returns:
      The last logged metrics (with `preempted_at` after a SIGTERM); with several members,
      {'seeds': {member.key: metrics}, 'stopped': stopped}.
    """
    t = self.exp.config.train
    step = int(np.asarray(parallel.host_local(state.step)).max())
    results = {out.member.key: {} for out in self.outputs}
    # Placed as the chunk returns it: a NumPy `active` would compile the first call apart.
    active = jax.device_put(np.array([out.member.key not in stopped for out in self.outputs]),
                            self.exp.replicated)
    with progress.Preemption() as preemption:
      while step < t.num_steps:
        target = progress.next_event(step, self.exp.config)
        while step < target and not preemption.requested:
          count = t.steps_per_call if target - step >= t.steps_per_call else 1
          state, active, metrics = self._steps(state, step, count, active)  # Two lengths only.
          pending.append(metrics)
          step += count
        if step == target:
          self._event(state, step, pending, results, stopped)
          if self._is_log_step(step):
            pending = progress.PendingMetrics(step)
        if preemption.requested:
          self._check_finite(pending, stopped)
          self.ckpt.save(step, state, self._host_record(pending, stopped), force=True)
          self.ckpt.wait()
          logging.warning('SIGTERM: saved a checkpoint at step %d in %s; exiting. Run the same '
                          'command to resume.', step, self.ckpt.directory)
          return dict(self._result(results, stopped), preempted_at=step)
    self.ckpt.wait()
    if stopped:
      raise TrainingError(
          f'{_stopped_names(stopped)} stopped early ({_stopped_text(stopped)}); the others ran '
          f'to step {step}. Their files are kept: rerun them with another seed or a lower lr.')
    return self._result(results, stopped)

  def _result(self, results: dict, stopped: dict) -> dict:
    if not self.exp.stacked:
      return results[self.outputs[0].member.key]
    return {'seeds': results, 'stopped': dict(stopped)}

  def _host_record(self, pending: progress.PendingMetrics, stopped: dict) -> dict:
    record = {'pending': pending.to_json()}
    if self.exp.stacked:
      record['stopped'] = {str(s): list(v) for s, v in stopped.items()}
    return record

  def _steps(self, state, first: int, count: int, active):
    """`count` steps from step `first` in one compiled call: (state, active, metrics)."""
    # Each device takes its slice of every global batch; this process feeds its own devices.
    idx = train_step.chunk_indices(self.samplers, first, count, self.exp.spec.minibatches_per_step,
                                   self.exp.config.train.batch_size)[self.devices_here]
    if not self.exp.stacked:
      state, metrics = self.chunk(state, self.images, idx, self.rng)
      return state, active, metrics
    (state, active), metrics = self.chunk(state, self.images, idx, (self.rng, self.own_hypers),
                                          active)
    return state, active, metrics

  def _is_log_step(self, step: int) -> bool:
    t = self.exp.config.train
    return step % t.log_every == 0 or step == t.num_steps

  def _due(self, step: int, every: int) -> bool:
    return bool(every) and (step % every == 0 or step == self.exp.config.train.num_steps)

  def _event(self, state, step: int, pending, results: dict, stopped: dict) -> None:
    """What the host does at an event step: check, log, sample, evaluate, checkpoint."""
    config = self.exp.config
    self._check_finite(pending, stopped)
    if self._is_log_step(step):
      self._log(step, pending, results, stopped)
    all_g_params = parallel.host_local(state.g_params)
    for i, out in enumerate(self.outputs):
      if out.member.key in stopped:
        continue
      g_params = state_lib.seed_slice(all_g_params, i) if self.exp.stacked else all_g_params
      # Point data (toy1d, the mixtures) have no image to tile: their figures draw them.
      if self.lead and not self.points and self._due(step, config.train.sample_every):
        samples = self.exp.g_apply(g_params, self.fixed_z[i])
        grid = writers.image_grid(np.asarray(samples), rows=10,
                                  normalisation=config.data.preprocessing)
        writers.save_png(os.path.join(out.directory, 'samples', f'step_{step:08d}.png'), grid)
      if self._due(step, config.eval.every):
        estimate = parzen_protocol.training_estimate(self.exp, g_params, self.valid_images)
        quality = ''
        if config.eval.sample_quality.in_training:
          estimate.update(quality_protocol.training_estimate(self.exp, g_params,
                                                             self.valid_images))
          quality = f'; FID {estimate["fid_valid"]:.3g}, KID {estimate["kid_valid"]:.3g}'
        out.metric_writer.write(step, estimate)
        logging.info('step %d  %sParzen estimate on validation: %.1f nats (sigma %.3f)%s', step,
                     f'{out.member}  ' if self.exp.stacked else '',
                     estimate['parzen_valid'], estimate['parzen_sigma'], quality)
        results[out.member.key].update(estimate)
      if self._due(step, config.eval.modes.every):
        results[out.member.key].update(self._modes(out, g_params, step))
    if self._due(step, config.train.checkpoint_every):
      unlogged = progress.PendingMetrics(step) if self._is_log_step(step) else pending
      self.ckpt.save(step, state, self._host_record(unlogged, stopped))

  def _modes(self, out: SeedOutput, g_params, step: int) -> dict:
    """The modes score (--config.eval.method=modes's, same samples) of one seed's G, logged."""
    estimate = modes_protocol.training_estimate(self.exp, g_params)
    out.metric_writer.write(step, estimate)
    logging.info('step %d  %s%s', step, f'{out.member}  ' if self.exp.stacked else '',
                 modes_protocol.describe_estimate(estimate))
    return estimate

  def _log(self, step: int, pending, results: dict, stopped: dict) -> None:
    """Writes each seed's mean of the pending metrics (and the schedules, speed, epoch) and the
    progress line."""
    t = self.exp.config.train
    per_step = self.exp.spec.minibatches_per_step
    host = pending.on_host()
    since, since_step = pending.clock
    steps_per_sec = (step - since_step) / max(time.time() - since, 1e-9)
    common = dict(steps_per_sec=steps_per_sec,
                  epoch=step * per_step * t.batch_size / self.train_size)
    for i, out in enumerate(self.outputs):
      if out.member.key in stopped:
        continue
      column = (lambda v: v[:, i]) if self.exp.stacked else (lambda v: v)
      result = {k: float(np.mean(column(v))) for k, v in host.items() if k != 'finite'}
      result.update(lr=float(self.lr_fns[i](step * per_step)),
                    momentum=float(self.momentum_fns[i](step * per_step)), **common)
      out.metric_writer.write(step, result)
      results[out.member.key] = result
    shown = [results[out.member.key] for out in self.outputs if out.member.key not in stopped]
    mean = {k: float(np.mean([r[k] for r in shown])) for k in progress.LOGGED}
    eta = (t.num_steps - step) / max(steps_per_sec, 1e-9)
    seeds = f'  ({len(shown)} members, means)' if self.exp.stacked else ''
    logging.info('step %d/%d  %.1f steps/s  ETA %s  d_loss %.4f  g_loss %.4f  V %.4f  '
                 'D(x) %.3f  D(G(z)) %.3f%s', step, t.num_steps, steps_per_sec,
                 progress.hms(eta), mean['d_loss'], mean['g_loss'], mean['value'],
                 mean['d_real'], mean['d_fake'], seeds)

  def _check_finite(self, pending, stopped: dict) -> None:
    """Single seed: a non-finite step stops the run. Several: it stops that seed (recorded in
    `stopped`), and the run only when none is left."""
    if not self.exp.stacked:
      bad = pending.first_bad()
      if bad is not None:
        self.ckpt.wait()
        raise TrainingError(
            f'Non-finite {bad[1]} at step {bad[0]}: training stopped; the last good checkpoint '
            f'(step {self.ckpt.latest_step()}) is kept in {self.ckpt.directory}. Lower the '
            'learning rate or change the seed, then rerun to resume from it.')
      return
    for i, out in enumerate(self.outputs):
      bad = None if out.member.key in stopped else pending.first_bad(i)
      if bad is not None:
        stopped[out.member.key] = bad
        logging.warning('%s: non-finite %s at step %d: it stops there (its state kept from '
                        'step %d, its files in %s); the others go on.',
                        str(out.member).capitalize(), bad[1], bad[0], bad[0] - 1, out.directory)
    if len(stopped) == len(self.outputs):
      self.ckpt.wait()
      raise TrainingError(f'Every seed went non-finite ({_stopped_text(stopped)}): training '
                          'stopped. Lower the learning rate or change the seeds.')


def _stopped_names(stopped: dict) -> str:
  """'Seeds [3, 4]', or in a sweep 'Members [<field>=<value>/seed_<s>, ...]'."""
  keys = sorted(stopped)
  return f'Seeds {keys}' if all(isinstance(k, int) for k in keys) else f'Members {keys}'


def _stopped_text(stopped: dict) -> str:
  return ', '.join(f'seed {s}: {q} at step {t}' if isinstance(s, int) else f'{s}: {q} at step {t}'
                   for s, (t, q) in sorted(stopped.items()))

