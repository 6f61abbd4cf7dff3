"""The Toronto Face Database (TFD) as a TensorFlow Datasets builder.

TFD (Susskind, Anderson & Hinton, University of Toronto) is not in the TFDS
catalogue and is only distributed on request, so the builder reads the file the
authors send, `TFD_48x48.mat` or `TFD_96x96.mat`, from TFDS's manual directory,
the same way pylearn2's `pylearn2.datasets.tfd.TFD` did (the loader used by
Goodfellow et al., 2014):

* `images`  N x S x S uint8 faces, S in {48, 96};
* `folds`   N x 5, per fold 0 = unlabeled, 1 = train, 2 = valid, 3 = test;
* `labs_ex` N x 1 expression 1..7 (pylearn2 trains on `labs_ex - 1`);
* `labs_id` N x 1 identity.

Usage::

  import gan_jax.datasets.tfd  # registers 'tfd'
  ds = tfds.load('tfd/48x48_fold0', split='unlabeled', data_dir=...)

Label representation: every split has the same features. `label` is a
`ClassLabel(num_classes=7)` holding `labs_ex - 1` (0..6) and `identity` holds
`labs_id`; in the `unlabeled` split both are -1 (TFDS's own "no label" value
for `ClassLabel`), whatever the file stores there. `index` is the example's row
in the .mat file, so every example can be traced back to the file.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

RESOLUTIONS = (48, 96)
NUM_FOLDS = 5
NUM_CLASSES = 7
FIELDS = ('images', 'folds', 'labs_ex', 'labs_id')
# The codes in `folds[:, k]`, as in pylearn2's `TFD.mapper`.
SPLIT_CODES = {'unlabeled': 0, 'train': 1, 'valid': 2, 'test': 3}
UNLABELED = -1

_AUTHORS = ('Josh Susskind, Adam Anderson and Geoffrey Hinton '
            '(University of Toronto)')


def file_name(resolution: int = 48) -> str:
  """Returns the authors' file name for `resolution`, e.g. 'TFD_48x48.mat'."""
  if resolution not in RESOLUTIONS:
    raise ValueError(
        f'TFD resolution must be one of {RESOLUTIONS}, got {resolution!r}.')
  return f'TFD_{resolution}x{resolution}.mat'


def _data_dir_root(data_dir: str | os.PathLike | None) -> str:
  """Resolves `data_dir` exactly as a TFDS builder does (TFDS_DATA_DIR, ...)."""
  builder = Tfd(config=Tfd.BUILDER_CONFIGS[0].name, data_dir=data_dir)
  return os.fspath(builder.data_dir_root)


def manual_dir_path(data_dir: str | os.PathLike | None = None,
                    manual_dir: str | os.PathLike | None = None) -> str:
  """Returns the directory TFDS reads the file from.

  Args:
    data_dir: TFDS data dir; None resolves it as TFDS does (TFDS_DATA_DIR or
      ~/tensorflow_datasets).
    manual_dir: explicit manual dir (`DownloadConfig(manual_dir=...)`); wins
      over `data_dir` when given.
  """
  if manual_dir is not None:
    return os.fspath(os.path.expanduser(manual_dir))
  return os.path.join(_data_dir_root(data_dir), 'downloads', 'manual')


def manual_file_path(data_dir: str | os.PathLike | None = None,
                     manual_dir: str | os.PathLike | None = None,
                     resolution: int = 48) -> str:
  """Returns where the .mat file must be (whether or not it is there)."""
  return os.path.join(manual_dir_path(data_dir, manual_dir),
                      file_name(resolution))


def find_manual_file(data_dir: str | os.PathLike | None = None,
                     manual_dir: str | os.PathLike | None = None,
                     resolution: int = 48) -> str | None:
  """Returns the path of the .mat file if it is in place, else None."""
  path = manual_file_path(data_dir, manual_dir, resolution)
  return path if os.path.isfile(path) else None


def missing_file_message(data_dir: str | os.PathLike | None = None,
                         manual_dir: str | os.PathLike | None = None,
                         resolution: int = 48) -> str:
  """The one line to print when the TFD file is not in place."""
  name = file_name(resolution)
  path = os.path.join(manual_dir_path(data_dir, manual_dir), name)
  return (f'TFD file not found: {path}. The Toronto Face Database is '
          f'distributed on request only by {_AUTHORS}: request {name} from '
          f'them and put it at {path} (TFDS\'s manual dir '
          '<data_dir>/downloads/manual/, or the dir given as '
          'tfds.download.DownloadConfig(manual_dir=...)).')


def _as_labels(arrays: dict[str, Any], name: str, n: int,
               source: str) -> np.ndarray:
  """Returns field `name` as an (n,) int64 vector or raises ValueError."""
  value = np.asarray(arrays[name])
  if value.size != n or value.ndim > 2 or (
      value.ndim == 2 and 1 not in value.shape):
    raise ValueError(f'{source}: TFD field {name!r} has shape {value.shape}, '
                     f'expected ({n}, 1): one entry per image.')
  value = value.reshape(n)
  if (not np.issubdtype(value.dtype, np.number) or
      np.any(value != np.round(value))):
    raise ValueError(f'{source}: TFD field {name!r} must hold integers, got '
                     f'dtype {value.dtype}.')
  return value.astype(np.int64)


def _validate(arrays: dict[str, Any], resolution: int | None,
              source: str) -> dict[str, np.ndarray]:
  """Checks the pylearn2 layout and returns normalised numpy arrays."""
  missing = [f for f in FIELDS if f not in arrays]
  if missing:
    raise ValueError(f'{source} is not a TFD file: missing field(s) '
                     f'{missing}; expected {list(FIELDS)} as in the authors\' '
                     'TFD_SxS.mat.')
  images = np.asarray(arrays['images'])
  if images.ndim != 3 or images.shape[1] != images.shape[2] or (
      resolution is not None and images.shape[1] != resolution):
    expect = resolution or 'S'
    raise ValueError(f'{source}: TFD field \'images\' has shape '
                     f'{images.shape}, expected (N, {expect}, {expect}).')
  if images.dtype != np.uint8:
    # pylearn2 cast whatever was stored; we only accept exact 8-bit values.
    if (not np.issubdtype(images.dtype, np.number) or images.min() < 0 or
        images.max() > 255 or np.any(images != np.round(images))):
      raise ValueError(f'{source}: TFD images must be uint8 pixels 0..255, got '
                       f'dtype {images.dtype}.')
    images = images.astype(np.uint8)
  n = images.shape[0]
  folds = np.asarray(arrays['folds'])
  if folds.shape != (n, NUM_FOLDS):
    raise ValueError(f'{source}: TFD field \'folds\' has shape {folds.shape}, '
                     f'expected ({n}, {NUM_FOLDS}).')
  if not np.isin(folds, list(SPLIT_CODES.values())).all():
    raise ValueError(f'{source}: TFD field \'folds\' must hold codes 0..3 '
                     '(unlabeled, train, valid, test).')
  return {'images': images, 'folds': folds.astype(np.int64),
          'labs_ex': _as_labels(arrays, 'labs_ex', n, source),
          'labs_id': _as_labels(arrays, 'labs_id', n, source)}


def _read_hdf5(path: str) -> dict[str, np.ndarray]:
  """Reads a MATLAB v7.3 file (HDF5 behind a 512-byte MATLAB userblock)."""
  import h5py  # pylint: disable=g-import-not-at-top

  with h5py.File(path, 'r') as f:
    # MATLAB stores column-major, so h5py sees every array with its axes
    # reversed (N x 48 x 48 reads as 48 x 48 x N): a full transpose undoes it.
    return {k: f[k][()].T for k in FIELDS if k in f}


def read_tfd_mat(path: str | os.PathLike,
                 resolution: int | None = None) -> dict[str, np.ndarray]:
  """Reads and validates a TFD .mat file, v5 (scipy) or v7.3 (h5py).

  Args:
    path: the .mat file.
    resolution: expected image side (48 or 96); None accepts any square size.

  Returns:
    {'images': (N, S, S) uint8, 'folds': (N, 5) int64, 'labs_ex': (N,) int64,
     'labs_id': (N,) int64}, the same arrays for both file formats.

  Raises:
    ValueError: if the file is not a MATLAB file or not in the TFD layout.
  """
  import scipy.io  # pylint: disable=g-import-not-at-top

  path = os.fspath(path)
  try:
    arrays = scipy.io.loadmat(path, variable_names=FIELDS)
  except NotImplementedError:  # scipy's answer for v7.3 (HDF5) files.
    arrays = _read_hdf5(path)
  except (ValueError, TypeError, OSError, scipy.io.matlab.MatReadError) as e:
    raise ValueError(f'{path} is not a readable MATLAB .mat file ({e}); '
                     'expected the authors\' TFD_SxS.mat.') from e
  return _validate(arrays, resolution, path)


@dataclasses.dataclass(eq=False)
class TfdConfig(tfds.core.BuilderConfig):
  """One (resolution, fold) pair; pylearn2's `image_size` and `fold`."""
  resolution: int = 48
  fold: int = 0


_MANUAL_INSTRUCTIONS = f"""\
The Toronto Face Database is distributed on request only by its authors,
{_AUTHORS}. Ask them for `TFD_48x48.mat` (and/or `TFD_96x96.mat` for the
96x96 configs) and put the file, unrenamed, directly in the manual dir:
`<data_dir>/downloads/manual/TFD_48x48.mat` (data_dir defaults to
$TFDS_DATA_DIR or ~/tensorflow_datasets), or in the directory passed as
`tfds.download.DownloadConfig(manual_dir=...)`.
"""


class Tfd(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for the Toronto Face Database, as read by pylearn2."""

  name = 'tfd'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release (pylearn2 TFD layout).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS
  BUILDER_CONFIGS = [
      TfdConfig(name=f'{r}x{r}_fold{k}', resolution=r, fold=k,
                description=f'{r}x{r} faces, official fold {k}.')
      for r in RESOLUTIONS for k in range(NUM_FOLDS)
  ]
  DEFAULT_BUILDER_CONFIG_NAME = '48x48_fold0'

  # TFDS 4.9.10 infers `code_path` through `importlib_resources`, which it only
  # requires on Python < 3.9 (and etils no longer pulls in), so the inference
  # raises ModuleNotFoundError for any builder outside tensorflow_datasets.
  # The path is only used to look for a checksums file, which TFD has none of.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    r = self.builder_config.resolution
    return self.dataset_info_from_configs(
        description=(
            'Toronto Face Database (Susskind, Anderson & Hinton, 2010): '
            'grey-scale faces with five official folds. `label` is the '
            'expression labs_ex - 1 (0..6, in the authors\' order) and '
            '`identity` is labs_id; both are -1 in the unlabeled split. '
            '`index` is the row in the .mat file.'),
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(r, r, 1), dtype=np.uint8),
            'label': tfds.features.ClassLabel(num_classes=NUM_CLASSES),
            'identity': tfds.features.Scalar(dtype=np.int64),
            'index': tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=('image', 'label'),
        homepage='http://aclab.ca/users/josh/TFD.html',
        citation=(
            '@techreport{susskind2010tfd, title={The Toronto Face Dataset}, '
            'author={Susskind, Josh M. and Anderson, Adam K. and Hinton, '
            'Geoffrey E.}, institution={University of Toronto}, '
            'number={UTML TR 2010-001}, year={2010}}'),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    cfg = self.builder_config
    # `dl_manager.manual_dir` asserts that the directory exists and is not
    # empty, with TFDS's generic message; we want to name the exact file.
    manual_dir = getattr(dl_manager, '_manual_dir', None)
    path = find_manual_file(self.data_dir_root, manual_dir, cfg.resolution)
    if path is None:
      raise FileNotFoundError(missing_file_message(
          self.data_dir_root, manual_dir, cfg.resolution))
    data = read_tfd_mat(path, cfg.resolution)
    codes = data['folds'][:, cfg.fold]
    splits = {}
    for split, code in SPLIT_CODES.items():
      rows = np.flatnonzero(codes == code)
      if rows.size == 0:  # pylearn2 asserts the same.
        raise ValueError(f'{path}: fold {cfg.fold} has no {split!r} examples '
                         f'(folds[:, {cfg.fold}] == {code}).')
      labels = data['labs_ex'][rows]
      if code != SPLIT_CODES['unlabeled'] and (
          labels.min() < 1 or labels.max() > NUM_CLASSES):
        raise ValueError(f'{path}: labs_ex of the {split!r} split of fold '
                         f'{cfg.fold} must be in 1..{NUM_CLASSES}, got '
                         f'{labels.min()}..{labels.max()}.')
      splits[split] = self._generate_examples(
          data, rows, labeled=code != SPLIT_CODES['unlabeled'])
    return splits

  def _generate_examples(self, data: dict[str, np.ndarray], rows: np.ndarray,
                         labeled: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    for i in rows:
      i = int(i)
      yield i, {
          'image': data['images'][i][..., None],
          'label': int(data['labs_ex'][i]) - 1 if labeled else UNLABELED,
          'identity': int(data['labs_id'][i]) if labeled else UNLABELED,
          'index': i,
      }
