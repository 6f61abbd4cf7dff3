"""Tests for the TFD builder on synthetic files in the authors' .mat layout."""

import os
import subprocess
import sys

import chex
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax.datasets import tfd
import tfd_fixtures

SPLITS = ('unlabeled', 'train', 'valid', 'test')
N = 64


def _prepare(name, data_dir, manual_dir=None):
  """Prepares `name` through TFDS and returns {split: arrays sorted by row}."""
  builder = tfds.builder(name, data_dir=os.fspath(data_dir))
  config = (tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir))
            if manual_dir is not None else None)
  builder.download_and_prepare(download_config=config)
  out = {}
  for split in SPLITS:
    batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    order = np.argsort(batch['index'])
    out[split] = {k: v[order] for k, v in batch.items()}
  return builder, out


def _expected(arrays, fold, split):
  """What pylearn2's TFD(which_set=split, fold=fold) would select."""
  rows = np.flatnonzero(arrays['folds'][:, fold] == tfd.SPLIT_CODES[split])
  labs_ex = arrays['labs_ex'][rows, 0].astype(np.int64)
  labs_id = arrays['labs_id'][rows, 0].astype(np.int64)
  unlabeled = split == 'unlabeled'
  return {
      'index': rows,
      'image': arrays['images'][rows][..., None],
      'label': np.full_like(labs_ex, -1) if unlabeled else labs_ex - 1,
      'identity': np.full_like(labs_id, -1) if unlabeled else labs_id,
  }


def _assert_matches(got, want):
  for key, value in want.items():
    np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.fixture(scope='module')
def arrays():
  return tfd_fixtures.synthetic_tfd_arrays(n=N, size=48, seed=0)


@pytest.fixture(scope='module')
def v5_fold0(tmp_path_factory):
  """v5 file passed as an explicit DownloadConfig(manual_dir=...)."""
  root = tmp_path_factory.mktemp('v5')
  manual = root / 'my_manual'
  manual.mkdir()
  tfd_fixtures.write_synthetic_tfd(manual, n=N, size=48, fmt='v5', seed=0)
  return _prepare('tfd/48x48_fold0', root / 'data', manual_dir=manual)[1]


@pytest.fixture(scope='module')
def v73_fold0(tmp_path_factory):
  """v7.3 file found in TFDS's default <data_dir>/downloads/manual/."""
  data_dir = tmp_path_factory.mktemp('v73') / 'data'
  manual = data_dir / 'downloads' / 'manual'
  manual.mkdir(parents=True)
  tfd_fixtures.write_synthetic_tfd(manual, n=N, size=48, fmt='v73', seed=0)
  return _prepare('tfd/48x48_fold0', data_dir)[1]


def test_registered_configs():
  builder = tfds.builder('tfd', data_dir='/nonexistent')
  assert builder.builder_config.name == '48x48_fold0'
  names = [c.name for c in tfd.Tfd.BUILDER_CONFIGS]
  assert names == [f'{r}x{r}_fold{k}' for r in (48, 96) for k in range(5)]
  info = tfds.builder('tfd/96x96_fold4', data_dir='/nonexistent').info
  assert info.features['image'].shape == (96, 96, 1)
  assert info.features['label'].num_classes == 7
  assert info.supervised_keys == ('image', 'label')
  assert str(info.version) == '1.0.0'
  assert 'Susskind' in tfd.Tfd.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_split_sizes_match_fold_codes(v5_fold0, arrays):
  for split in SPLITS:
    want = np.sum(arrays['folds'][:, 0] == tfd.SPLIT_CODES[split])
    assert len(v5_fold0[split]['index']) == want > 0, split
  total = sum(len(v5_fold0[s]['index']) for s in SPLITS)
  assert total == N


def test_images_and_labels_round_trip(v5_fold0, arrays):
  for split in SPLITS:
    got = v5_fold0[split]
    chex.assert_shape(got['image'], (None, 48, 48, 1))
    assert got['image'].dtype == np.uint8
    _assert_matches(got, _expected(arrays, 0, split))
  assert set(np.unique(v5_fold0['unlabeled']['label'])) == {-1}
  labeled = np.concatenate([v5_fold0[s]['label'] for s in SPLITS[1:]])
  assert labeled.min() >= 0 and labeled.max() <= 6


def test_v5_and_v73_identical(v5_fold0, v73_fold0):
  for split in SPLITS:
    _assert_matches(v73_fold0[split], v5_fold0[split])


def test_read_tfd_mat_formats_agree(tmp_path, arrays):
  v5 = tfd_fixtures.write_mat(tmp_path / 'a.mat', arrays, fmt='v5')
  v73 = tfd_fixtures.write_mat(tmp_path / 'b.mat', arrays, fmt='v73')
  with open(v73, 'rb') as f:  # The MATLAB 7.3 userblock really is there.
    assert f.read(10) == b'MATLAB 7.3'
  a, b = tfd.read_tfd_mat(v5, 48), tfd.read_tfd_mat(v73, 48)
  for key in tfd.FIELDS:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  np.testing.assert_array_equal(a['images'], arrays['images'])
  np.testing.assert_array_equal(a['labs_ex'], arrays['labs_ex'][:, 0])


def test_other_fold_and_96x96(tmp_path, v5_fold0):
  data_dir = tmp_path / 'data'
  manual = data_dir / 'downloads' / 'manual'
  manual.mkdir(parents=True)
  tfd_fixtures.write_synthetic_tfd(manual, n=N, size=48, fmt='v5', seed=0)
  arrays96 = tfd_fixtures.synthetic_tfd_arrays(n=N, size=96, seed=1)
  tfd_fixtures.write_mat(manual / 'TFD_96x96.mat', arrays96, fmt='v73')

  arrays48 = tfd_fixtures.synthetic_tfd_arrays(n=N, size=48, seed=0)
  _, fold3 = _prepare('tfd/48x48_fold3', data_dir)
  for split in SPLITS:
    _assert_matches(fold3[split], _expected(arrays48, 3, split))
  # The unlabeled set is the same in every fold; the labeled splits are not.
  _assert_matches(fold3['unlabeled'], v5_fold0['unlabeled'])
  assert not np.array_equal(fold3['train']['index'], v5_fold0['train']['index'])

  _, big = _prepare('tfd/96x96_fold0', data_dir)
  for split in SPLITS:
    chex.assert_shape(big[split]['image'], (None, 96, 96, 1))
    _assert_matches(big[split], _expected(arrays96, 0, split))


def test_missing_file_gives_clear_message(tmp_path):
  data_dir = tmp_path / 'data'
  expected = os.fspath(data_dir / 'downloads' / 'manual' / 'TFD_48x48.mat')
  assert tfd.manual_file_path(data_dir) == expected
  assert tfd.find_manual_file(data_dir) is None
  message = tfd.missing_file_message(data_dir, resolution=48)
  assert '\n' not in message and expected in message
  assert 'Susskind' in message and 'TFD_48x48.mat' in message

  builder = tfds.builder('tfd/48x48_fold0', data_dir=os.fspath(data_dir))
  with pytest.raises(FileNotFoundError) as e:
    builder.download_and_prepare()  # TFDS would say 'dir does not exist'.
  assert str(e.value) == message

  # An explicit manual dir that holds only the other resolution.
  manual = tmp_path / 'manual'
  manual.mkdir()
  tfd_fixtures.write_synthetic_tfd(manual, n=N, size=48, fmt='v5')
  assert tfd.find_manual_file(data_dir, manual) == os.fspath(
      manual / 'TFD_48x48.mat')
  assert tfd.find_manual_file(data_dir, manual, resolution=96) is None
  builder = tfds.builder('tfd/96x96_fold0', data_dir=os.fspath(data_dir))
  with pytest.raises(FileNotFoundError) as e:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual))
  assert str(e.value) == tfd.missing_file_message(data_dir, manual, 96)
  assert os.fspath(manual / 'TFD_96x96.mat') in str(e.value)


def test_manual_dir_follows_tfds_data_dir_env(tmp_path):
  # TFDS reads TFDS_DATA_DIR at import time, hence a fresh interpreter.
  code = ('from gan_jax.datasets import tfd; '
          'print(tfd.manual_file_path(resolution=96))')
  env = dict(os.environ, TFDS_DATA_DIR=os.fspath(tmp_path))
  repo = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(tfd.__file__))))
  env['PYTHONPATH'] = os.pathsep.join([repo, env.get('PYTHONPATH', '')])
  out = subprocess.run([sys.executable, '-c', code], env=env, check=True,
                       capture_output=True, text=True).stdout.strip()
  assert out == os.fspath(tmp_path / 'downloads' / 'manual' / 'TFD_96x96.mat')


def _malformed(arrays, **changes):
  bad = dict(arrays)
  for key, value in changes.items():
    if value is None:
      del bad[key]
    else:
      bad[key] = value
  return bad


@pytest.mark.parametrize('fmt', ['v5', 'v73'])
@pytest.mark.parametrize('changes, match', [
    (dict(labs_id=None), r"missing field\(s\) \['labs_id'\]"),
    (dict(images=np.zeros((N, 48, 40), np.uint8)), r"'images' has shape"),
    (dict(images=np.zeros((N, 96, 96), np.uint8)), r'expected \(N, 48, 48\)'),
    (dict(folds=np.zeros((N, 4), np.uint8)), r"'folds' has shape"),
    (dict(folds=np.full((N, 5), 7, np.uint8)), r'codes 0\.\.3'),
    (dict(labs_ex=np.zeros((N - 1, 1))), r"'labs_ex' has shape"),
    (dict(labs_id=np.full((N, 1), 0.5)), r"'labs_id' must hold integers"),
    (dict(images=np.full((N, 48, 48), 300.0)), r'uint8 pixels'),
])
def test_malformed_file_raises(tmp_path, arrays, fmt, changes, match):
  path = tfd_fixtures.write_mat(tmp_path / 'TFD_48x48.mat',
                                _malformed(arrays, **changes), fmt=fmt)
  with pytest.raises(ValueError, match=match):
    tfd.read_tfd_mat(path, resolution=48)


def test_not_a_mat_file(tmp_path):
  path = tmp_path / 'TFD_48x48.mat'
  path.write_bytes(b'<html>404 not found</html>' * 10)
  with pytest.raises(ValueError, match='not a readable MATLAB .mat file'):
    tfd.read_tfd_mat(path)


@pytest.mark.parametrize('changes, match', [
    (dict(labs_ex=np.zeros((N, 1))), r'must be in 1\.\.7'),
    (dict(folds=np.zeros((N, 5), np.uint8)), r"no 'train' examples"),
])
def test_malformed_file_through_builder(tmp_path, arrays, changes, match):
  manual = tmp_path / 'manual'
  manual.mkdir()
  tfd_fixtures.write_mat(manual / 'TFD_48x48.mat',
                         _malformed(arrays, **changes), fmt='v5')
  builder = tfds.builder('tfd/48x48_fold0', data_dir=os.fspath(tmp_path))
  with pytest.raises(ValueError, match=match):
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual))


def test_bad_resolution():
  with pytest.raises(ValueError, match='resolution must be one of'):
    tfd.manual_file_path('/tmp', resolution=64)
