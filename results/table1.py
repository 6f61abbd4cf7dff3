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


def choose(workdir: str, on: str = 'metrics') -> dict:
  """The run's newest checkpoint and the checkpointed step with the best validation estimate.

  Args:
    workdir: the run.
    on: 'metrics' (training-time `parzen_valid`) or 'protocol' (parzen_step_N.json files).

  Returns:
    {'last', 'best', 'best_valid', 'steps_per_sec'}; 'best' is 'last' when nothing is estimated.
  """
  if on not in CHOOSE_ON:
    raise ValueError(f"Unknown --choose_on '{on}': choose one of {CHOOSE_ON}.")
  with checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True) as ckpt:
    saved = ckpt.steps()
  if not saved:
    raise ValueError(f'{workdir} has no checkpoints.')
  lines = metrics(workdir)
  if on == 'metrics':
    valid = {l['step']: l['parzen_valid'] for l in lines if 'parzen_valid' in l}
  else:
    valid = protocol_valid(workdir)
  scored = [s for s in saved if s in valid]
  best = max(scored, key=valid.get) if scored else saved[-1]
  rates = [l['steps_per_sec'] for l in lines if 'steps_per_sec' in l]
  return {'last': saved[-1], 'best': best, 'best_valid': valid.get(best),
          'steps_per_sec': sorted(rates)[len(rates) // 2] if rates else None}


def score(workdir: str, config, step: int, run_protocol: bool) -> dict | None:
  path = os.path.join(workdir, evaluation.step_json_name(step))
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


def main(argv):
  del argv
  rows = []
  for name in sorted(os.listdir(_RUNS.value)):
    workdir = os.path.join(_RUNS.value, name)
    if not os.path.exists(os.path.join(workdir, 'config.json')):
      continue
    config = load_config(workdir)
    chosen = choose(workdir, _CHOOSE_ON.value)
    best = score(workdir, config, chosen['best'], _EVALUATE.value)
    last = score(workdir, config, chosen['last'], _EVALUATE.value)
    t = config.train
    rate = f"{chosen['steps_per_sec']:.0f}" if chosen['steps_per_sec'] else '-'
    valid = f"{chosen['best_valid']:.1f}" if chosen['best_valid'] is not None else '-'
    rows.append(f"| {name} | {t.update_rule} (k={t.k_steps}) | {t.generator_loss} | "
                f"{config.model.compute_dtype} | {config.seed} | "
                f"{chosen['last']:,} | {rate} | {chosen['best']:,} ({valid}) | {fmt(best)} | "
                f"{fmt(last)} |")
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
