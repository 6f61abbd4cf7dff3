"""The 2-D mixtures' figure: G's samples over training, one panel per checkpoint (modes.png).

The picture of the mode-collapse benchmarks (Metz et al. 2017, Fig. 1; Srivastava et al. 2017,
Fig. 2): each panel scatters G's samples over the mixture's centres, each centre ringed by its
3-std circle (the disc a sample must fall in to be of high quality), with the step and the modes
covered in its title. The panels are the run's kept checkpoints up to the one asked for, or at
most MAX_PANELS of them evenly spread, always with the first and the last.

Each panel's samples and numbers are those of `--mode=eval --config.eval.method=modes --step=N`
on the same checkpoint (gan_jax.modes_protocol's samples and score). They are written beside the
figure (modes.json). Drawn with matplotlib as Figure 1 is (gan_jax/figure1.py): its own
Agg canvas, the default style, a fixed size and dpi.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import matplotlib
from matplotlib import patches
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import evaluation
from gan_jax import modes_protocol
from gan_jax import state as state_lib
from gan_jax import writers

MAX_PANELS = 10
COLUMNS = 5  # Panels per row; fewer panels make one row.
PANEL_PX, DPI = 300, 100  # Each panel's cell is PANEL_PX square, in pixels at DPI.
FONT_SIZE = 9
POINT_SIZE, POINT_ALPHA = 2.0, 0.35  # G's samples (points^2, opacity) ...
CIRCLE_COLOUR = (0.85, 0.1, 0.1)     # ... and the 3-std circles.
MARGIN_STDS = 12  # The axes reach this many std beyond the outermost centres ...
MARGIN_FRACTION = 0.15  # ... or this fraction of their extent, whichever is more.


@dataclasses.dataclass
class Panel:
  """One checkpoint of one seed.

  Attributes:
    step: the checkpoint's step.
    samples: G's samples, float32 [N, 2].
    coverage: gan_jax.modes_protocol.score of the samples (modes_covered, high_quality, ...).
  """
  step: int
  samples: np.ndarray
  coverage: dict


def panel_steps(steps: list[int], last: int | None = None) -> list[int]:
  """The checkpoints drawn: those of `steps` up to `last` (default: all), at most MAX_PANELS of
  them evenly spread, the first and the last included."""
  kept = [s for s in sorted(steps) if last is None or s <= last]
  at = np.unique(np.linspace(0, len(kept) - 1, min(len(kept), MAX_PANELS)).round().astype(int))
  return [kept[i] for i in at]


def figure_shape(num_panels: int) -> tuple[int, int]:
  """(height, width) in pixels of a figure of `num_panels` panels."""
  columns = min(num_panels, COLUMNS)
  rows = -(-num_panels // COLUMNS)
  return rows * PANEL_PX, columns * PANEL_PX


def make_modes_figure(exp, ckpt, step: int | None, out_dirs: list[str],
                      ema: bool = False) -> list[str]:
  """Writes modes.png and modes.json of each seed into its `out_dirs` entry.

  Args:
    exp: the run's experiment.Experiment (a 2-D mixture: config.data.name ring8 or grid25).
    ckpt: its checkpoints.
    step: the last checkpoint drawn (default: the newest).
    out_dirs: one folder per seed.
    ema: draw the EMA of G each checkpoint carries (config.eval.parzen.g_ema).

  Returns:
    The paths written, seed by seed.

  Raises:
    CheckpointError: the workdir has no checkpoint (at `step`), or none with an EMA of G.
  """
  kept = ckpt.steps()
  if step is not None and step not in kept:
    raise checkpoint.no_checkpoint_error(ckpt.directory, step, kept)
  if not kept:
    raise checkpoint.no_checkpoint_error(ckpt.directory)
  steps = panel_steps(kept, step)
  d, m = exp.config.data, exp.config.eval.modes
  centres, std = data.mixture_of(d)
  panels = _panels(exp, ckpt, steps, ema)
  paths = []
  for seed_panels, out_dir in zip(panels, out_dirs):
    record = {'mixture': d.name, 'num_modes': len(centres), 'mixture_std': std,
              'min_count': int(m.min_count),
              'num_samples': modes_protocol.samples_needed(exp.config)[0],
              'sample_seed': int(m.seed), 'g_ema': bool(ema),
              'panels': [dict(step=p.step, **_numbers(p.coverage)) for p in seed_panels]}
    png, json_path = os.path.join(out_dir, 'modes.png'), os.path.join(out_dir, 'modes.json')
    if jax.process_index() == 0:  # One writer when several processes run the same command.
      writers.save_png(png, draw_modes_figure(seed_panels, centres, std))
      writers.write_json(json_path, record, indent=2)
    paths += [png, json_path]
  return paths


def _panels(exp, ckpt, steps: list[int], ema: bool) -> list[list[Panel]]:
  """[seed][checkpoint] panels: each checkpoint's G restored once and sliced seed by seed."""
  m = exp.config.eval.modes
  out = [[] for _ in exp.seeds]
  for s in steps:
    g, _, _ = evaluation.restore_generator(ckpt, exp.g_shapes(), s, 0, ema)
    for i in range(len(exp.seeds)):
      g_seed = state_lib.seed_slice(g, i) if exp.stacked else g
      # The same samples, so the same numbers, as --mode=eval --step=s.
      x = modes_protocol.generator_samples(exp, g_seed, 0, m.seed)
      x = x.reshape(len(x), 2)
      out[i].append(Panel(s, x, modes_protocol.score(exp.config, x)))
  return out


def _numbers(coverage: dict) -> dict:
  kl = coverage['kl_to_uniform']
  return {'modes_covered': coverage['modes_covered'], 'high_quality': coverage['high_quality'],
          'kl_to_uniform': kl if kl == kl else None}  # No sample near a mode: JSON's null.


def _limits(centres: np.ndarray, std: float) -> tuple[float, float, float, float]:
  """The axes' (x0, x1, y0, y1): the centres' bounding box with a margin."""
  lo, hi = centres.min(axis=0), centres.max(axis=0)
  margin = max(MARGIN_STDS * std, MARGIN_FRACTION * float(np.max(hi - lo)))
  return lo[0] - margin, hi[0] + margin, lo[1] - margin, hi[1] + margin


def draw_modes_figure(panels: list[Panel], centres: np.ndarray, std: float) -> np.ndarray:
  """Draws the panels in rows of COLUMNS, all on the same axes' limits.

  Returns:
    uint8 RGB of shape figure_shape(len(panels)) + (3,).
  """
  height, width = figure_shape(len(panels))
  x0, x1, y0, y1 = _limits(np.asarray(centres), std)
  with matplotlib.style.context('default'), matplotlib.rc_context({'font.size': FONT_SIZE}):
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout='constrained')
    canvas = FigureCanvasAgg(fig)
    columns = width // PANEL_PX
    for k, p in enumerate(panels):
      ax = fig.add_subplot(height // PANEL_PX, columns, k + 1)
      ax.scatter(p.samples[:, 0], p.samples[:, 1], s=POINT_SIZE, c='black', alpha=POINT_ALPHA,
                 linewidths=0, rasterized=True)
      for c in np.asarray(centres):
        ax.add_patch(patches.Circle(tuple(c), 3 * std, fill=False, edgecolor=CIRCLE_COLOUR,
                                    linewidth=0.8))
      ax.set_xlim(x0, x1)
      ax.set_ylim(y0, y1)
      ax.set_aspect('equal')
      ax.tick_params(labelsize=FONT_SIZE - 2)
      c = p.coverage
      ax.set_title(f'step {p.step:,}: {c["modes_covered"]} of {c["num_modes"]} modes\n'
                   f'{100 * c["high_quality"]:.1f}% high quality')
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
