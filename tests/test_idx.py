"""MNIST read straight from the original IDX files (config.data.idx_dir), without TensorFlow."""

import gzip
import os
import struct

import numpy as np
import pytest

from conftest import REAL_MNIST, tiny_mnist_config
from gan_jax import api
from gan_jax import data

SHARED_IDX = os.path.join(os.environ.get('TFDS_DATA_DIR', ''), os.pardir, 'mnist_idx')


def _write_idx(path, array, gz=True):
  header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim) + struct.pack(
      f'>{array.ndim}i', *array.shape)
  with (gzip.open if gz else open)(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_dir(tmp_path):
  rng = np.random.default_rng(0)
  train = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
  test = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
  _write_idx(tmp_path / data.IDX_FILES['train'], train)
  _write_idx(tmp_path / data.IDX_FILES['test'], test)
  return str(tmp_path), train, test


def _config(directory):
  config = tiny_mnist_config()
  config.data.idx_dir = directory
  return config


def test_splits_and_slices(idx_dir):
  directory, train, test = idx_dir
  config = _config(directory)
  np.testing.assert_array_equal(data.load_split(config.data, 'train[:20]')[..., 0],
                                train[:20] / np.float32(255))
  np.testing.assert_array_equal(data.load_split(config.data, 'train[20:]')[..., 0],
                                train[20:] / np.float32(255))
  got = data.load_split(config.data, 'test')
  assert got.shape == (10, 28, 28, 1) and got.dtype == np.float32
  np.testing.assert_array_equal(got[..., 0], test / np.float32(255))


def test_uncompressed_file(tmp_path):
  images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
  _write_idx(tmp_path / 'raw', images, gz=False)
  np.testing.assert_array_equal(data.read_idx(str(tmp_path / 'raw')), images)


def test_one_training_step_from_idx(idx_dir, tmp_path):
  directory, _, _ = idx_dir
  config = _config(directory)
  config.data.train_split, config.data.valid_split = 'train[:20]', 'train[20:]'
  result = api.train_and_evaluate(config, str(tmp_path / 'run'))
  assert np.isfinite(result['d_loss']) and np.isfinite(result['g_loss'])
  assert (tmp_path / 'run' / 'checkpoints' / str(config.train.num_steps)).is_dir()


@pytest.mark.parametrize('split, message', [
    ('valid', "cannot be read from IDX files: use 'train' or 'test'"),
    ('train[:50%]', 'cannot be read from IDX files'),
    ('train[40:]', 'is empty'),
])
def test_bad_split(idx_dir, split, message):
  with pytest.raises(data.DataError, match=message):
    data.load_split(_config(idx_dir[0]).data, split)


def test_missing_file(tmp_path):
  with pytest.raises(data.DataError, match='does not exist: config.data.idx_dir must hold'):
    data.load_split(_config(str(tmp_path)).data, 'train')


@pytest.mark.parametrize('content, message', [
    (b'\x00\x00\x0d\x03' + b'\x00' * 12, 'not an IDX file of unsigned bytes'),
    (b'\x00\x00\x08\x01\x00\x00\x00\x05ab', 'truncated'),
])
def test_malformed_file(tmp_path, content, message):
  with gzip.open(tmp_path / data.IDX_FILES['train'], 'wb') as f:
    f.write(content)
  with pytest.raises(data.DataError, match=message) as e:
    data.load_split(_config(str(tmp_path)).data, 'train')
  assert '\n' not in str(e.value)


def test_not_gzip(tmp_path):
  (tmp_path / data.IDX_FILES['train']).write_bytes(b'not gzip at all')
  with pytest.raises(data.DataError, match='Cannot read the IDX file'):
    data.load_split(_config(str(tmp_path)).data, 'train')


def test_only_mnist(idx_dir):
  config = _config(idx_dir[0])
  config.data.name = 'cifar10'
  with pytest.raises(data.DataError, match="reads only MNIST's IDX files"):
    data.load_split(config.data, 'train')


@pytest.mark.skipif(not (REAL_MNIST and os.path.isdir(SHARED_IDX)),
                    reason='needs TFDS_DATA_DIR beside the original IDX files (../shared/data)')
def test_same_images_as_tfds():
  """The same 60,000 + 10,000 images; TFDS stores them in another order than the IDX files."""
  config = tiny_mnist_config()

  def rows(split):
    x = data.load_split(config.data, split)
    return np.sort(np.frombuffer(np.ascontiguousarray(x.reshape(len(x), -1)), 'V3136'))

  for split in ('train', 'test'):
    from_tfds = rows(split)
    config.data.idx_dir = SHARED_IDX
    from_idx = rows(split)
    config.data.idx_dir = ''
    assert np.array_equal(from_idx, from_tfds), split
  config.data.idx_dir = SHARED_IDX
  first = data.load_split(config.data, 'train[:50000]')
  assert first.shape == (50000, 28, 28, 1)
  np.testing.assert_allclose(first.mean(), 0.130, atol=2e-3)  # pylearn2's own 50,000.
