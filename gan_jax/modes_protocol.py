"""Mode coverage of a checkpoint's G on a 2-D mixture (`--mode=eval --config.eval.method=modes`).

The mode-collapse benchmarks of Metz et al. (2017), Srivastava et al. (2017) and Lin et al.
(2018): `num_samples` samples of G (2,500, as VEEGAN and PacGAN) are assigned to the nearest of
the mixture's centres (experiments/mog2d.py: ring8 or grid25); a mode is covered when at least
`min_count` samples lie within 3 std of its centre, a sample is of high quality when it lies
within 3 std of some centre, and the KL divergence of the high-quality samples' distribution over
modes from the uniform one says how evenly the covered modes are hit (gan_jax.modes).
"""

from __future__ import annotations

import jax

from gan_jax import data
from gan_jax import experiment
from gan_jax import modes

NAME = 'modes'
SPLITS = ('test',)  # Only for the data's shape: the centres are the mixture's own.
HEADLINE = ('modes_covered', 'high_quality')  # Summarised across seeds in modes_seeds.json.
SHARED = ('num_samples', 'num_modes', 'min_count', 'mixture_std')


def data_samples(config) -> str:
  """No data split stands in for G's samples here (the data cover every mode by construction)."""
  del config
  return ''


def score_generator(exp: experiment.Experiment, g_params, splits: dict, record: dict) -> dict:
  """Modes covered, high-quality fraction and KL to uniform of `num_samples` samples of G drawn
  with the key config.eval.modes.seed; `record` updated."""
  del splits
  m, d = exp.config.eval.modes, exp.config.data
  centres = data.mixture_centres(d.name, radius=float(d.mixture_radius),
                                 spacing=float(d.mixture_spacing))
  std = data.mixture_std(d.name, float(d.mixture_std))
  samples = exp.generate(g_params, m.num_samples, jax.random.key(m.seed), m.num_samples)
  coverage = modes.mode_coverage(samples.reshape(len(samples), 2), centres, std,
                                 min_count=m.min_count)
  kl = coverage.pop('kl_to_uniform')
  # No sample near any mode leaves the KL undefined: JSON's null, not NaN.
  record.update(seed=m.seed, mixture=d.name, mixture_std=std, min_count=m.min_count,
                kl_to_uniform=kl if kl == kl else None, **coverage)
  return record


def per_seed_fields(record: dict) -> dict:
  return {k: record[k] for k in HEADLINE + ('kl_to_uniform',)}


def describe(record: dict, source: str) -> str:
  """The record's result in words (the line --mode=eval prints)."""
  kl = record['kl_to_uniform']
  return (f'{record["mixture"]}: {record["modes_covered"]} of {record["num_modes"]} modes covered, '
          f'{100 * record["high_quality"]:.1f}% high-quality samples, KL to uniform '
          f'{"undefined" if kl is None else f"{kl:.3f}"} ({record["num_samples"]} samples from '
          f'{source}; a mode needs {record["min_count"]} within 3 std)')


def describe_seeds(summary: dict, source: str, stopped: str) -> str:
  """modes_seeds.json's result in words."""
  per_seed = ', '.join(str(e['modes_covered']) for e in summary['per_seed'])
  return (f'Modes covered over seeds {summary["seeds"]}: {summary["modes_covered"]:.2f} +- '
          f'{summary["sd_modes_covered"]:.2f} of {summary["num_modes"]} (mean +- sd across seeds, '
          f'ddof 1; per seed {per_seed}{stopped}), high-quality '
          f'{100 * summary["high_quality"]:.1f}% +- {100 * summary["sd_high_quality"]:.1f}% '
          f'({summary["num_samples"]} samples each from {source})')
