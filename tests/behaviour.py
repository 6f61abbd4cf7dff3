r"""A fingerprint of what gan_jax writes, to check that a refactor changes no behaviour.

Three launch.py commands on real MNIST (TFDS_DATA_DIR): 300 steps of each update rule, then the
Parzen protocol (shrunk) on the simultaneous run's checkpoint at step 200. The fingerprint holds
every metrics.jsonl line (without the wall-clock fields), the Parzen JSON (without its seconds)
and the SHA-256 of every sample grid. tests/test_behaviour.py compares it with the one recorded
in tests/golden/ before the architecture change; to record it anew (only when behaviour is meant
to change, and say so in the commit):

  TFDS_DATA_DIR=../shared/data/tensorflow_datasets python tests/behaviour.py --write
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, 'tests', 'golden', 'behaviour.json')
# Fields that measure wall-clock time, not behaviour.
TIMING = ('steps_per_sec', 'seconds')

TRAIN = ['--config.train.num_steps=300', '--config.train.log_every=50',
         '--config.train.checkpoint_every=100', '--config.train.sample_every=150',
         '--config.train.steps_per_call=50', '--config.train.keep_checkpoints=3',
         '--config.eval.every=150', '--config.eval.parzen.train_num_samples=500',
         '--config.eval.parzen.train_valid_size=200']
RUNS = {
    'simultaneous': TRAIN + ['--config.train.update_rule=simultaneous'],
    'alternating': TRAIN + ['--config.train.update_rule=alternating'],
}
EVAL = ['--mode=eval', '--step=200', '--config.eval.parzen.num_samples=2000',
        '--config.eval.parzen.valid_size=500']


def _launch(workdir: str, args: list[str]) -> None:
  cmd = [sys.executable, os.path.join(ROOT, 'launch.py'), '--config',
         os.path.join(ROOT, 'experiments', 'mnist.py'), f'--workdir={workdir}', *args]
  # One CPU device, as recorded: the test session forces 4 (tests/conftest.py), and a batch split
  # over 4 devices sums its gradients in another order.
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
  if proc.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')


def _metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    lines = [json.loads(line) for line in f]
  return [{k: v for k, v in line.items() if k not in TIMING} for line in lines]


def _samples(workdir: str) -> dict:
  folder = os.path.join(workdir, 'samples')
  out = {}
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), 'rb') as f:
      out[name] = hashlib.sha256(f.read()).hexdigest()
  return out


def fingerprint(base: str) -> dict:
  """Runs the three commands under `base` and returns what they wrote."""
  out = {}
  for rule, args in RUNS.items():
    workdir = os.path.join(base, rule)
    _launch(workdir, args)
    out[rule] = {'metrics': _metrics(workdir), 'samples': _samples(workdir)}
  workdir = os.path.join(base, 'simultaneous')
  _launch(workdir, EVAL)
  with open(os.path.join(workdir, 'parzen_step_00000200.json')) as f:
    out['parzen'] = {k: v for k, v in json.load(f).items() if k not in TIMING}
  return out


def environment() -> dict:
  """What bit-identity depends on: the same XLA CPU build on the same kind of processor."""
  import jax  # pylint: disable=g-import-not-at-top  (only when recording)
  import jaxlib  # pylint: disable=g-import-not-at-top
  return {'jax': jax.__version__, 'jaxlib': jaxlib.__version__, 'machine': platform.machine()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--write', action='store_true', help=f'record {GOLDEN}')
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as base:
    record = {'environment': environment(), 'fingerprint': fingerprint(base)}
  if args.write:
    with open(GOLDEN, 'w') as f:
      json.dump(record, f, indent=1, sort_keys=True)
    print(f'wrote {GOLDEN}')
  else:
    print(json.dumps(record, indent=1, sort_keys=True))


if __name__ == '__main__':
  main()
