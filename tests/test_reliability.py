"""Reliability: SIGKILL/SIGTERM at any moment, then an exact resume; corrupt checkpoints; NaNs."""

import os
import signal
import subprocess
import sys
import time
from unittest import mock

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import ROOT, tiny_mnist_config
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import errors
from gan_jax import train
from test_run import _final_state, assert_same_run

FLAGS = ['--config.model.g_hidden=(32,32)', '--config.model.d_units=(16,16)',
         '--config.model.d_pieces=3', '--config.train.batch_size=8',
         '--config.train.num_steps=60', '--config.train.log_every=4',
         '--config.train.checkpoint_every=10', '--config.train.sample_every=30',
         '--config.train.steps_per_call=1', '--config.eval.every=0']


def _config():
  return tiny_mnist_config(num_steps=60, log_every=4, checkpoint_every=10, sample_every=30,
                           steps_per_call=1)


def _start(workdir):
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'tests', 'mock_launch.py'), '40',
       f'--config={os.path.join(ROOT, "experiments", "mnist.py")}', f'--workdir={workdir}',
       *FLAGS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
      env={**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'})


def _wait_for_lines(workdir, count, proc, timeout=240):
  path = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.exists(path) and sum(1 for _ in open(path)) >= count:
      return
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    time.sleep(0.05)
  raise TimeoutError(f'{path} never reached {count} lines')


def _finish(workdir):
  proc = _start(workdir)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-2000:]


def test_kill_and_sigterm_then_exact_resume(tmp_path):
  reference = str(tmp_path / 'reference')
  _finish(reference)

  killed = str(tmp_path / 'killed')
  # SIGKILL mid-run (between checkpoints: the steps since the last one are redone) ...
  proc = _start(killed)
  _wait_for_lines(killed, 4, proc)
  proc.kill()
  proc.wait()
  # ... SIGKILL again right after a checkpoint save started (possibly mid-write) ...
  proc = _start(killed)
  ckpts = os.path.join(killed, 'checkpoints')
  first = set(os.listdir(ckpts))
  deadline = time.time() + 240
  while set(os.listdir(ckpts)) == first and time.time() < deadline:
    time.sleep(0.01)
  proc.kill()
  proc.wait()
  # ... then SIGTERM: a clean exit with a checkpoint at the current step.
  proc = _start(killed)
  _wait_for_lines(killed, 11, proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=240)
  assert proc.returncode == 0, err[-2000:]
  assert 'SIGTERM: saved a checkpoint at step' in err
  _finish(killed)

  assert_same_run(reference, killed, 60)


def test_sigterm_checkpoint_off_the_grid_resumes_exactly(tmp_path):
  """In-process: a SIGTERM between checkpoints saves the step it is at, with its pending metrics."""
  reference, preempted = str(tmp_path / 'reference'), str(tmp_path / 'preempted')
  real_indices = train.data.EpochSampler.indices

  def indices(self, first, count):  # The host asks for indices once per compiled call.
    if first == 7:
      os.kill(os.getpid(), signal.SIGTERM)
    return real_indices(self, first, count)

  with tfds.testing.mock_data(num_examples=40):
    api.train_and_evaluate(_config(), reference)
    with mock.patch.object(train.data.EpochSampler, 'indices', indices):
      result = api.train_and_evaluate(_config(), preempted)
    assert result['preempted_at'] == 8  # The call in flight finishes, then it saves.
    saved = checkpoint.Checkpointer(os.path.join(preempted, 'checkpoints')).steps()
    assert 8 in saved
    api.train_and_evaluate(_config(), preempted)
  assert_same_run(reference, preempted, 60)


def test_corrupt_newest_checkpoint_is_skipped(tmp_path, caplog):
  workdir = str(tmp_path / 'run')
  config = tiny_mnist_config(num_steps=6, checkpoint_every=3)
  with tfds.testing.mock_data(num_examples=40):
    api.train_and_evaluate(config, workdir)
    newest = os.path.join(workdir, 'checkpoints', '6')
    # Damage every data file of the newest checkpoint (as a failing disk would).
    for root, _, files in os.walk(os.path.join(newest, 'state')):
      for name in files:
        if not name.startswith('_') and not name.endswith('.txt'):
          with open(os.path.join(root, name), 'wb') as f:
            f.write(b'garbage')
    state, step = _final_state(config, workdir)
    assert step == 3 and int(state.step) == 3
    assert os.path.isdir(newest)  # Not deleted: the user may want to inspect it.
    api.train_and_evaluate(tiny_mnist_config(num_steps=9, checkpoint_every=3), workdir)
  assert 'unreadable' in caplog.text


def test_non_finite_stops_with_the_step_and_keeps_the_checkpoint(tmp_path):
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=40):
    api.train_and_evaluate(tiny_mnist_config(num_steps=3, checkpoint_every=3), workdir)
    config = tiny_mnist_config(num_steps=12, checkpoint_every=3)
    config.optim.learning_rate = 1e30
    with pytest.raises(errors.TrainingError,
                       match=r'Non-finite \w+ at step \d+: .* last good checkpoint \(step 3\)'):
      api.train_and_evaluate(config, workdir, allow_config_change=True)
    state, step = _final_state(tiny_mnist_config(), workdir)
  assert step == 3
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))
