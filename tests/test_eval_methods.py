"""--mode=eval's other methods on a run: AIS (ais.json) and sample quality (sample_quality.json).

The kernels have their own tests (test_ais.py, test_metrics.py, test_classifier.py); these check
the protocols on checkpoints: what the records hold, file names, several seeds, references,
the estimate logged in training, and every bad input as one line with nothing written.
"""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REAL_MNIST, small_eval, tiny_mnist_config
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import classifier
from gan_jax import data
from gan_jax import evaluation
from gan_jax import metrics
from gan_jax.errors import ConfigError

MOCK = 300  # Mock split size: FID needs more samples than the classifier's feature dimension.


def _ais(config):
  config.eval.method = 'ais'
  a = config.eval.ais
  a.num_test, a.valid_size, a.num_chains, a.num_temps, a.leapfrog_steps = 6, 4, 2, 5, 2
  a.obs_stds, a.bdmc_examples, a.batch_size = (0.1, 0.3), 3, 4
  return config


def _quality(config):
  config.eval.method = 'sample_quality'
  q = config.eval.sample_quality
  q.num_samples, q.kid_subsets, q.kid_subset_size, q.batch_size = MOCK, 5, 100, 128
  q.train_num_samples = 150
  return config


def _read(path):
  with open(path) as f:
    return json.load(f)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A 4-step tiny MNIST run with checkpoints at steps 2 and 4, on mock data."""
  workdir = str(tmp_path_factory.mktemp('methods') / 'run')
  with tfds.testing.mock_data(num_examples=MOCK):
    api.train_and_evaluate(tiny_mnist_config(num_steps=4, checkpoint_every=2), workdir)
  return workdir


def test_ais_writes_its_record_with_the_bdmc_gap(run):
  config = _ais(tiny_mnist_config(num_steps=4))
  with tfds.testing.mock_data(num_examples=MOCK):
    record = api.evaluate(config, run)
    at_2 = api.evaluate(config, run, step=2)
  assert _read(os.path.join(run, 'ais.json')) == record
  assert _read(os.path.join(run, 'ais_step_00000002.json')) == at_2
  assert record['step'] == 4 and at_2['step'] == 2
  assert record['n_test'] == 6 and record['num_chains'] == 2 and record['num_temps'] == 5
  assert record['leapfrog_steps'] == 2 and record['obs_std_chosen']
  # obs_std is the grid value with the highest validation log-likelihood.
  assert record['obs_std'] == record['obs_stds'][int(np.argmax(record['valid_ll']))]
  assert np.isfinite(record['mean_ll']) and record['std_err'] > 0
  bdmc = record['bdmc']
  assert bdmc['gap'] == pytest.approx(bdmc['upper'] - bdmc['lower'])
  assert record['seconds'] >= 0 and 0 <= record['acceptance'] <= 1


def test_ais_with_a_given_obs_std_scores_no_grid(run):
  config = _ais(tiny_mnist_config(num_steps=4))
  config.eval.ais.obs_std, config.eval.ais.bdmc_examples = 0.2, 0
  with tfds.testing.mock_data(num_examples=MOCK):
    record = api.evaluate(config, run, step=2)
  assert record['obs_std'] == 0.2 and not record['obs_std_chosen']
  assert 'valid_ll' not in record and 'bdmc' not in record


def test_sample_quality_writes_every_metric(run):
  config = _quality(tiny_mnist_config(num_steps=4))
  with tfds.testing.mock_data(num_examples=MOCK):
    record = api.evaluate(config, run)
  assert _read(os.path.join(run, 'sample_quality.json')) == record
  assert record['n_samples'] == MOCK and record['n_test'] == MOCK and record['n_train'] == MOCK
  assert record['classifier'] == 'mnist'
  assert record['classifier_sha256'] == classifier.shipped('mnist').sha256
  for key in ('fid', 'kid_mean', 'kid_sd', 'classifier_score_mean', 'memorisation_threshold'):
    assert np.isfinite(record[key]), key
  # Mock splits hold the same images, so the test images' distance to the training set is 0 and
  # the median ratio undefined: null in the JSON, never NaN.
  assert record['memorisation_median_ratio'] is None
  for key in ('precision', 'recall', 'density', 'coverage', 'memorisation_fraction_closer'):
    assert record[key] >= 0, key
  assert record['fid'] > 0 and 1 <= record['classifier_score_mean'] <= 10


def test_training_images_as_samples_are_all_memorised(tmp_path):
  config = _quality(tiny_mnist_config())
  config.eval.sample_quality.data_as_samples = 'train'
  with tfds.testing.mock_data(num_examples=MOCK):
    record = api.evaluate(config, str(tmp_path))  # No checkpoint needed.
  assert record['samples'] == 'training images'
  # Every sample is a training image; the mock test split is the same images, so the samples
  # match it exactly too.
  assert record['memorisation_copies'] == MOCK
  assert record['precision'] == record['recall'] == record['coverage'] == 1.0
  assert abs(record['fid']) < 1e-6
  assert os.path.exists(tmp_path / 'sample_quality_data_as_samples.json')
  assert not (tmp_path / 'checkpoints').exists()


def test_too_few_samples_for_fid_is_a_clear_error(run, tmp_path):
  config = _quality(tiny_mnist_config(num_steps=4))
  config.eval.sample_quality.num_samples = 20  # Fewer than the feature dimension.
  with tfds.testing.mock_data(num_examples=MOCK):
    with pytest.raises(ValueError, match='FID needs at least .* samples'):
      api.evaluate(config, run, step=2)
  assert not os.path.exists(os.path.join(run, 'sample_quality_step_00000002.json'))


def test_several_seeds_are_scored_one_by_one(tmp_path):
  workdir = str(tmp_path / 'seeds')
  config = _ais(tiny_mnist_config(num_steps=2, checkpoint_every=2))
  config.num_seeds = 2
  config.eval.ais.bdmc_examples = 0
  with tfds.testing.mock_data(num_examples=MOCK):
    api.train_and_evaluate(config, workdir)
    summary = api.evaluate(config, workdir)
  per_seed = [_read(os.path.join(workdir, f'seed_{s}', 'ais.json')) for s in (0, 1)]
  assert _read(os.path.join(workdir, 'ais_seeds.json')) == summary
  assert [e['mean_ll'] for e in summary['per_seed']] == [r['mean_ll'] for r in per_seed]
  assert summary['mean_ll'] == pytest.approx(np.mean([r['mean_ll'] for r in per_seed]))
  assert summary['sd_ll'] == pytest.approx(np.std([r['mean_ll'] for r in per_seed], ddof=1))
  assert summary['n_test'] == 6 and summary['num_temps'] == 5


def test_quality_estimate_is_logged_in_training(tmp_path):
  workdir = str(tmp_path / 'run')
  config = _quality(small_eval(tiny_mnist_config(num_steps=4)))
  config.eval.method = 'parzen'  # In-training logging does not depend on the eval method.
  config.eval.every, config.eval.sample_quality.in_training = 2, True
  with tfds.testing.mock_data(num_examples=MOCK):
    api.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    logged = [json.loads(line) for line in f if 'fid_valid' in line]
  assert [r['step'] for r in logged] == [2, 4]
  assert all(r['fid_valid'] > 0 and np.isfinite(r['kid_valid']) for r in logged)


@pytest.mark.parametrize('field, value, message', [
    ('method', 'fid', "Unknown eval.method 'fid'"),
    ('ais.num_chains', 0, 'config.eval.ais.num_chains must be positive'),
    ('ais.num_temps', 0, 'config.eval.ais.num_temps must be positive'),
    ('ais.obs_std', -0.1, r'config.eval.ais.obs_std must be > 0 \(or 0'),
    ('ais.obs_stds', (0.1, 0.0), 'config.eval.ais.obs_stds must be non-empty and positive'),
    ('sample_quality.data_as_samples', 'test',
     "Unknown eval.sample_quality.data_as_samples 'test'"),
    ('sample_quality.classifier', 'cifar10', "gan_jax ships no classifier for 'cifar10'"),
    ('modes.min_count', 0, 'config.eval.modes.min_count must be positive'),
])
def test_bad_settings_are_one_line_and_write_nothing(run, field, value, message):
  config = _ais(tiny_mnist_config(num_steps=4))
  section, _, name = field.rpartition('.')
  setattr(config.eval[section] if section else config.eval, name, value)
  if section == 'sample_quality':
    config.eval.method = 'sample_quality'
  before = sorted(os.listdir(run))
  with tfds.testing.mock_data(num_examples=MOCK):
    with pytest.raises(ConfigError, match=message) as error:
      api.evaluate(config, run)
  assert '\n' not in str(error.value)
  assert sorted(os.listdir(run)) == before


def test_data_as_samples_of_parzen_with_ais_is_refused(run):
  config = _ais(tiny_mnist_config(num_steps=4))
  config.eval.parzen.data_as_samples = True
  with pytest.raises(ConfigError, match='applies to the parzen method'):
    api.evaluate(config, run)


def test_a_prior_g_was_not_trained_with_is_refused(run):
  config = _ais(tiny_mnist_config(num_steps=4))
  config.model.prior = 'gaussian'  # The run's G was trained with 'uniform'.
  before = sorted(os.listdir(run))
  with tfds.testing.mock_data(num_examples=MOCK):
    with pytest.raises(ConfigError, match="trained G with the 'uniform' prior"):
      api.evaluate(config, run)
  assert sorted(os.listdir(run)) == before


def test_ais_without_checkpoints_is_a_clear_error(tmp_path):
  config = _ais(tiny_mnist_config())
  with tfds.testing.mock_data(num_examples=MOCK):
    with pytest.raises(checkpoint.CheckpointError, match='No checkpoints in .*train first'):
      api.evaluate(config, str(tmp_path / 'nothing'))


@pytest.mark.skipif(not REAL_MNIST, reason='needs the prepared MNIST (TFDS_DATA_DIR)')
def test_fid_on_real_mnist_features_separates_data_from_noise():
  """The issue's sanity check: FID of two halves of the test set small, of noise large."""
  splits = data.load_splits(tiny_mnist_config().data, ('test',))
  model, params = classifier.load('mnist')
  features, _ = classifier.features_and_logits(model, params, splits['test'], 1000)
  noise = np.random.default_rng(0).uniform(size=(5000, 28, 28, 1)).astype(np.float32)
  noise_features, _ = classifier.features_and_logits(model, params, noise, 1000)
  halves = metrics.fid(features[:5000], features[5000:])
  against_noise = metrics.fid(noise_features, features[5000:])
  assert halves < 0.05 * against_noise, (halves, against_noise)
