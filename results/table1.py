r"""Table 1 from a folder of MNIST runs: choose each run's checkpoint, score it, print the table.

  python results/table1.py --runs=runs/table1 [--evaluate] [--out=table1.md]

Every sub-folder of --runs that holds a config.json is a run (a workdir of launch.py). Its
checkpoint is chosen on validation data alone, as pylearn2's MonitorBasedSaveBest keeps the best
model by a validation channel:

  --choose_on=metrics   (default) the step with the best training-time estimate `parzen_valid`
                        in metrics.jsonl (`config.eval.every`; 2,000 samples).
  --choose_on=protocol  the step with the best validation log-likelihood (at its chosen sigma)
                        among the protocol's own parzen_step_N.json files already in the run
                        (`launch.py --mode=eval --step=N`; 10,000 samples), for runs trained
                        with `eval.every=0`. Only the validation numbers decide; the test
                        numbers in those files are not looked at.

With --evaluate, the paper's protocol (what `launch.py --mode=eval --step=N` runs, with the run's
own config.json) scores the chosen checkpoint and the newest one on the test set, writing
parzen_step_N.json into the run; otherwise those files must exist already. Runs without an
estimate are scored at their newest checkpoint only.

A run of several seeds (config.num_seeds > 1) is one row: each seed chooses its own checkpoint
from its own seed_<s>/ files as a run of that seed alone would, and the test numbers are the
mean ± sd (ddof 1) across seeds of the seeds' seed_<s>/parzen_step_N.json, the per-seed numbers
that parzen_seeds_step_N.json summarises (--evaluate scores every seed at each step it needs).
Seeds stopped early (non-finite in training) are scored at their frozen parameters and named.
A sweep (config.sweep) is one such row per value, its files in <field>=<value>/seed_<s>/.
"""

from __future__ import annotations

import json
import os
import re
import sys

from absl import app
from absl import flags
import ml_collections

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import checkpoint
from gan_jax import evaluation
from gan_jax import workdir as workdir_lib

CHOOSE_ON = ('metrics', 'protocol')
# The plain protocol files only: not parzen_step_N_g_average_W.json or other variants.
_STEP_JSON = re.compile(r'parzen_step_(\d{8})\.json')

_RUNS = flags.DEFINE_string('runs', None, 'Folder whose sub-folders are MNIST runs.')
_EVALUATE = flags.DEFINE_bool('evaluate', False, 'Run the protocol where its JSON is missing.')
_OUT = flags.DEFINE_string('out', '', 'Also write the table (markdown) to this file.')
_CHOOSE_ON = flags.DEFINE_enum('choose_on', 'metrics', CHOOSE_ON,
                               'Which validation estimate chooses the checkpoint (see above).')


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run was trained with (its config.json, upgraded to the full schema)."""
  config = workdir_lib.read_config(workdir)
  if config is None:
    raise FileNotFoundError(f'{workdir} holds no config.json: it is not a run of launch.py.')
  return config


def seeds(config) -> list[int] | None:
  """The seeds of a run of several (config.num_seeds > 1); None for a single-seed run."""
  if config.num_seeds == 1:
    return None
  return [config.seed + i for i in range(config.num_seeds)]


def metrics(workdir: str) -> list[dict]:
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def protocol_valid(workdir: str) -> dict[int, float]:
  """Step -> validation log-likelihood at the chosen sigma, from the run's parzen_step_N.json."""
  valid = {}
  for name in os.listdir(workdir):
    match = _STEP_JSON.fullmatch(name)
    if match:
      with open(os.path.join(workdir, name)) as f:
        record = json.load(f)
      # The protocol chooses sigma by this very number, so the best of the curve is the estimate.
      valid[int(match.group(1))] = max(record['valid_ll'])
  return valid


def choose(workdir: str, on: str = 'metrics', member: str = '') -> dict:
  """The run's newest checkpoint and the checkpointed step with the best validation estimate.

  Args:
    workdir: the run.
    on: 'metrics' (training-time `parzen_valid`) or 'protocol' (parzen_step_N.json files).
    member: in a run of several, the folder of the member whose estimates choose (seed_<s>,
      or <field>=<value>/seed_<s> in a sweep); '' for a run of one.

  Returns:
    {'last', 'best', 'best_valid', 'steps_per_sec'}; 'best' is 'last' when nothing is estimated.
  """
  if on not in CHOOSE_ON:
    raise ValueError(f"Unknown --choose_on '{on}': choose one of {CHOOSE_ON}.")
  with checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True) as ckpt:
    saved = ckpt.steps()
  if not saved:
    raise ValueError(f'{workdir} has no checkpoints.')
  files = os.path.join(workdir, member)
  lines = metrics(files)
  if on == 'metrics':
    valid = {l['step']: l['parzen_valid'] for l in lines if 'parzen_valid' in l}
  else:
    valid = protocol_valid(files)
  scored = [s for s in saved if s in valid]
  best = max(scored, key=valid.get) if scored else saved[-1]
  rates = [l['steps_per_sec'] for l in lines if 'steps_per_sec' in l]
  return {'last': saved[-1], 'best': best, 'best_valid': valid.get(best),
          'steps_per_sec': sorted(rates)[len(rates) // 2] if rates else None}


def score(workdir: str, config, step: int, run_protocol: bool, member: str = '') -> dict | None:
  """The protocol's record of the checkpoint at `step` (of the G of the member in folder
  `member`, in a run of several)."""
  path = os.path.join(workdir, member, evaluation.step_json_name(step))
  if not os.path.exists(path) and run_protocol:
    evaluation.evaluate(config, workdir, step)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def fmt(record: dict | None) -> str:
  if record is None:
    return 'not scored'
  return f"{record['mean_ll']:.1f} ± {record['std_err']:.1f} (σ {record['sigma']:.3f})"


def fmt_seeds(records: list[dict | None], run_seeds: list[int]) -> str:
  """Mean ± sd (ddof 1) across seeds of their test log-likelihoods; stopped seeds named."""
  if any(r is None for r in records):
    return f'not scored ({sum(r is None for r in records)} of {len(records)} seeds)'
  stats = evaluation.across_seeds([r['mean_ll'] for r in records])
  stopped = [str(s) for r, s in zip(records, run_seeds) if 'stopped' in r]
  note = f"; stopped early: seed {', '.join(stopped)}" if stopped else ''
  return f"{stats['mean_ll']:.1f} ± {stats['sd_ll']:.1f} (sd of {stats['n_seeds']} seeds{note})"


def row(name: str, workdir: str, config, on: str, run_protocol: bool) -> str:
  """The table's row for one run: one for all the seeds of a run of several, one per value (its
  seeds) of a sweep."""
  how = (on, run_protocol)
  if not config.sweep.field:
    return _row(name, workdir, config, workdir_lib.members(config) if seeds(config) else [], how)
  members = workdir_lib.members(config)
  return '\n'.join(
      _row(f'{name} {workdir_lib.value_name(config, v)}', workdir, config,
           [members[i] for i in at], how)
      for v, at in workdir_lib.by_value(config))


def _row(name: str, workdir: str, config, members: list, how: tuple) -> str:
  """One row: of a run of one (no `members`), or of `members`' seeds; `how` is (on,
  run_protocol)."""
  on, run_protocol = how
  t = config.train
  run_seeds = [m.seed for m in members]
  if not members:
    chosen = choose(workdir, on)
    best = fmt(score(workdir, config, chosen['best'], run_protocol))
    last = fmt(score(workdir, config, chosen['last'], run_protocol))
    seed, valid = str(config.seed), _valid(chosen)
    best_step = f"{chosen['best']:,} ({valid})"
  else:
    each = [choose(workdir, on, m.name) for m in members]
    chosen = each[0]  # Same checkpoints and speed for all: one program trains them.
    best = fmt_seeds([score(workdir, config, c['best'], run_protocol, m.name)
                      for c, m in zip(each, members)], run_seeds)
    last = fmt_seeds([score(workdir, config, c['last'], run_protocol, m.name)
                      for c, m in zip(each, members)], run_seeds)
    seed = f'{run_seeds[0]}-{run_seeds[-1]} ({len(run_seeds)} seeds)'
    best_step = ', '.join(f"{c['best']:,} ({_valid(c)})" for c in each)
  rate = f"{chosen['steps_per_sec']:.0f}" if chosen['steps_per_sec'] else '-'
  return (f"| {name} | {t.update_rule} (k={t.k_steps}) | {t.generator_loss} | "
          f"{config.model.compute_dtype} | {seed} | {chosen['last']:,} | {rate} | "
          f"{best_step} | {best} | {last} |")


def _valid(chosen: dict) -> str:
  return f"{chosen['best_valid']:.1f}" if chosen['best_valid'] is not None else '-'


def main(argv):
  del argv
  rows = []
  for name in sorted(os.listdir(_RUNS.value)):
    workdir = os.path.join(_RUNS.value, name)
    if not os.path.exists(os.path.join(workdir, 'config.json')):
      continue
    rows.append(row(name, workdir, load_config(workdir), _CHOOSE_ON.value, _EVALUATE.value))
  table = '\n'.join([
      '| run | update rule | G loss | compute | seed | steps | steps/s | chosen step (valid '
      'estimate) | test LL at chosen step | test LL at last step |',
      '|---|---|---|---|---|---|---|---|---|---|', *rows])
  print(table)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      f.write(table + '\n')


if __name__ == '__main__':
  flags.mark_flag_as_required('runs')
  app.run(main)
