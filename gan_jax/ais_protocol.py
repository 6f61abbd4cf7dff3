"""AIS evaluation of a checkpoint's G (`--mode=eval --config.eval.method=ais`).

Wu, Burda, Salakhutdinov and Grosse (ICLR 2017) estimate log p(x) of a GAN's generator under a
Gaussian observation model, p(x | z) = N(G(z), obs_std^2 I), by annealed importance sampling,
and check the estimate with bidirectional Monte Carlo on data simulated from G. This module
turns `config.eval.ais` into gan_jax.ais's settings, chooses obs_std on validation images when
it is not given, scores the first `num_test` test images and writes what the record needs: mean
+- standard error, obs_std, chains, temperatures, leapfrog steps, the BDMC gap, seconds. A
progress line with an ETA is logged after every batch.
"""

from __future__ import annotations

import functools
import time

from absl import logging
import jax
from jax.tree_util import Partial

from gan_jax import ais
from gan_jax import experiment
from gan_jax import progress

NAME = 'ais'
SPLITS = ('valid', 'test')
HEADLINE = ('mean_ll',)  # Summarised across seeds (mean and sd) in ais_seeds.json.
SHARED = ('n_test', 'num_chains', 'num_temps', 'leapfrog_steps')


def settings(config) -> ais.AISSettings:
  """gan_jax.ais's settings from config.eval.ais and the model's z_dim and prior."""
  a = config.eval.ais
  return ais.AISSettings(
      z_dim=config.model.z_dim, prior=config.model.prior, num_chains=a.num_chains,
      num_temps=a.num_temps, leapfrog_steps=a.leapfrog_steps, obs_std=float(a.obs_std),
      obs_stds=tuple(float(s) for s in a.obs_stds), batch_size=a.batch_size,
      bdmc_examples=a.bdmc_examples)


def data_samples(config) -> str:
  """AIS scores a generator: no data split can stand in for its samples."""
  del config
  return ''


class _Eta:
  """Logs 'AIS: n/N images, ETA h:mm:ss' after each batch."""

  def __init__(self, what: str):
    self.what, self.start = what, time.time()

  def __call__(self, done: int, total: int) -> None:
    elapsed = time.time() - self.start
    eta = elapsed / max(done, 1) * (total - done)
    logging.info('AIS %s: %d/%d images, %s elapsed, ETA %s', self.what, done, total,
                 progress.hms(elapsed), progress.hms(eta))


def score_generator(exp: experiment.Experiment, g_params, splits: dict, record: dict) -> dict:
  """AIS log p(x) of the first config.eval.ais.num_test test images under G (obs_std chosen on
  the first valid_size validation images unless given), with the BDMC bounds; `record` updated."""
  a = exp.config.eval.ais
  # ais.evaluate flattens the images (and checks them against G's output).
  test, valid = splits['test'][:a.num_test], splits['valid'][:a.valid_size]
  # G's parameters are the Partial's traced leaves: every G of this model shares one compile.
  generator = Partial(_rows(exp.g_model), g_params)
  result = ais.evaluate(generator, test, valid, jax.random.key(a.seed), settings(exp.config),
                        progress=_Eta(f'step {record.get("step", "?")}'))
  record.update(
      seed=a.seed, mean_ll=result.mean_ll, std_err=result.std_err, obs_std=result.obs_std,
      obs_std_chosen=not a.obs_std, n_test=result.n_test, num_chains=a.num_chains,
      num_temps=a.num_temps, leapfrog_steps=a.leapfrog_steps,
      acceptance=result.accept_rate)
  if len(result.obs_stds):
    record.update(obs_stds=[float(s) for s in result.obs_stds], n_valid=result.n_valid,
                  valid_ll=[float(v) for v in result.valid_ll])
  if result.bdmc is not None:
    b = result.bdmc
    record['bdmc'] = {'lower': b.lower, 'upper': b.upper, 'gap': b.gap,
                      'n_examples': int(len(b.lower_ll))}
  return record


@functools.lru_cache(maxsize=None)
def _rows(g_model):
  """G(z) as rows [B, H*W*C], one function per model (flax modules hash by their fields)."""
  return lambda g_params, z: g_model.apply(g_params, z).reshape(z.shape[0], -1)


def per_seed_fields(record: dict) -> dict:
  out = {k: record[k] for k in ('mean_ll', 'std_err', 'obs_std')}
  if 'bdmc' in record:
    out['bdmc_gap'] = record['bdmc']['gap']
  return out


def _gap(record: dict) -> str:
  return f', BDMC gap {record["bdmc"]["gap"]:.2f} nats' if 'bdmc' in record else ''


def describe(record: dict, source: str) -> str:
  """The record's result in words (the line --mode=eval prints)."""
  return (f'AIS log-likelihood {record["mean_ll"]:.1f} +- {record["std_err"]:.1f} nats '
          f'(obs_std {record["obs_std"]:g}, {record["num_chains"]} chains x '
          f'{record["num_temps"]} temperatures x {record["leapfrog_steps"]} leapfrog steps'
          f'{_gap(record)}; G at {source}, {record["n_test"]} test images)')


def describe_seeds(summary: dict, source: str, stopped: str) -> str:
  """ais_seeds.json's result in words; `stopped` says which seeds stopped early, if any."""
  per_seed = ', '.join(f'{e["mean_ll"]:.1f}' for e in summary['per_seed'])
  return (f'AIS log-likelihood over seeds {summary["seeds"]}: {summary["mean_ll"]:.1f} +- '
          f'{summary["sd_ll"]:.1f} nats (mean +- sd across seeds, ddof 1; per seed '
          f'{per_seed}{stopped}; G at {source}, {summary["n_test"]} test images)')
