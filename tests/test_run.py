"""End to end: training under tfds.testing.mock_data, outputs, exact resume, real MNIST."""

import json
import os

import chex
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REAL_MNIST, tiny_mnist_config
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import experiment


def _final_state(config, workdir):
  exp = experiment.build(config, (28, 28, 1), 1000)
  target = exp.initial_state(np.zeros((2, 28, 28, 1), np.float32))
  state, step = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints')).restore_latest(
      target)
  return state, step


def _metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    lines = [json.loads(l) for l in f]
  for l in lines:
    l.pop('steps_per_sec', None)  # Wall-clock: the only field allowed to differ.
  return lines


def assert_same_run(reference, other, num_steps):
  """Both workdirs end at `num_steps` with bit-identical state and the same metrics lines."""
  a, step_a = _final_state(tiny_mnist_config(), reference)
  b, step_b = _final_state(tiny_mnist_config(), other)
  assert step_a == step_b == num_steps
  chex.assert_trees_all_equal(a, b)  # Bit-identical on CPU.
  assert _metrics(reference) == _metrics(other)


def test_end_to_end_writes_the_run(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # A relative --workdir, as users type it.
  config = tiny_mnist_config()
  with tfds.testing.mock_data(num_examples=64):
    result = api.train_and_evaluate(config, 'runs/tiny')
  workdir = tmp_path / 'runs' / 'tiny'
  assert np.isfinite(result['d_loss']) and np.isfinite(result['g_loss'])
  saved = json.loads((workdir / 'config.json').read_text())
  assert saved['train']['num_steps'] == 6 and saved['model']['g_hidden'] == [32, 32]
  lines = _metrics(workdir)
  assert [l['step'] for l in lines] == [2, 4, 6]
  for key in ('d_loss', 'g_loss', 'value', 'd_real', 'd_fake', 'lr', 'momentum', 'epoch'):
    assert all(np.isfinite(l[key]) for l in lines), key
  assert sorted(os.listdir(workdir / 'samples')) == ['step_00000003.png', 'step_00000006.png']
  from PIL import Image
  grid = Image.open(workdir / 'samples' / 'step_00000006.png')
  assert grid.size == (10 * 29 - 1, 10 * 29 - 1)
  assert os.listdir(workdir / 'tensorboard')
  state, step = _final_state(config, str(workdir))
  assert step == 6 and int(state.step) == 6


@pytest.mark.parametrize('update_rule', ['simultaneous', 'alternating'])
def test_resume_is_exact(tmp_path, update_rule):
  straight, split = str(tmp_path / 'straight'), str(tmp_path / 'split')
  with tfds.testing.mock_data(num_examples=40):  # 5 batches an epoch: resuming crosses epochs.
    api.train_and_evaluate(tiny_mnist_config(update_rule=update_rule, num_steps=12), straight)
    api.train_and_evaluate(tiny_mnist_config(update_rule=update_rule, num_steps=6), split)
    api.train_and_evaluate(tiny_mnist_config(update_rule=update_rule, num_steps=12), split)
  assert_same_run(straight, split, 12)


def test_resume_after_lost_steps_rewrites_metrics(tmp_path):
  """A run killed after logging past its last checkpoint logs those steps again, once."""
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=40):
    api.train_and_evaluate(tiny_mnist_config(num_steps=4, checkpoint_every=3), workdir)
    # Lose the step-4 checkpoint, as a kill between the log and the save would.
    import shutil
    shutil.rmtree(os.path.join(workdir, 'checkpoints', '4'))
    api.train_and_evaluate(tiny_mnist_config(num_steps=6, checkpoint_every=3), workdir)
  assert [l['step'] for l in _metrics(workdir)] == [2, 4, 6]


@pytest.mark.skipif(not REAL_MNIST, reason='set TFDS_DATA_DIR to a TFDS dir holding mnist')
def test_real_mnist_splits_and_steps(tmp_path):
  from gan_jax import data
  config = tiny_mnist_config(num_steps=4, batch_size=100)
  splits = data.load_splits(config.data, ('train', 'valid', 'test'))
  assert {k: v.shape for k, v in splits.items()} == {
      'train': (50000, 28, 28, 1), 'valid': (10000, 28, 28, 1), 'test': (10000, 28, 28, 1)}
  assert splits['train'].dtype == np.float32
  assert splits['train'].min() == 0.0 and splits['train'].max() == 1.0
  # Not binarised: MNIST has grey levels.
  assert len(np.unique(splits['train'][:100])) > 100
  np.testing.assert_allclose(np.concatenate([splits['train'], splits['valid']]).mean(),
                             0.130660, atol=1e-5)  # shared/data/README.md
  result = api.train_and_evaluate(config, str(tmp_path / 'real'))
  assert np.isfinite(result['d_loss'])


def test_bfloat16_compute_trains(tmp_path):
  config = tiny_mnist_config()
  config.model.compute_dtype = 'bfloat16'
  with tfds.testing.mock_data(num_examples=64):
    result = api.train_and_evaluate(config, str(tmp_path / 'bf16'))
  assert np.isfinite(result['d_loss']) and np.isfinite(result['g_loss'])
  state, _ = _final_state(config, str(tmp_path / 'bf16'))
  assert all(p.dtype == np.float32 for p in jax.tree.leaves(state.g_params))
