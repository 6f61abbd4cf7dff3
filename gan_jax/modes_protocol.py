"""Mode coverage of a checkpoint's G (`--mode=eval --config.eval.method=modes`): 2-D mixtures and
Stacked MNIST.

The mode-collapse benchmarks of Metz et al. (2017), Srivastava et al. (2017) and Lin et al.
(2018): `num_samples` samples of G (2,500, as VEEGAN and PacGAN) are assigned to the nearest of
the mixture's centres (experiments/mog2d.py: ring8 or grid25); a mode is covered when at least
`min_count` samples (1, as those papers count) lie within 3 std of its centre, a sample is of
high quality when it lies within 3 std of some centre, and the KL divergence of the
high-quality samples' distribution over modes from the uniform one says how evenly the covered
modes are hit (gan_jax.modes).

On Stacked MNIST (experiments/stacked_mnist.py) 26,000 samples (as PacGAN) are labelled channel
by channel by the shipped MNIST classifier (gan_jax.classifier); a mode (one of 1,000 digit
triples) is covered by one sample, and the KL is that of the samples' distribution over modes
from the uniform one. `coverage` scores either kind; --config.eval.modes.data_as_samples=train
scores training data instead of G (the reference row).
"""

from __future__ import annotations

import jax
import numpy as np

from gan_jax import classifier
from gan_jax import data
from gan_jax import experiment
from gan_jax import modes

NAME = 'modes'
SPLITS = ('test',)  # Only for the data's shape: the centres are the mixture's own.
# Summarised across seeds in modes_seeds.json, where every seed's record has the number: a
# mixture's high_quality (and its KL when defined), Stacked MNIST's KL.
HEADLINE = ('modes_covered', 'high_quality', 'kl_to_uniform')
SHARED = ('num_samples', 'num_modes', 'min_count', 'mixture_std', 'classifier')
STACKED = 'stacked_mnist'


def data_samples(config) -> str:
  """The split whose data replace G's samples ('' for none)."""
  return config.eval.modes.data_as_samples


def samples_needed(config) -> tuple[int, str]:
  """How many samples the protocol scores, and the config field that says so."""
  return _num_samples(config, 0), 'config.eval.modes.num_samples'


def _num_samples(config, num_samples: int) -> int:
  """`num_samples`, else config.eval.modes.num_samples, else the dataset's default."""
  default = modes.STACKED_NUM_SAMPLES if config.data.name == STACKED else modes.NUM_SAMPLES
  return num_samples or config.eval.modes.num_samples or default


def score(config, samples, classifier_weights=None) -> dict:
  """The modes metrics of `samples` of config.data's dataset, with what they depend on."""
  d = config.data
  if d.name == STACKED:
    module, params = classifier_weights or classifier.load('mnist')
    return dict(modes.stacked_mnist_coverage(module, params, samples), classifier='mnist',
                classifier_sha256=classifier.shipped('mnist').sha256)
  centres, std = data.mixture_of(d)
  m = config.eval.modes
  return dict(modes.mode_coverage(samples.reshape(len(samples), 2), centres, std,
                                  min_count=m.min_count),
              mixture=d.name, mixture_std=std, min_count=m.min_count)


def coverage(exp: experiment.Experiment, g_params, num_samples: int, seed: int) -> dict:
  """The modes metrics of `num_samples` samples of G drawn with the key `seed`.

  Args:
    exp: the run's Experiment (a 2-D mixture's or Stacked MNIST's).
    g_params: one seed's G.
    num_samples: samples to score; 0 = config.eval.modes.num_samples, or if that is 0 the
      dataset's default (2,500 for a mixture, 26,000 for Stacked MNIST).
    seed: the samples' key.

  Returns:
    gan_jax.modes' metrics ('modes_covered', 'kl_to_uniform' (NaN when undefined), a mixture's
    'high_quality', 'num_samples', 'num_modes') and what they depend on (the mixture and its
    std and min_count, or the classifier).

  Raises:
    CheckpointError: Stacked MNIST and the MNIST classifier's weights are missing or corrupt.
  """
  # The classifier first: missing weights stop before G draws 26,000 samples.
  weights = classifier.load('mnist') if exp.config.data.name == STACKED else None
  return score(exp.config, generator_samples(exp, g_params, num_samples, seed), weights)


def generator_samples(exp: experiment.Experiment, g_params, num_samples: int,
                      seed: int) -> np.ndarray:
  """The samples `coverage` scores: `num_samples` (0 as in `coverage`) of G with the key `seed`."""
  num = _num_samples(exp.config, num_samples)
  # One batch of all the samples: the same samples whatever scores them.
  return exp.generate(g_params, num, jax.random.key(seed), num)


def _record(record: dict, scores: dict) -> dict:
  kl = scores.pop('kl_to_uniform')
  # No sample near any mode leaves the KL undefined: JSON's null, not NaN.
  record.update(kl_to_uniform=kl if kl == kl else None, **scores)
  return record


def score_generator(exp: experiment.Experiment, g_params, splits: dict, record: dict) -> dict:
  """`coverage` of G's samples drawn with the key config.eval.modes.seed; `record` updated."""
  del splits
  m = exp.config.eval.modes
  record['seed'] = m.seed
  return _record(record, coverage(exp, g_params, m.num_samples, m.seed))


def score_samples(config, samples, splits: dict, record: dict) -> dict:
  """The same metrics of a data split's `samples` (the reference row); `record` updated."""
  del splits
  return _record(record, score(config, samples))


def per_seed_fields(record: dict) -> dict:
  return {k: record[k] for k in HEADLINE if k in record}


def describe(record: dict, source: str) -> str:
  """The record's result in words (the line --mode=eval prints)."""
  kl = record['kl_to_uniform']
  if 'mixture' not in record:
    return (f'Stacked MNIST: {record["modes_covered"]} of {record["num_modes"]} modes covered, '
            f'KL to uniform {kl:.3f} ({record["num_samples"]} samples from {source}, each '
            f'channel labelled by the {record["classifier"]} classifier)')
  return (f'{record["mixture"]}: {record["modes_covered"]} of {record["num_modes"]} modes covered, '
          f'{100 * record["high_quality"]:.1f}% high-quality samples, KL to uniform '
          f'{"undefined" if kl is None else f"{kl:.3f}"} ({record["num_samples"]} samples from '
          f'{source}; a mode needs {record["min_count"]} within 3 std)')


def describe_seeds(summary: dict, source: str, stopped: str) -> str:
  """modes_seeds.json's result in words."""
  per_seed = ', '.join(str(e['modes_covered']) for e in summary['per_seed'])
  if 'high_quality' not in summary:  # Stacked MNIST.
    return (f'Modes covered over seeds {summary["seeds"]}: {summary["modes_covered"]:.1f} +- '
            f'{summary["sd_modes_covered"]:.1f} of {summary["num_modes"]}, KL to uniform '
            f'{summary["kl_to_uniform"]:.3f} +- {summary["sd_kl_to_uniform"]:.3f} (mean +- sd '
            f'across seeds, ddof 1; per seed {per_seed}{stopped}; {summary["num_samples"]} '
            f'samples each from {source})')
  return (f'Modes covered over seeds {summary["seeds"]}: {summary["modes_covered"]:.2f} +- '
          f'{summary["sd_modes_covered"]:.2f} of {summary["num_modes"]} (mean +- sd across seeds, '
          f'ddof 1; per seed {per_seed}{stopped}), high-quality '
          f'{100 * summary["high_quality"]:.1f}% +- {100 * summary["sd_high_quality"]:.1f}% '
          f'({summary["num_samples"]} samples each from {source})')


def training_estimate(exp: experiment.Experiment, g_params) -> dict:
  """The training loop's log of `score_generator`'s numbers (eval.modes.every): the same samples
  (eval.modes.num_samples from eval.modes.seed), so the curve ends at modes.json's value."""
  m = exp.config.eval.modes
  scores = coverage(exp, g_params, m.num_samples, m.seed)
  return {k: v for k, v in scores.items() if k in HEADLINE and v == v}  # Not NaN.


def describe_estimate(estimate: dict) -> str:
  """`training_estimate`'s numbers in words (the training log's line)."""
  words = [f'{estimate["modes_covered"]} modes covered']
  if 'high_quality' in estimate:
    words.append(f'{100 * estimate["high_quality"]:.1f}% high-quality')
  if 'kl_to_uniform' in estimate:
    words.append(f'KL to uniform {estimate["kl_to_uniform"]:.3f}')
  return ', '.join(words)
