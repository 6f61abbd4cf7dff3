"""Stacked MNIST: three MNIST digits as the three channels of one image (1,000 modes).

The mode-collapse benchmark of Metz et al. 2017 (Unrolled GANs), Srivastava et al. 2017 (VEEGAN)
and Lin et al. 2018 (PacGAN): each example stacks three digits drawn at random (with
replacement, independently per channel) from an MNIST split, so its mode is the triple of their
classes, 100 * d0 + 10 * d1 + d2. gan_jax.data reads the MNIST split (TFDS or IDX files, the same
split syntax as 'mnist') and calls `stack` on it; gan_jax.modes counts the modes of G's samples.

A leaf below gan_jax.data: arrays in, arrays out.
"""

from __future__ import annotations

import zlib

import numpy as np

from gan_jax.errors import DataError

CHANNELS = 3  # One digit per channel: 10 ** 3 = 1,000 modes.


def stack(digits: np.ndarray, *, seed: int, split: str, size: int = 0) -> np.ndarray:
  """`size` Stacked MNIST examples drawn from the MNIST images `digits`.

  The draw depends only on (seed, split), so every run and process that reads the same MNIST
  split sees the same examples, and another split (even of the same images) gets other draws.

  Args:
    digits: MNIST images, float32 [N, 28, 28, 1] (as gan_jax.data loads them).
    seed: the draw's seed (config.data.stacked_seed).
    split: the split's name as the config gives it, e.g. 'train[:50000]'.
    size: examples to draw; 0 = N, as many as the MNIST split holds.

  Returns:
    float32 [size, 28, 28, 3]: channel c of example i is digits[index[i, c]].

  Raises:
    DataError: `digits` is not a single-channel image array, or size < 0.
  """
  if digits.ndim != 4 or digits.shape[-1] != 1 or not len(digits):
    raise DataError(f'Stacked MNIST stacks single-channel MNIST images [N, 28, 28, 1], got '
                    f'{digits.shape}: set config.data.*_split to a non-empty MNIST split.')
  if size < 0:
    raise DataError(f'config.data.stacked_size must be >= 0 (0 = as many as the MNIST split '
                    f'holds), got {size}.')
  # crc32, not hash(): Python salts str hashes per process.
  rng = np.random.default_rng([int(seed), zlib.crc32(split.replace(' ', '').encode())])
  index = rng.integers(len(digits), size=(size or len(digits), CHANNELS))
  return np.stack([digits[index[:, c], ..., 0] for c in range(CHANNELS)], axis=-1)
