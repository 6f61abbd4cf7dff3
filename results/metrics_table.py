r"""The table of results/README.md's "Three estimates of one G", from what metrics_mnist.sh wrote.

  python results/metrics_table.py RUN SEEDS_RUN

One row per G (and per data reference): Parzen log-likelihood, AIS log-likelihood with its
obs_std and BDMC gap, and the sample-quality metrics, each read from the JSON record its
`--mode=eval` command wrote into the run (a missing record is a blank cell).
"""

from __future__ import annotations

import json
import os
import sys

STEP = '_step_{:08d}'
ROWS = (  # (label, file suffix after the method's name, seed or None)
    ('G at 10,000 steps', STEP.format(10000), None),
    ('G at 20,000 steps', STEP.format(20000), None),
    ('G at 30,000 steps', STEP.format(30000), None),
    ('EMA of G (decay 0.999) at 30,000', STEP.format(30000) + '_g_ema', None),
    ('G averaged over 20,000-30,000', STEP.format(30000) + '_g_average_10000', None),
)
REFERENCES = (('training images (memoriser)', '_data_as_samples'),
              ('validation images (held-out data)', '_valid_as_samples'))
HEADER = ('| G | Parzen LL | AIS LL (obs_std, BDMC gap) | FID | KID | precision | recall '
          '| coverage | classifier score | memorised |')


def _read(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _cells(parzen: dict | None, ais: dict | None, quality: dict | None) -> list[str]:
  cells = [f'{parzen["mean_ll"]:.1f} ± {parzen["std_err"]:.1f}' if parzen else '']
  if ais:
    gap = f', {ais["bdmc"]["gap"]:.1f}' if 'bdmc' in ais else ''
    cells.append(f'{ais["mean_ll"]:.1f} ± {ais["std_err"]:.1f} ({ais["obs_std"]:g}{gap})')
  else:
    cells.append('')
  if quality:
    cells += [f'{quality["fid"]:.3g}', f'{quality["kid_mean"]:.3g}',
              f'{quality["precision"]:.3f}', f'{quality["recall"]:.3f}',
              f'{quality["coverage"]:.3f}', f'{quality["classifier_score_mean"]:.2f}',
              f'{100 * quality["memorisation_fraction_closer"]:.1f}%']
  else:
    cells += [''] * 7
  return cells


def rows(run: str, seeds_run: str) -> list[str]:
  """The table's markdown lines."""
  out = [HEADER, '|' + '---|' * HEADER.count(' | ') + '---|']
  methods = ('parzen', 'ais', 'sample_quality')
  for label, suffix in REFERENCES:
    records = [_read(os.path.join(run, f'{m}{suffix}.json')) for m in methods]
    out.append('| ' + ' | '.join([label] + _cells(*records)) + ' |')
  for label, suffix, _ in ROWS:
    records = [_read(os.path.join(run, f'{m}{suffix}.json')) for m in methods]
    out.append('| ' + ' | '.join([label] + _cells(*records)) + ' |')
  seeds_config = _read(os.path.join(seeds_run, 'config.json')) or {}
  first = seeds_config.get('seed', 0)
  for i in range(seeds_config.get('num_seeds', 0)):
    seed_dir = os.path.join(seeds_run, f'seed_{first + i}')
    records = [_read(os.path.join(seed_dir, f'{m}{STEP.format(10000)}.json')) for m in methods]
    rule = seeds_config.get('train', {}).get('update_rule', '?')
    out.append('| ' + ' | '.join([f'{rule}, seed {first + i}, at 10,000'] + _cells(*records))
               + ' |')
  return out


if __name__ == '__main__':
  if len(sys.argv) != 3:
    sys.exit(__doc__)
  print('\n'.join(rows(sys.argv[1], sys.argv[2])))
