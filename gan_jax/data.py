"""Datasets: TFDS splits as float arrays, and the epoch-wise shuffled minibatch order.

The datasets of the paper are small enough to live on the devices whole, so this module only
loads each split once into a NumPy array of shape [N, H, W, C]; the training loop puts the
training split on every device and gathers each minibatch inside the compiled step.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re

import numpy as np

from gan_jax import stacked_mnist
from gan_jax.errors import DataError


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How one dataset is read.

  Attributes:
    tfds_name: the TFDS name (with config), e.g. 'mnist' or 'tfd/48x48_fold0'.
    manual: True if TFDS cannot download it and the user must supply the raw file.
    synthetic: True if it is drawn in code (no TFDS), by `_synthetic_split`.
  """
  tfds_name: str
  manual: bool = False
  synthetic: bool = False


DATASETS = {
    'mnist': DatasetSpec('mnist'),
    'cifar10': DatasetSpec('cifar10'),
    'tfd': DatasetSpec('tfd/48x48_fold0', manual=True),
    'tfd96': DatasetSpec('tfd/96x96_fold0', manual=True),
    # Figure 1's 1-D toy problem: N(toy_mean, toy_std^2), see experiments/toy1d.py.
    'toy1d': DatasetSpec('', synthetic=True),
    # 2-D Gaussian mixtures of the mode-collapse benchmarks (Metz et al. 2017; Srivastava et al.
    # 2017), see experiments/mog2d.py: 8 modes on a circle, 25 on a 5x5 grid.
    'ring8': DatasetSpec('', synthetic=True),
    'grid25': DatasetSpec('', synthetic=True),
    # Stacked MNIST (experiments/stacked_mnist.py): three MNIST digits as channels, drawn by
    # gan_jax.stacked_mnist from the MNIST split of the same name (TFDS or IDX files).
    'stacked_mnist': DatasetSpec('mnist'),
}
# Each mixture's default component std (config.data.mixture_std = 0), as in those papers.
MIXTURE_STDS = {'ring8': 0.02, 'grid25': 0.05}
SYNTHETIC_SPLITS = ('train', 'valid', 'test')
PREPROCESSING = ('unit', 'gcn')


def _tfds_name(data_config) -> str:
  if data_config.name not in DATASETS:
    raise DataError(f"Unknown dataset '{data_config.name}': choose one of {sorted(DATASETS)}.")
  name = DATASETS[data_config.name].tfds_name
  fold = data_config.fold
  return name.replace('fold0', f'fold{fold}') if 'fold0' in name else name


def _builder(data_config):
  import tensorflow_datasets as tfds  # Heavy (TensorFlow): imported only when data is needed.

  name = _tfds_name(data_config)
  if name.startswith('tfd/'):
    from gan_jax.datasets import tfd  # pylint: disable=unused-import  (registers the builder)
  return tfds.builder(name, data_dir=data_config.data_dir or None)


def check_available(data_config) -> None:
  """Raises DataError early (before any model is built) when a manual dataset's file is missing."""
  if not DATASETS.get(data_config.name, DatasetSpec('')).manual:
    return
  builder = _builder(data_config)
  if builder.is_prepared():
    return
  from gan_jax.datasets import tfd

  resolution = 96 if '96x96' in builder.builder_config.name else 48
  manual_dir = data_config.manual_dir or None
  if tfd.find_manual_file(builder.data_dir_root, manual_dir, resolution) is None:
    raise DataError(tfd.missing_file_message(builder.data_dir_root, manual_dir, resolution))


def _prepare(builder, data_config) -> None:
  import tensorflow_datasets as tfds

  if builder.is_prepared():
    return
  where = builder.data_dir_root
  if not data_config.allow_download and not data_config.manual_dir:
    raise DataError(
        f"Dataset '{builder.name}' is not prepared in {where} and downloading is off: set "
        "TFDS_DATA_DIR (or config.data.data_dir) to a directory holding a prepared copy, or "
        "config.data.manual_dir to the raw files.")
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=data_config.manual_dir or None))
  except Exception as e:  # pylint: disable=broad-except  (TFDS raises many kinds)
    first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    raise DataError(
        f"Dataset '{builder.name}' is not prepared in {where} and could not be prepared "
        f"({type(e).__name__}: {first_line}). Set TFDS_DATA_DIR (or config.data.data_dir) to a "
        "directory holding a prepared copy, or config.data.manual_dir to the raw files, or run "
        "once with network access.") from e


def preprocess(images: np.ndarray, kind: str, gcn_scale: float = 55.0) -> np.ndarray:
  """uint8 images -> float32.

  Args:
    images: [N, H, W, C] uint8.
    kind: 'unit' divides by 255 (MNIST, TFD: pylearn2's scale=True, not binarised); 'gcn' is
      pylearn2's global contrast normalisation: subtract each image's mean, then scale each image
      to L2 norm `gcn_scale` (CIFAR-10).
    gcn_scale: the target norm for 'gcn'.

  Returns:
    float32 images of the same shape.
  """
  x = images.astype(np.float32)
  if kind == 'unit':
    return x / 255.0
  if kind == 'gcn':
    flat = x.reshape(len(x), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.square(flat).sum(axis=1, keepdims=True))
    norms[norms < 1e-8] = 1.0  # pylearn2's min_divisor: leave constant images at zero.
    return (gcn_scale * flat / norms).reshape(x.shape).astype(np.float32)
  raise DataError(f"Unknown preprocessing '{kind}': choose one of {PREPROCESSING}.")


def _toy1d_split(data_config, split: str) -> np.ndarray:
  """Draws `toy_size` samples of N(toy_mean, toy_std^2) as float32 [N, 1, 1, 1]."""
  size, std = int(data_config.toy_size), float(data_config.toy_std)
  if size <= 0 or std <= 0:
    raise DataError(f'config.data.toy_size and config.data.toy_std must be positive, got '
                    f'{size} and {std}.')
  rng = np.random.default_rng([int(data_config.toy_seed), SYNTHETIC_SPLITS.index(split)])
  x = rng.normal(float(data_config.toy_mean), std, size)
  return x.astype(np.float32).reshape(size, 1, 1, 1)


def mixture_centres(name: str, *, radius: float = 2.0, spacing: float = 2.0) -> np.ndarray:
  """The modes' centres of a 2-D mixture, float32 [K, 2].

  Args:
    name: 'ring8' (8 centres evenly on a circle of `radius`, the first at (radius, 0)) or
      'grid25' (a 5x5 grid of `spacing`, centred on the origin: -2 * spacing ... 2 * spacing).
    radius: ring8's radius.
    spacing: grid25's spacing.

  Raises:
    DataError: an unknown name, or a radius or spacing <= 0.
  """
  if name not in MIXTURE_STDS:
    raise DataError(f"Unknown mixture '{name}': choose one of {sorted(MIXTURE_STDS)}.")
  if name == 'ring8':
    if not radius > 0:
      raise DataError(f'config.data.mixture_radius must be positive, got {radius}: use 2.0, the '
                      "papers' radius.")
    angles = 2 * np.pi * np.arange(8) / 8
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)
  if not spacing > 0:
    raise DataError(f'config.data.mixture_spacing must be positive, got {spacing}: use 2.0, the '
                    "papers' spacing.")
  ticks = spacing * np.arange(-2, 3)
  return np.stack(np.meshgrid(ticks, ticks, indexing='ij'), axis=-1).reshape(25, 2).astype(
      np.float32)


def mixture_std(name: str, std: float = 0.0) -> float:
  """The components' std: `std`, or the mixture's default (MIXTURE_STDS) when it is 0."""
  if name not in MIXTURE_STDS:
    raise DataError(f"Unknown mixture '{name}': choose one of {sorted(MIXTURE_STDS)}.")
  if std < 0:
    raise DataError(f'config.data.mixture_std must be positive, got {std}: use 0 for the '
                    f'default {MIXTURE_STDS[name]} of {name}.')
  return float(std) or MIXTURE_STDS[name]


def mixture_of(data_config) -> tuple[np.ndarray, float]:
  """The mixture config.data names: (its centres [K, 2], its components' std).

  Raises:
    DataError: an unknown mixture, or a radius, spacing or std that is not positive.
  """
  centres = mixture_centres(data_config.name, radius=float(data_config.mixture_radius),
                            spacing=float(data_config.mixture_spacing))
  return centres, mixture_std(data_config.name, float(data_config.mixture_std))


def _mixture_split(data_config, split: str) -> np.ndarray:
  """Draws `toy_size` points of an equal-weight 2-D mixture as float32 [N, 1, 1, 2]."""
  size = int(data_config.toy_size)
  centres, std = mixture_of(data_config)
  if size <= 0:
    raise DataError(f'config.data.toy_size (points per split) must be positive, got {size}.')
  rng = np.random.default_rng([int(data_config.toy_seed), SYNTHETIC_SPLITS.index(split)])
  x = centres[rng.integers(len(centres), size=size)] + rng.normal(0.0, std, (size, 2))
  return x.astype(np.float32).reshape(size, 1, 1, 2)


def _synthetic_split(data_config, split: str) -> np.ndarray:
  """Draws a split of a synthetic dataset: toy1d as [N, 1, 1, 1], ring8 / grid25 as [N, 1, 1, 2].

  The draw depends only on (toy_seed, split), so every run and process sees the same data.
  `preprocessing` does not apply: the samples are used as drawn.
  """
  if split not in SYNTHETIC_SPLITS:
    raise DataError(f"Split '{split}' of the synthetic dataset '{data_config.name}' is unknown: "
                    f"use one of {SYNTHETIC_SPLITS} in config.data.*_split.")
  if data_config.name in MIXTURE_STDS:
    return _mixture_split(data_config, split)
  return _toy1d_split(data_config, split)


# The original MNIST files (yann.lecun.com's names), read by `_idx_split` without TensorFlow.
IDX_FILES = {'train': 'train-images-idx3-ubyte.gz', 'test': 't10k-images-idx3-ubyte.gz'}
_SPLIT_RE = re.compile(r'^(train|test)(?:\[(-?\d*):(-?\d*)\])?$')


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file (optionally gzipped) of unsigned bytes, e.g. MNIST's images [N, 28, 28]."""
  opener = gzip.open if path.endswith('.gz') else open
  try:
    with opener(path, 'rb') as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise DataError(f'Cannot read the IDX file {path} ({e}): re-copy it from the original '
                    'MNIST files.') from e
  # Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then
  # each dimension as a big-endian int32.
  if len(raw) < 4 or raw[:2] != b'\0\0' or raw[2] != 0x08:
    raise DataError(f'{path} is not an IDX file of unsigned bytes (bad header): point '
                    'config.data.idx_dir at the original MNIST files.')
  ndim = raw[3]
  shape = tuple(int(d) for d in np.frombuffer(raw, '>i4', count=ndim, offset=4))
  data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
  if data.size != int(np.prod(shape)):
    raise DataError(f'{path} holds {data.size} bytes of data but its header says {shape}: the '
                    'file is truncated; re-copy it.')
  return data.reshape(shape)


def _idx_split(data_config, split: str) -> np.ndarray:
  """MNIST straight from the four original IDX files in `config.data.idx_dir` (no TFDS).

  Splits use TFDS's slice syntax restricted to example indices ('train', 'train[:50000]',
  'train[50000:]', 'test'). Slices follow the files' order, which is pylearn2's: 'train[:50000]'
  is exactly the original code's training set. TFDS holds the same images in another order, so
  there 'train[:50000]' is a different (equally random) 50,000; whole splits are identical.
  """
  # MNIST itself, or Stacked MNIST drawn from it.
  if DATASETS.get(data_config.name, DatasetSpec('')).tfds_name != 'mnist':
    raise DataError(f"config.data.idx_dir reads only MNIST's IDX files, not "
                    f"'{data_config.name}': clear config.data.idx_dir.")
  m = _SPLIT_RE.match(split.replace(' ', ''))
  if m is None:
    raise DataError(f"Split '{split}' cannot be read from IDX files: use 'train' or 'test', "
                    "optionally sliced by example index, e.g. 'train[:50000]'.")
  name, start, stop = m.groups()
  path = os.path.join(data_config.idx_dir, IDX_FILES[name])
  if not os.path.exists(path):
    raise DataError(f'{path} does not exist: config.data.idx_dir must hold the original MNIST '
                    f'files ({", ".join(IDX_FILES.values())}).')
  images = read_idx(path)[int(start) if start else None:int(stop) if stop else None]
  if len(images) == 0:
    raise DataError(f"Split '{split}' of {path} is empty: check config.data.*_split.")
  return preprocess(images[..., None], data_config.preprocessing, data_config.gcn_scale)


def load_split(data_config, split: str) -> np.ndarray:
  """Loads one TFDS split (e.g. 'train[:50000]') as preprocessed float32 [N, H, W, C].

  Stacked MNIST's split is drawn from MNIST's split of that name (config.data.stacked_seed,
  stacked_size): [N, 28, 28, 3].
  """
  images = _read_split(data_config, split)
  if data_config.name == 'stacked_mnist':
    return stacked_mnist.stack(images, seed=data_config.stacked_seed, split=split,
                               size=data_config.stacked_size)
  return images


def _read_split(data_config, split: str) -> np.ndarray:
  """One split as stored (for Stacked MNIST: the MNIST images it is drawn from)."""
  spec = DATASETS.get(data_config.name)
  if spec is not None and spec.synthetic:
    return _synthetic_split(data_config, split)
  if data_config.idx_dir:
    return _idx_split(data_config, split)
  import tensorflow_datasets as tfds

  builder = _builder(data_config)
  _prepare(builder, data_config)
  # Batched reading, not batch_size=-1: the latter aborts TF under tfds.testing.mock_data.
  ds = builder.as_dataset(split=split, batch_size=10_000)
  batches = [b['image'] for b in tfds.as_numpy(ds)]
  images = np.concatenate(batches) if batches else np.zeros((0, 1, 1, 1), np.uint8)
  if images.ndim == 3:
    images = images[..., None]
  if len(images) == 0:
    raise DataError(f"Split '{split}' of '{builder.name}' is empty: check config.data.*_split.")
  return preprocess(images, data_config.preprocessing, data_config.gcn_scale)


def load_splits(data_config, which=('train',)) -> dict[str, np.ndarray]:
  """Loads the named splits ('train', 'valid', 'test') given by `config.data.<which>_split`."""
  return {w: load_split(data_config, data_config[f'{w}_split']) for w in which}


class EpochSampler:
  """The minibatch order: each epoch a fresh permutation of the training set, from (seed, epoch).

  Minibatch m (counting all minibatches since step 0) is slice m % per_epoch of the permutation of
  epoch m // per_epoch. The order depends only on the seed and m, never on past calls, so a
  resumed run sees exactly the batches the uninterrupted run would.
  """

  def __init__(self, num_examples: int, batch_size: int, seed: int):
    if batch_size > num_examples:
      raise DataError(f'Batch size {batch_size} exceeds the {num_examples} training examples: '
                      'lower config.train.batch_size.')
    self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
    self.per_epoch = num_examples // batch_size  # The last partial batch is dropped.
    self._cache: tuple[int, np.ndarray] | None = None

  def _permutation(self, epoch: int) -> np.ndarray:
    if self._cache is None or self._cache[0] != epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._cache = (epoch, rng.permutation(self.num_examples).astype(np.int32))
    return self._cache[1]

  def indices(self, first_minibatch: int, count: int) -> np.ndarray:
    """Indices of `count` consecutive minibatches, shape [count, batch_size]."""
    out = np.empty((count, self.batch_size), np.int32)
    for i in range(count):
      epoch, pos = divmod(first_minibatch + i, self.per_epoch)
      out[i] = self._permutation(epoch)[pos * self.batch_size:(pos + 1) * self.batch_size]
    return out
