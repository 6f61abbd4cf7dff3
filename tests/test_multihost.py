"""Two processes x 2 CPU devices (gloo over 127.0.0.1) train like one process x 4 devices."""

import os
import socket
import subprocess
import sys

import chex

from conftest import ROOT, tiny_mnist_config
from test_run import _final_state, _metrics

FLAGS = ['--config.model.g_hidden=(32,32)', '--config.model.d_units=(16,16)',
         '--config.model.d_pieces=3', '--config.train.batch_size=8',
         '--config.train.num_steps=6', '--config.train.log_every=2',
         '--config.train.checkpoint_every=3', '--config.train.sample_every=3',
         '--config.train.steps_per_call=2', '--config.eval.every=0']


def _cmd(workdir, *extra):
  return [sys.executable, os.path.join(ROOT, 'tests', 'mock_launch.py'), '40',
          f'--config={os.path.join(ROOT, "experiments", "mnist.py")}', f'--workdir={workdir}',
          *FLAGS, *extra]


def _env(devices):
  return {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
  single, multi = str(tmp_path / 'single'), str(tmp_path / 'multi')
  out = subprocess.run(_cmd(single), env=_env(4), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]

  port = _free_port()
  procs = [subprocess.Popen(
      _cmd(multi, f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
           f'--process_id={i}'), env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  errors = []
  for p in procs:
    _, err = p.communicate(timeout=600)
    errors.append(err)
  assert [p.returncode for p in procs] == [0, 0], errors[0][-3000:] + errors[1][-3000:]
  assert 'Process 1 of 2; 2 local and 4 global devices' in errors[1]

  a, step_a = _final_state(tiny_mnist_config(), single)
  b, step_b = _final_state(tiny_mnist_config(), multi)
  assert step_a == step_b == 6
  chex.assert_trees_all_close(a, b, atol=1e-6)
  # Only process 0 writes logs and samples; the metrics agree with the single process.
  lines_a, lines_b = _metrics(single), _metrics(multi)
  assert [l['step'] for l in lines_b] == [2, 4, 6]
  for la, lb in zip(lines_a, lines_b):
    for k in ('d_loss', 'g_loss', 'value'):
      assert abs(la[k] - lb[k]) < 1e-5, (k, la[k], lb[k])
  assert sorted(os.listdir(os.path.join(multi, 'samples'))) == [
      'step_00000003.png', 'step_00000006.png']
