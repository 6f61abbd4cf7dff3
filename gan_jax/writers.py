"""What a run writes besides checkpoints: metrics.jsonl, TensorBoard events, PNG sample grids."""

from __future__ import annotations

import json
import math
import os

from absl import logging
import numpy as np
from PIL import Image


def atomic_write(path: str, write, binary: bool = False) -> None:
  """Writes `path` through `write(file)` into a temporary file renamed into place.

  A reader (or a run killed mid-write) never sees half a file; the folder is created if needed.
  """
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'wb' if binary else 'w') as f:
    write(f)
  os.replace(tmp, path)


def write_json(path: str, record, **dump_args) -> None:
  """Writes `record` as JSON, atomically (see `atomic_write`)."""
  atomic_write(path, lambda f: json.dump(record, f, **dump_args))


class MetricWriter:
  """Appends one JSON object per logged step to metrics.jsonl and mirrors it to TensorBoard.

  Only the lead process writes (pass `enabled=False` elsewhere).
  """

  def __init__(self, workdir: str, enabled: bool = True, tensorboard: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if enabled and tensorboard:
      try:
        from flax.metrics import tensorboard as flax_tb  # Uses TensorFlow's summary writer.
      except ImportError as e:  # E.g. an accelerator image without TensorFlow: keep training.
        logging.warning('No TensorBoard events (%s); metrics.jsonl is still written.', e)
      else:
        self._tb = flax_tb.SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step`: a resumed run rewrites them exactly as it goes."""
    if not self.enabled or not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = [l for l in f if l.strip()]
    keep = [l for l in lines if json.loads(l).get('step', 0) <= step]
    if len(keep) != len(lines):
      atomic_write(self.path, lambda f: f.writelines(keep))

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    record = {'step': int(step), **{k: _plain(v) for k, v in metrics.items()}}
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    if self._tb is not None:
      for k, v in record.items():
        if k != 'step' and isinstance(v, (int, float)) and math.isfinite(v):
          self._tb.scalar(k, v, step)
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def _plain(v):
  v = np.asarray(v)
  if v.ndim == 0:
    return v.item()
  return v.tolist()


def image_grid(images: np.ndarray, rows: int | None = None, pad: int = 1,
               normalisation: str = 'unit') -> np.ndarray:
  """Tiles [N, H, W, C] images into one uint8 image.

  Args:
    images: the images.
    rows: rows of the grid (default: square).
    pad: pixels of white between tiles.
    normalisation: 'unit' clips to [0, 1]; 'gcn' (contrast-normalised data, no fixed range) maps
      [-m, m] to [0, 1] with m the largest |value| in the grid.

  Returns:
    uint8 [rows*(H+pad)-pad, cols*(W+pad)-pad, C] with C in {1, 3}.
  """
  images = np.asarray(images, np.float32)
  if images.ndim == 3:
    images = images[..., None]
  n, h, w, c = images.shape
  if normalisation == 'gcn':
    m = max(float(np.abs(images).max()), 1e-8)
    images = (images / m + 1.0) / 2.0
  images = np.clip(images, 0.0, 1.0)
  rows = rows or int(math.ceil(math.sqrt(n)))
  cols = int(math.ceil(n / rows))
  grid = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, c), np.float32)
  for i in range(n):
    r, q = divmod(i, cols)
    grid[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = images[i]
  return (grid * 255.0 + 0.5).astype(np.uint8)


def save_png(path: str, grid: np.ndarray) -> None:
  """Writes a uint8 [H, W, 1|3] array as PNG (atomically, so a reader never sees half a file)."""
  image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  atomic_write(path, lambda f: image.save(f, format='PNG'), binary=True)
