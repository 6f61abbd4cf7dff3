"""Writes small synthetic TFD .mat files in the authors' layout.

The real TFD cannot be redistributed, so tests (and end-to-end runs of the TFD
experiment) use files with the same fields, shapes, dtypes and fold codes as
`TFD_48x48.mat`, written either as MATLAB v5 (scipy) or v7.3 (HDF5 + userblock).
"""

from __future__ import annotations

import os

import h5py
import numpy as np
import scipy.io

NUM_FOLDS = 5


def synthetic_tfd_arrays(
    n: int = 64, size: int = 48, seed: int = 0,
    labeled_fraction: float = 0.5) -> dict[str, np.ndarray]:
  """Returns TFD fields as scipy.io.loadmat gives them for the real file.

  Unlabeled rows have code 0 in every fold and labs_ex = labs_id = -1 (as in the
  real file); labeled rows get codes 1..3 in each fold, each code at least once.
  """
  n_labeled = int(round(n * labeled_fraction))
  if n_labeled < 3 or n - n_labeled < 1:
    raise ValueError(f'n={n} with labeled_fraction={labeled_fraction} leaves '
                     'fewer than 3 labeled or 1 unlabeled image; raise n.')
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
  # Labeled rows scattered among unlabeled ones, so selection order matters.
  labeled = np.zeros(n, bool)
  labeled[rng.choice(n, n_labeled, replace=False)] = True
  folds = np.zeros((n, NUM_FOLDS), np.uint8)
  for k in range(NUM_FOLDS):
    folds[labeled, k] = rng.permutation(np.arange(n_labeled) % 3 + 1)
  labs_ex = np.where(labeled, rng.integers(1, 8, n), -1).astype(np.float64)
  labs_id = np.where(labeled, rng.integers(1, 1000, n), -1).astype(np.float64)
  return {'images': images, 'folds': folds,
          'labs_ex': labs_ex[:, None], 'labs_id': labs_id[:, None]}


def _matlab_class(value: np.ndarray) -> bytes:
  # The attribute MATLAB writes next to each variable of a v7.3 file.
  return {np.uint8: b'uint8', np.int16: b'int16'}.get(value.dtype.type,
                                                       b'double')


def write_mat(path: str | os.PathLike, arrays: dict[str, np.ndarray],
              fmt: str = 'v5') -> str:
  """Writes `arrays` as a MATLAB v5 or v7.3 file and returns the path."""
  path = os.fspath(path)
  if fmt == 'v5':
    scipy.io.savemat(path, arrays, format='5', do_compression=False)
  elif fmt == 'v73':
    with h5py.File(path, 'w', userblock_size=512) as f:
      for name, value in arrays.items():
        # MATLAB writes column-major data, which HDF5 shows axes-reversed.
        ds = f.create_dataset(name, data=np.asarray(value).T)
        ds.attrs['MATLAB_class'] = np.bytes_(_matlab_class(np.asarray(value)))
    # The 128-byte MATLAB header in the userblock: text, subsystem offset,
    # version 0x0200 and endian indicator 'IM' (what scipy checks for 7.3).
    text = (b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: '
            b'Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .').ljust(116, b' ')
    with open(path, 'r+b') as f:
      f.write(text + b' ' * 8 + b'\x00\x02' + b'IM')
  else:
    raise ValueError(f"fmt must be 'v5' or 'v73', got {fmt!r}.")
  return path


def write_synthetic_tfd(path: str | os.PathLike, n: int = 64, size: int = 48,
                        fmt: str = 'v5', seed: int = 0) -> str:
  """Writes a synthetic TFD file; `path` is a file, or a dir for TFD_SxS.mat.

  Args:
    path: target file, or an existing directory (the authors' file name
      `TFD_{size}x{size}.mat` is used inside it, e.g. a TFDS manual dir).
    n: number of images (half labeled).
    size: image side, 48 or 96 for the real configs.
    fmt: 'v5' (scipy.io.savemat) or 'v73' (HDF5 with a MATLAB userblock).
    seed: numpy seed; the same seed gives the same arrays in both formats.

  Returns:
    The path of the written file.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    path = os.path.join(path, f'TFD_{size}x{size}.mat')
  return write_mat(path, synthetic_tfd_arrays(n, size, seed), fmt)
