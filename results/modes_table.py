r"""The mode-collapse table of results/README.md (2-D mixtures, Stacked MNIST) from the runs' files.

  python results/modes_table.py [RUN ...]
  python results/modes_table.py --over-training [RUN ...]

RUN is a workdir of experiments/mog2d.py or stacked_mnist.py trained with several seeds
(config.num_seeds) and scored by `--mode=eval --config.eval.method=modes` (modes_seeds.json;
modes_seeds_step_N.json with --step=N); the default RUNs are
runs/mog_{ring8,grid25}_{alternating,simultaneous} and runs/stacked_{alternating,simultaneous}.
One row per run and coverage rule (config.eval.modes.min_count) scored at the run's last scored
step: modes covered, the high-quality percentage and the KL to uniform, each as mean ± sd across
seeds (ddof 1), with the step, the seeds and the rule. With --over-training, also a row for each
earlier checkpoint scored, in step order. A missing run or record is skipped.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys

import numpy as np

DEFAULT_RUNS = tuple(f'runs/mog_{mixture}_{rule}' for mixture in ('ring8', 'grid25')
                     for rule in ('alternating', 'simultaneous')) + tuple(
                         f'runs/stacked_{rule}' for rule in ('alternating', 'simultaneous'))
HEADER = ('| data | update rule | step | seeds | modes covered | high-quality samples '
          '| KL to uniform | a mode needs |')
_STEP_FILE = re.compile(r'modes_seeds_step_(\d+)\.json$')


def _read(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def mean_sd(values) -> str:
  """'mean ± sd' (sd with ddof 1; the mean alone for one value), '' for none."""
  values = np.asarray([v for v in values if v is not None], np.float64)
  if not len(values):
    return ''
  if len(values) == 1:
    return f'{values[0]:.2f}'
  return f'{values.mean():.2f} ± {values.std(ddof=1):.2f}'


def row(summary: dict, rule: str) -> str:
  """One Markdown row of a modes_seeds*.json summary."""
  per_seed = summary['per_seed']
  kls = [e['kl_to_uniform'] for e in per_seed]
  kl = mean_sd(kls)
  if kl and None in kls:  # Seeds with no sample near any mode have no KL.
    kl += f' ({len(kls) - kls.count(None)} of {len(kls)} seeds)'
  # Stacked MNIST has no high-quality fraction and no threshold: one labelled sample covers.
  hq = mean_sd(100 * e['high_quality'] for e in per_seed if 'high_quality' in e)
  needs = (f'{summary["min_count"]} within 3 std' if 'min_count' in summary
           else '1 sample (classifier labels)')
  cells = [summary['dataset'], rule, f'{summary["step"]:,}', str(len(per_seed)),
           f'{mean_sd(e["modes_covered"] for e in per_seed)} of {summary["num_modes"]}',
           f'{hq} %' if hq else '-', kl, needs]
  return '| ' + ' | '.join(cells) + ' |'


def summaries(run: str, over_training: bool) -> list[dict]:
  """The run's summaries at its last scored step (one per coverage rule, min_count) and, with
  `over_training`, at every step scored, in step order; one per (step, min_count)."""
  found = {}
  paths = glob.glob(os.path.join(run, 'modes_seeds_step_*.json'))
  # modes_seeds.json last: it wins over a --step=N file of the same step and rule.
  for path in sorted(p for p in paths if _STEP_FILE.search(p)) + [
      os.path.join(run, 'modes_seeds.json')]:
    summary = _read(path)
    if summary is not None:
      found[(summary['step'], summary.get('min_count', 1))] = summary
  if not found:
    return []
  last = max(step for step, _ in found)
  keys = sorted(k for k in found if over_training or k[0] == last)
  return [found[k] for k in keys]  # By step, then the papers' rule (1) first.


def rows(runs, over_training: bool = False) -> list[str]:
  """The table's Markdown lines."""
  out = [HEADER, '|' + '---|' * (HEADER.count(' | ') + 1)]
  for run in runs:
    config = _read(os.path.join(run, 'config.json')) or {}
    rule = config.get('train', {}).get('update_rule', '?')
    if rule == 'alternating':
      rule += f' (k = {config["train"].get("k_steps", 1)})'
    out += [row(s, rule) for s in summaries(run, over_training)]
  return out


def main(argv: list[str]) -> None:
  over_training = '--over-training' in argv
  runs = [a for a in argv if a != '--over-training'] or list(DEFAULT_RUNS)
  print('\n'.join(rows(runs, over_training)))


if __name__ == '__main__':
  main(sys.argv[1:])
