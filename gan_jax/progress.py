"""What the host loop keeps between its event steps: the pending metrics and their clock, the
event schedule, the SIGTERM flag, and which seeds have stopped."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np

from gan_jax import parallel

# The quantities whose non-finite value stops training, in the order they are reported.
WATCHED = ('d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm')
# The metrics the progress line shows.
LOGGED = ('d_loss', 'g_loss', 'value', 'd_real', 'd_fake')


class PendingMetrics:
  """The per-step metrics since the last log line, and the clock of that stretch.

  Each metric is [steps] (or [steps, seeds] with a seed axis). Checkpoints carry them
  (`to_json`), so that a resumed run writes exactly the lines the uninterrupted run would.
  """

  def __init__(self, step: int, chunks: list[dict] | None = None):
    self.chunks = list(chunks or [])
    self.first_step = step - sum(len(c['finite']) for c in self.chunks)
    self.clock = (time.time(), step)  # (time, step) at which the steps/s count starts.

  @classmethod
  def from_json(cls, step: int, saved: dict) -> PendingMetrics:
    if not saved:
      return cls(step)
    chunk = {k: np.asarray(v, bool if k == 'finite' else np.float32) for k, v in saved.items()}
    return cls(step, [chunk])

  def append(self, metrics: dict) -> None:
    self.chunks.append(metrics)

  def on_host(self, names=None) -> dict:
    """The metrics `names` (default: all) over the pending steps, as NumPy arrays."""
    if not self.chunks:
      return {}
    return {k: np.concatenate([np.atleast_1d(np.asarray(parallel.host_local(c[k])))
                               for c in self.chunks]) for k in names or self.chunks[0]}

  def to_json(self) -> dict:
    """JSON-able lists (float32 values are exact as Python floats)."""
    return {k: v.tolist() for k, v in self.on_host().items()}

  def first_bad(self, seed_index: int | None = None) -> tuple[int, str] | None:
    """The first step whose 'finite' flag is off, and the quantity that went bad (of seed
    `seed_index`'s column with a seed axis)."""
    column = (lambda v: v) if seed_index is None else (lambda v: v[:, seed_index])
    finite = self.on_host(['finite']).get('finite')
    if finite is None or column(finite).all():
      return None
    i = int(np.argmin(column(finite)))
    metrics = self.on_host(WATCHED)
    bad = [name for name in WATCHED if not np.isfinite(column(metrics[name])[i])]
    return self.first_step + i + 1, (bad[0] if bad else 'parameters')


def next_event(step: int, config) -> int:
  """The next step at which the host has something to do (log, sample, save, eval, stop)."""
  t = config.train
  intervals = [t.log_every, t.checkpoint_every, t.sample_every]
  if config.eval.every:
    intervals.append(config.eval.every)
  return min(min((step // i + 1) * i for i in intervals), t.num_steps)


class Preemption:
  """Turns SIGTERM (the usual preemption signal) into a flag the loop checks between calls."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def hms(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'
