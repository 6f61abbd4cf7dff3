r"""How much the Parzen number depends on the protocol's free choices, for one checkpoint.

  python results/parzen_sensitivity.py --workdir=runs/mnist_sim_s0 --step=500000 \
      [--num_samples=10000,50000] [--seeds=1,2,3] [--fine_sigmas=100] [--data_as_samples]

The paper's protocol (evaluation.py) fixes three things that a reader may wonder about: the
sigma grid (numpy.logspace(-1, 0, 10), coarse: 0.129, 0.167, 0.215, ...), the number of samples
(10,000) and the noise that draws them (one key). For every (number of samples, seed) this
draws the samples once and reports the test log-likelihood with sigma chosen on validation from
(a) the paper's grid and (b) a `--fine_sigmas`-point logspace over the same range, and (c) the
best test number over the fine grid, which peeks at the test set: an upper bound on what any
sigma could give, never a result. With --data_as_samples the "samples" are a random subset of
the training images (seed: which subset), the memoriser reference. Rows go to stdout (markdown)
and to `parzen_sensitivity[_data]_step_N.json` in the workdir; the run itself is not touched.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import checkpoint
from gan_jax import data
from gan_jax import evaluation
from gan_jax import experiment
from gan_jax import parzen
from gan_jax import parzen_protocol
from results import table1


def sensitivity(config, workdir: str, step: int | None, num_samples: list[int],
                seeds: list[int], fine_sigmas: int, data_as_samples: bool = False) -> dict:
  """Scores one checkpoint (or the training images) under each variant of the protocol.

  Returns:
    {'step', 'samples', 'rows': [{num_samples, seed, paper: {sigma, mean_ll, std_err},
    fine: {...}, test_oracle: {...}}]}.
  """
  p = config.eval.parzen
  splits = data.load_splits(config.data, ('train', 'valid', 'test') if data_as_samples
                            else ('valid', 'test'))
  valid, test = parzen_protocol.flat(splits['valid'][:p.valid_size]), parzen_protocol.flat(splits['test'])
  paper, fine = np.asarray(p.sigmas, np.float64), np.logspace(-1, 0, fine_sigmas)
  grid = np.unique(np.concatenate([paper, fine]))  # One pass scores both grids.
  if data_as_samples:
    train = parzen_protocol.flat(splits['train'])
    if max(num_samples) > len(train):
      raise data.DataError(f'--num_samples={max(num_samples)} exceeds the {len(train)} '
                           'training images: lower it.')
    draw = lambda n, s: train[np.random.default_rng(s).permutation(len(train))[:n]]
    restored = None
  else:
    exp = experiment.build(config, splits['valid'].shape[1:])
    with checkpoint.Checkpointer.of_run(workdir) as ckpt:
      g_params, restored, _ = evaluation.restore_generator(ckpt, exp.g_shapes(), step)
    draw = lambda n, s: parzen_protocol.flat(exp.generate(g_params, n, jax.random.key(s), p.batch_size))

  def pick(sigmas, valid_curve, test_ll):
    i = int(np.argmax(valid_curve))
    j = int(np.where(np.isclose(grid, sigmas[i]))[0][0])
    ll = test_ll[j]
    return {'sigma': float(sigmas[i]), 'mean_ll': float(ll.mean()),
            'std_err': float(ll.std() / np.sqrt(len(ll)))}

  rows = []
  for n in num_samples:
    for seed in seeds:
      samples = draw(n, seed)
      valid_curve = parzen.log_likelihood(valid, samples, grid).mean(axis=1)
      test_ll = parzen.log_likelihood(test, samples, grid)
      on = lambda sig: np.isin(grid, sig)
      best_test = int(np.argmax(test_ll.mean(axis=1)))
      rows.append({
          'num_samples': n, 'seed': seed,
          'paper': pick(grid[on(paper)], valid_curve[on(paper)], test_ll),
          'fine': pick(grid[on(fine)], valid_curve[on(fine)], test_ll),
          'test_oracle': {'sigma': float(grid[best_test]),
                          'mean_ll': float(test_ll[best_test].mean())}})
  return {'step': None if restored is None else int(restored),
          'samples': 'training images' if data_as_samples else 'generator', 'rows': rows}


def markdown(result: dict) -> str:
  lines = ['| samples | n | seed | paper grid: LL (σ) | fine grid: LL (σ) | best σ on test '
           '(peeks) |', '|---|---|---|---|---|---|']
  what = result['samples'] + ('' if result['step'] is None else f" @ {result['step']:,}")
  for r in result['rows']:
    cell = lambda c: f"{c['mean_ll']:.1f} ± {c['std_err']:.1f} ({c['sigma']:.3f})"
    lines.append(f"| {what} | {r['num_samples']:,} | {r['seed']} | {cell(r['paper'])} | "
                 f"{cell(r['fine'])} | {r['test_oracle']['mean_ll']:.1f} "
                 f"({r['test_oracle']['sigma']:.3f}) |")
  return '\n'.join(lines)


def define_flags() -> None:
  """The command-line flags; defined only when run as a script, so the tests can import both
  analysis scripts (absl refuses a flag name defined twice)."""
  global _WORKDIR, _STEP, _NUM_SAMPLES, _SEEDS, _FINE, _DATA  # pylint: disable=global-statement
  _WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run (its config.json is used).')
  _STEP = flags.DEFINE_integer('step', None, 'Checkpoint to score (default: newest).')
  _NUM_SAMPLES = flags.DEFINE_list('num_samples', ['10000', '50000'], 'Sample counts to try.')
  _SEEDS = flags.DEFINE_list('seeds', ['1', '2', '3'], 'Noise keys (1 is the protocol\'s).')
  _FINE = flags.DEFINE_integer('fine_sigmas', 100, 'Points of the fine logspace(-1, 0, n) grid.')
  _DATA = flags.DEFINE_bool('data_as_samples', False, 'Score training images, not G\'s samples.')


def main(argv):
  del argv
  config = table1.load_config(_WORKDIR.value)
  result = sensitivity(config, _WORKDIR.value, _STEP.value, [int(n) for n in _NUM_SAMPLES.value],
                       [int(s) for s in _SEEDS.value], _FINE.value, _DATA.value)
  table = markdown(result)
  print(table)
  tag = '_data' if _DATA.value else ''
  name = f"parzen_sensitivity{tag}_step_{result['step'] or 0:08d}.json"
  with open(os.path.join(_WORKDIR.value, name), 'w') as f:
    json.dump(result, f, indent=2)


if __name__ == '__main__':
  define_flags()
  flags.mark_flag_as_required('workdir')
  app.run(main)
