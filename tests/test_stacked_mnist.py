"""Stacked MNIST: the dataset (gan_jax.stacked_mnist via gan_jax.data), its metric
(gan_jax.modes), --mode=eval --config.eval.method=modes on it, and its bad inputs.

Real digits come from the original IDX files beside TFDS_DATA_DIR (../shared/data/mnist_idx);
those tests skip cleanly without them. The rest use small fake IDX files or TFDS's mock data.
"""

import gzip
import json
import os
import struct

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import stacked_mnist as stacked_experiment
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import classifier
from gan_jax import data
from gan_jax import experiment
from gan_jax import modes
from gan_jax import modes_protocol
from gan_jax import state as state_lib
from gan_jax import validation
from gan_jax.errors import CheckpointError
from gan_jax.errors import ConfigError
from gan_jax.errors import DataError

REAL_IDX = os.path.join(os.environ.get('TFDS_DATA_DIR', ''), os.pardir, 'mnist_idx')
NEEDS_REAL = pytest.mark.skipif(
    not os.path.isfile(os.path.join(REAL_IDX, data.IDX_FILES['train'])),
    reason='needs the original MNIST IDX files beside TFDS_DATA_DIR (../shared/data)')
LOG_1000 = float(np.log(1000))


def _write_idx(path, array):
  header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim) + struct.pack(
      f'>{array.ndim}i', *array.shape)
  with gzip.open(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope='module')
def fake_idx(tmp_path_factory):
  """IDX files of 60 training and 20 test 'digits': random pixels, each image distinct."""
  directory = tmp_path_factory.mktemp('idx')
  rng = np.random.default_rng(0)
  train = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8)
  test = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
  _write_idx(directory / data.IDX_FILES['train'], train)
  _write_idx(directory / data.IDX_FILES['test'], test)
  return str(directory), train


def tiny_config(idx_dir):
  """experiments/stacked_mnist.py with small networks, a short run and few samples."""
  config = stacked_experiment.get_config()
  d = config.data
  d.idx_dir, d.train_split, d.valid_split = idx_dir, 'train[:50]', 'train[50:]'
  m = config.model
  m.g_hidden, m.d_units, m.d_pieces = (32, 32), (16, 16), 3
  t = config.train
  t.batch_size, t.num_steps, t.steps_per_call = 8, 1, 1
  t.log_every = t.checkpoint_every = t.sample_every = 1
  config.eval.modes.num_samples = 200
  return config


# ------------------------------------------------------------------------------------- dataset


def test_examples_stack_three_mnist_digits_as_channels(fake_idx):
  directory, train = fake_idx
  x = data.load_split(tiny_config(directory).data, 'train[:50]')
  assert x.shape == (50, 28, 28, 3) and x.dtype == np.float32
  assert x.min() >= 0.0 and x.max() <= 1.0
  # Every channel is one of the split's 50 digits, as data.load_split gives them for MNIST.
  digits = train[:50].reshape(50, -1) / np.float32(255)
  channels = np.moveaxis(x, -1, 1).reshape(150, -1)
  distance = np.abs(channels[:, None, :] - digits[None, :, :]).max(-1)
  assert (distance.min(1) == 0).all()
  # Drawn at random with replacement: many distinct digits, not a fixed pattern.
  assert len(set(distance.argmin(1).tolist())) > 30


def test_draws_depend_only_on_seed_and_split(fake_idx):
  directory, _ = fake_idx
  config = tiny_config(directory)
  x = data.load_split(config.data, 'train[:50]')
  np.testing.assert_array_equal(x, data.load_split(config.data, 'train[:50]'))
  splits = data.load_splits(config.data, ('train', 'valid', 'test'))
  np.testing.assert_array_equal(splits['train'], x)
  assert splits['valid'].shape == (10, 28, 28, 3) and splits['test'].shape == (20, 28, 28, 3)
  # The same 50 digits under another split's name are drawn differently.
  assert not np.array_equal(x, data.load_split(config.data, 'train[0:50]'))
  config.data.stacked_seed = 1
  assert not np.array_equal(x, data.load_split(config.data, 'train[:50]'))
  config.data.stacked_size = 7
  assert data.load_split(config.data, 'train[:50]').shape == (7, 28, 28, 3)


def test_tfds_source_reads_the_mnist_split():
  config = stacked_experiment.get_config()
  config.data.allow_download = True  # mock_data's builder is never 'prepared'.
  with tfds.testing.mock_data(num_examples=12):
    x = data.load_split(config.data, 'test')
  assert x.shape == (12, 28, 28, 3) and x.dtype == np.float32


@pytest.mark.parametrize('field,value,split,message', [
    ('stacked_size', -1, 'train[:50]',
     r'config.data.stacked_size must be >= 0 \(0 = as many as the MNIST split holds\), got -1'),
    ('stacked_size', 0, 'train[5:5]', r"Split 'train\[5:5\]' of .* is empty"),
])
def test_bad_stacked_data_are_one_line_errors(fake_idx, field, value, split, message):
  config = tiny_config(fake_idx[0])
  config.data[field] = value
  with pytest.raises(DataError, match=message) as e:
    data.load_split(config.data, split)
  assert '\n' not in str(e.value)


# -------------------------------------------------------------------------------------- metric


def test_metric_of_known_labels():
  every_mode = np.stack(np.unravel_index(np.arange(1000), (10, 10, 10)), axis=1)
  result = modes.stacked_coverage_of_labels(every_mode)
  assert result == {'modes_covered': 1000, 'kl_to_uniform': pytest.approx(0.0, abs=1e-5),
                    'num_samples': 1000, 'num_modes': 1000}
  # 500 modes twice each: q = 1/500 on each, KL = log(1000 / 500).
  half = np.repeat(every_mode[::2], 2, axis=0)
  result = modes.stacked_coverage_of_labels(half)
  assert result['modes_covered'] == 500
  assert result['kl_to_uniform'] == pytest.approx(np.log(2), abs=1e-5)
  one = modes.stacked_coverage_of_labels(np.tile([[3, 7, 1]], (26, 1)))
  assert one['modes_covered'] == 1
  assert one['kl_to_uniform'] == pytest.approx(LOG_1000, abs=1e-5)


def test_mode_index_is_hundreds_tens_units():
  counts, kl = modes.stacked_mode_counts(np.array([[3, 7, 1], [3, 7, 1], [0, 0, 9]]))
  counts = np.asarray(counts)
  assert counts[371] == 2 and counts[9] == 1 and counts.sum() == 3
  expected = 2 / 3 * np.log(2 / 3 * 1000) + 1 / 3 * np.log(1 / 3 * 1000)
  assert float(kl) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('labels,message', [
    (np.zeros((4, 2), int), r'channel_labels must be \[N, 3\] with N > 0, got \(4, 2\)'),
    (np.zeros((0, 3), int), r'channel_labels must be \[N, 3\] with N > 0'),
    (np.full((4, 3), 10), r'channel_labels must be digits 0-9, got 10..10'),
])
def test_bad_labels_are_errors(labels, message):
  with pytest.raises(ValueError, match=message):
    modes.stacked_coverage_of_labels(labels)


def test_samples_that_are_not_stacked_images_are_an_error():
  module, params = classifier.load('mnist')
  with pytest.raises(ValueError, match=r'Stacked MNIST samples are \[N, 28, 28, 3\]'):
    modes.stacked_mnist_coverage(module, params, np.zeros((4, 28, 28, 1), np.float32))


@pytest.fixture(scope='module')
def shipped():
  return classifier.load('mnist')


@NEEDS_REAL
def test_real_stacked_data_cover_every_mode(shipped):
  config = stacked_experiment.get_config()
  config.data.idx_dir, config.data.stacked_size = REAL_IDX, 6_000
  x = data.load_split(config.data, config.data.train_split)
  result = modes.stacked_mnist_coverage(*shipped, x)
  # 6 per mode on average, the rarest triple (5, 5, 5) ~4.4: all 1,000 but a few chance misses;
  # KL ~ 999 / (2 * 6,000) of a finite sample plus ~0.01 of MNIST's unequal digit frequencies.
  assert result['modes_covered'] >= 990 and result['num_samples'] == 6_000
  assert 0.05 < result['kl_to_uniform'] < 0.15


@NEEDS_REAL
def test_real_digits_of_one_triple_cover_one_mode(shipped):
  digits = data.read_idx(os.path.join(REAL_IDX, data.IDX_FILES['test']))[:2_000]
  digits = digits[..., None] / np.float32(255)
  _, logits = classifier.features_and_logits(*shipped, digits)
  seen = np.argmax(logits, axis=1)
  # 100 different real 3s, 7s and 1s (as the classifier reads them) in the three channels.
  x = np.stack([digits[seen == d][:100, ..., 0] for d in (3, 7, 1)], axis=-1)
  assert x.shape == (100, 28, 28, 3)
  np.testing.assert_array_equal(modes.label_channels(*shipped, x), np.tile([3, 7, 1], (100, 1)))
  result = modes.stacked_mnist_coverage(*shipped, x)
  assert result['modes_covered'] == 1
  assert result['kl_to_uniform'] == pytest.approx(LOG_1000, abs=1e-5)


# --------------------------------------------------------------------------------- experiment


@pytest.mark.parametrize('rule', ['simultaneous', 'alternating'])
def test_experiment_config_is_valid_with_either_rule(rule):
  config = stacked_experiment.get_config()
  config.train.update_rule = rule
  validation.validate(config, 1)
  assert config.data.name == 'stacked_mnist' and config.eval.method == 'modes'
  assert config.model.g_hidden == (1200, 1200) and config.model.d_units == (240, 240)
  with pytest.raises(ValueError, match='experiments/stacked_mnist.py'):
    stacked_experiment.get_config('quick')


def test_one_step_train_then_eval_modes_over_seeds(fake_idx, tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config(fake_idx[0])
  config.num_seeds = 2
  api.train_and_evaluate(config, workdir)
  summary = api.evaluate(config, workdir)
  with open(os.path.join(workdir, 'modes_seeds.json')) as f:
    assert json.load(f) == summary
  records = []
  for s in (0, 1):
    with open(os.path.join(workdir, f'seed_{s}', 'modes.json')) as f:
      records.append(json.load(f))
  for record in records:
    assert record['num_modes'] == 1000 and record['num_samples'] == 200 and record['step'] == 1
    assert 1 <= record['modes_covered'] <= 200
    assert 0 <= record['kl_to_uniform'] <= LOG_1000 + 1e-5
    assert record['classifier'] == 'mnist' and 'high_quality' not in record
  assert [e['modes_covered'] for e in summary['per_seed']] == [
      r['modes_covered'] for r in records]
  assert summary['modes_covered'] == pytest.approx(np.mean([r['modes_covered'] for r in records]))
  assert summary['kl_to_uniform'] == pytest.approx(np.mean([r['kl_to_uniform'] for r in records]))
  assert summary['sd_kl_to_uniform'] >= 0 and summary['num_samples'] == 200
  assert 'high_quality' not in summary and 'min_count' not in summary
  # Seed 1's record is `coverage` of its slice of the restored G, with the record's key.
  exp = experiment.build(config, (28, 28, 3))
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    g_params, _ = ckpt.restore_params('g_params', None, exp.g_shapes())
  again = modes_protocol.coverage(exp, state_lib.seed_slice(g_params, 1), 200,
                                  config.eval.modes.seed)
  assert again['modes_covered'] == records[1]['modes_covered']
  assert again['kl_to_uniform'] == pytest.approx(records[1]['kl_to_uniform'])


def test_data_as_samples_is_the_reference_row(fake_idx, tmp_path):
  config = tiny_config(fake_idx[0])
  config.eval.modes.data_as_samples = 'train'
  config.eval.modes.num_samples = 40  # The first 40 of the 50 stacked training images.
  reference = api.evaluate(config, str(tmp_path / 'data'))
  with open(tmp_path / 'data' / 'modes_data_as_samples.json') as f:
    assert json.load(f) == reference
  assert reference['samples'] == 'training images' and reference['num_samples'] == 40
  x = data.load_split(config.data, config.data.train_split)[:40]
  assert reference['modes_covered'] == modes.stacked_mnist_coverage(
      *classifier.load('mnist'), x)['modes_covered']
  config.eval.modes.num_samples = 51  # More than the 50 stacked training examples.
  with pytest.raises(DataError, match=r'Data as samples needs 51 images of the train split, it '
                     r'has 50: lower config.eval.modes.num_samples'):
    api.evaluate(config, str(tmp_path / 'data'))


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize('content,message', [
    (None, r'The mnist classifier weights .* are missing: reinstall gan_jax'),
    (b'not the weights', r'The mnist classifier weights .* are corrupt \(SHA-256 .*\): '
     r'reinstall gan_jax'),
])
def test_missing_classifier_weights_stop_the_modes_eval_in_one_line(
    tmp_path, monkeypatch, content, message):
  assets = tmp_path / 'assets'
  assets.mkdir()
  if content is not None:
    (assets / classifier.SHIPPED['mnist'].filename).write_bytes(content)
  monkeypatch.setattr(classifier, 'ASSETS_DIR', str(assets))
  config = stacked_experiment.get_config()
  with pytest.raises(CheckpointError, match=message) as e:
    validation.validate(config, 1)
  assert '\n' not in str(e.value)
  with pytest.raises(CheckpointError, match=message):
    api.evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
  exp = experiment.build(config, (28, 28, 3))
  with pytest.raises(CheckpointError, match=message):
    modes_protocol.coverage(exp, None, 10, 0)  # Before G is needed.
  # Other methods on Stacked MNIST do not need the classifier.
  config.eval.method = 'parzen'
  validation.validate(config, 1)


@pytest.mark.parametrize('field,value,message', [
    ('num_samples', -1, r'config.eval.modes.num_samples must be an integer >= 0 \(0 = the '
     r"dataset's default: 2,500 for a mixture, 26,000 for Stacked MNIST\), got -1"),
    ('data_as_samples', 'test', r"Unknown eval.modes.data_as_samples 'test'"),
])
def test_bad_modes_settings_are_one_line_errors(field, value, message):
  config = stacked_experiment.get_config()
  config.eval.modes[field] = value
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, 1)


def test_data_as_samples_needs_the_modes_method():
  config = stacked_experiment.get_config()
  config.eval.method = 'parzen'
  config.eval.modes.data_as_samples = 'train'
  with pytest.raises(ConfigError, match=r"data_as_samples='train' applies to the modes method, "
                     r"not 'parzen': add --config.eval.method=modes"):
    validation.validate(config, 1)
