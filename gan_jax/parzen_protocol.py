"""The paper's evaluation: Parzen-window log-likelihood of test data under G's samples.

Protocol of goodfeli/adversarial's parzen_ll.py: draw `num_samples` samples from G (evaluation
mode, the training prior), choose sigma from `sigmas` by the mean log-likelihood of the first
`valid_size` validation images, report the mean log-likelihood of the whole test split at that
sigma with its standard error (std / sqrt(n), ddof 0). gan_jax.evaluation runs it on a
checkpoint (`--mode=eval`, the default `config.eval.method='parzen'`).
"""

from __future__ import annotations

import jax
import numpy as np

from gan_jax import experiment
from gan_jax import parzen

NAME = 'parzen'
SPLITS = ('valid', 'test')
HEADLINE = ('mean_ll',)  # Summarised across seeds (mean and sd) in parzen_seeds.json.
SHARED = ('n_samples', 'n_valid', 'n_test')


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


def data_samples(config) -> str:
  """The split whose images replace G's samples ('' for none): with
  `config.eval.parzen.data_as_samples`, the training images (an ideal memoriser's score)."""
  return 'train' if config.eval.parzen.data_as_samples else ''


def samples_needed(config) -> tuple[int, str]:
  """How many samples the protocol draws, and the config field that says so."""
  return config.eval.parzen.num_samples, 'config.eval.parzen.num_samples'


def score_samples(config, samples: np.ndarray, splits: dict, record: dict) -> dict:
  """The protocol from the samples on: sigma chosen on the validation images, the test set
  scored at it; `record` (dataset, splits, the G scored) updated with the result."""
  p = config.eval.parzen
  valid, test = splits['valid'][:p.valid_size], splits['test']
  result = parzen.evaluate(flat(test), flat(valid), flat(samples), tuple(p.sigmas))
  record.update(
      seed=p.seed,  # G's noise key (config.eval.parzen.seed); data as samples reports it too.
      mean_ll=result.mean_ll, std_err=result.std_err, sigma=result.sigma,
      sigmas=[float(s) for s in result.sigmas], valid_ll=[float(v) for v in result.valid_ll],
      n_samples=result.n_samples, n_valid=result.n_valid, n_test=result.n_test)
  return record


def score_generator(exp: experiment.Experiment, g_params, splits: dict, record: dict) -> dict:
  """The protocol on G's samples: `num_samples` of them drawn with the key config.eval.parzen.seed
  (the same for every run and seed, so that the samples differ only by G)."""
  p = exp.config.eval.parzen
  samples = exp.generate(g_params, p.num_samples, jax.random.key(p.seed), p.batch_size)
  return score_samples(exp.config, samples, splits, record)


def per_seed_fields(record: dict) -> dict:
  """What parzen_seeds.json's per-seed entries repeat of each seed's record."""
  return {k: record[k] for k in ('mean_ll', 'std_err', 'sigma')}


def describe(record: dict, source: str) -> str:
  """The record's result in words (the line --mode=eval prints)."""
  return (f'Parzen log-likelihood {record["mean_ll"]:.1f} +- {record["std_err"]:.1f} nats '
          f'(sigma {record["sigma"]:.3f}, {record["n_samples"]} samples from {source}, '
          f'{record["n_test"]} test images)')


def describe_seeds(summary: dict, source: str, stopped: str) -> str:
  """parzen_seeds.json's result in words; `stopped` says which seeds stopped early, if any."""
  per_seed = ', '.join(f'{e["mean_ll"]:.1f}' for e in summary['per_seed'])
  return (f'Parzen log-likelihood over seeds {summary["seeds"]}: {summary["mean_ll"]:.1f} +- '
          f'{summary["sd_ll"]:.1f} nats (mean +- sd across seeds, ddof 1; per seed '
          f'{per_seed}{stopped}; {summary["n_samples"]} samples each from {source}, '
          f'{summary["n_test"]} test images)')
