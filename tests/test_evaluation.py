"""The Parzen protocol on a run (--mode=eval) and during training."""

import json
import os

import chex
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REAL_MNIST, small_eval, tiny_mnist_config
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import evaluation
from gan_jax import experiment


def test_eval_mode_writes_parzen_json(tmp_path):
  workdir = str(tmp_path / 'run')
  config = small_eval(tiny_mnist_config(num_steps=4))
  config.eval.every = 2  # The cheap estimate during training, logged with the metrics.
  with tfds.testing.mock_data(num_examples=64):
    result = api.train_and_evaluate(config, workdir)
    record = evaluation.evaluate(config, workdir)
    at_3 = evaluation.evaluate(config, workdir, step=3)
  assert np.isfinite(result['parzen_valid']) and result['parzen_sigma'] in config.eval.parzen.sigmas
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    assert sum('parzen_valid' in json.loads(l) for l in f) == 2
  saved = json.load(open(os.path.join(workdir, 'parzen.json')))
  assert saved == record and saved['step'] == 4 and at_3['step'] == 3
  assert os.path.exists(os.path.join(workdir, 'parzen_step_00000003.json'))
  assert saved['n_samples'] == 50 and saved['n_valid'] == 20 and saved['n_test'] == 64
  assert saved['sigma'] == saved['sigmas'][int(np.argmax(saved['valid_ll']))]
  assert np.isfinite(saved['mean_ll']) and saved['std_err'] > 0


def test_eval_without_checkpoints_is_a_clear_error(tmp_path):
  config = small_eval(tiny_mnist_config())
  with tfds.testing.mock_data(num_examples=64):
    with pytest.raises(checkpoint.CheckpointError, match='No checkpoints in .*train first'):
      evaluation.evaluate(config, str(tmp_path / 'nothing'))
  assert not (tmp_path / 'nothing' / 'checkpoints').exists()


def test_eval_with_another_model_is_a_clear_error(tmp_path):
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=64):
    api.train_and_evaluate(tiny_mnist_config(num_steps=2, checkpoint_every=2), workdir)
    other = small_eval(tiny_mnist_config())
    other.model.g_hidden = (48, 48)
    with pytest.raises(checkpoint.CheckpointError, match='does not fit this model'):
      evaluation.evaluate(other, workdir)
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['2']


def test_g_average_is_the_mean_of_the_checkpoints_generators(tmp_path):
  workdir = str(tmp_path / 'run')
  config = small_eval(tiny_mnist_config(num_steps=6, checkpoint_every=2, keep_checkpoints=10))
  with tfds.testing.mock_data(num_examples=64):
    api.train_and_evaluate(config, workdir)
    plain = evaluation.evaluate(config, workdir, step=6)
    config.eval.parzen.g_average = 4
    averaged = evaluation.evaluate(config, workdir, step=6)
    exp = experiment.build(config, (28, 28, 1), 20)
  assert averaged['averaged_steps'] == [2, 4, 6] and averaged['g_average'] == 4
  assert 'averaged_steps' not in plain and averaged['mean_ll'] != plain['mean_ll']
  saved = os.path.join(workdir, 'parzen_step_00000006_g_average_4.json')
  assert json.load(open(saved)) == averaged
  assert json.load(open(os.path.join(workdir, 'parzen_step_00000006.json'))) == plain
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
  target = exp.initial_state(None)
  mean, restored, steps = evaluation.restore_generator(ckpt, exp.g_shapes(), 6, 4)
  alone = evaluation.restore_generator(ckpt, exp.g_shapes(), None)
  by_hand = [ckpt.restore(target, s)[0].g_params for s in (2, 4, 6)]
  ckpt.close()
  assert restored == 6 and steps == [2, 4, 6] and alone[1:] == (6, [6])
  chex.assert_trees_all_equal(alone[0], by_hand[-1])
  for leaf, *parts in zip(jax.tree.leaves(mean), *map(jax.tree.leaves, by_hand)):
    np.testing.assert_allclose(leaf, sum(np.asarray(p) for p in parts) / 3, rtol=1e-6, atol=1e-7)


def test_g_average_over_a_single_checkpoint_is_a_clear_error(tmp_path):
  workdir = str(tmp_path / 'run')
  config = small_eval(tiny_mnist_config(num_steps=6, checkpoint_every=2))  # Keeps 3.
  with tfds.testing.mock_data(num_examples=64):
    api.train_and_evaluate(config, workdir)
    config.eval.parzen.g_average = 1
    with pytest.raises(checkpoint.CheckpointError,
                       match=r'g_average=1 finds only the checkpoint\(s\) \[6\] in \[5, 6\]: '
                             'widen it, or keep more checkpoints'):
      evaluation.evaluate(config, workdir, step=6)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints')), key=int) == ['2', '4', '6']
  assert not any(n.startswith('parzen') for n in os.listdir(workdir))


@pytest.mark.skipif(not REAL_MNIST, reason='set TFDS_DATA_DIR to a TFDS dir holding mnist')
def test_data_as_samples_reference_on_real_mnist(tmp_path):
  """10,000 training images as the samples: the number the developers' guide measured."""
  config = tiny_mnist_config()
  config.eval.parzen.data_as_samples = True
  record = evaluation.evaluate(config, str(tmp_path))
  assert record['n_samples'] == 10_000 and record['n_valid'] == 1_000
  assert record['n_test'] == 10_000
  np.testing.assert_allclose(record['sigma'], 0.16681, rtol=1e-4)
  np.testing.assert_allclose(record['mean_ll'], 243.6, atol=0.1)
  np.testing.assert_allclose(record['std_err'], 2.1, atol=0.1)
