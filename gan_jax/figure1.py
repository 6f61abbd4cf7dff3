"""Figure 1 (1-D data) drawn with matplotlib: the four panels, and the frames of an animation.

Each panel shows p_data (black, dotted), p_g (green, solid), D(x) (blue, dashed, as the paper)
and D*(x) = p_data / (p_data + p_g), what D would be if trained to optimality against this G
(thin, light blue, dotted); underneath, for a 1-D z, the map x = G(z): lines from evenly spaced z
on the lower line to G(z) on the upper line. The curves come computed (`Curves`): this module
only draws them.

Figures are built on a `matplotlib.figure.Figure` with its own Agg canvas (no pyplot, no global
backend), under matplotlib's default style so that a user's matplotlibrc does not change them, at
a fixed size and dpi: the same curves give the same pixels. The animation's frames are drawn on
one figure whose curves are updated frame by frame, and written as a GIF by PIL with one palette
for all frames.
"""

from __future__ import annotations

import dataclasses
import io

import matplotlib
from matplotlib import collections as mpl_collections
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from PIL import Image

MAP_LINES = 15  # Lines of the map x = G(z) under each panel.
# Size in pixels: PANEL_W per panel, HEIGHT in all (inches are these / DPI, exact in binary);
# the animation's frames are FRAME_W x FRAME_H at FRAME_DPI (smaller text for a smaller image).
PANEL_W, HEIGHT, DPI = 480, 520, 160
FRAME_W, FRAME_H, FRAME_DPI = 560, 400, 100
FONT_SIZE = 9  # Points.
# Colours (RGB, 0-255): p_data, p_g, D, D* and the map's lines.
BLACK, GREEN, BLUE = (0, 0, 0), (0, 150, 0), (30, 70, 230)
LIGHT_BLUE, GREY = (120, 170, 255), (120, 120, 120)
# D* is drawn where p_data + p_g exceeds this: elsewhere it is a ratio of negligible densities.
D_STAR_MIN_DENSITY = 1e-3
_P_DATA = r'$p_{\mathrm{data}}$'
_LABELS = (_P_DATA, '$p_g$', '$D(x)$', rf'$D^*(x) = {_P_DATA[1:-1]} / ({_P_DATA[1:-1]} + p_g)$')


@dataclasses.dataclass
class Curves:
  """What one panel (or frame) draws, on one increasing x grid.

  Attributes:
    title: above the panel.
    x: the grid, [M].
    p_data, p_g, d, d_star: the densities, D and D* on the grid, [M] each.
    z: evenly spaced z for the map (MAP_LINES of them), or None for a z of several dimensions.
    g_of_z: G at those z.
  """
  title: str
  x: np.ndarray
  p_data: np.ndarray
  p_g: np.ndarray
  d: np.ndarray
  d_star: np.ndarray
  z: np.ndarray | None = None
  g_of_z: np.ndarray | None = None


def prior_range(prior: str) -> tuple[float, float]:
  """The z interval drawn under each panel: the uniform prior's support, or +-2.5 sd."""
  return (-np.sqrt(3.0), np.sqrt(3.0)) if prior == 'uniform' else (-2.5, 2.5)


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
  return tuple(c / 255.0 for c in colour)


def _masked_d_star(curves: Curves) -> np.ndarray:
  return np.where(curves.p_data + curves.p_g > D_STAR_MIN_DENSITY, curves.d_star, np.nan)


def _map_segments(curves: Curves) -> list:
  """The map's lines in the map axes' coordinates: z across the whole width (y = 0) to G(z) on
  the density plot's x axis (y = 1, clipped to it)."""
  if curves.z is None:
    return []
  lo, hi = curves.x[0], curves.x[-1]
  z = np.asarray(curves.z, np.float64)
  z_x = lo + (z - z[0]) / (z[-1] - z[0]) * (hi - lo)
  g_x = np.clip(np.asarray(curves.g_of_z, np.float64), lo, hi)
  return [((a, 0.0), (b, 1.0)) for a, b in zip(z_x, g_x)]


class _Panel:
  """The artists of one panel: its curves, and the map x = G(z) underneath; `show` updates
  them, so an animation draws each frame on the same figure."""

  def __init__(self, fig, density_spec, map_spec, y_max: float, share=None):
    self.ax = fig.add_subplot(density_spec, sharey=share)
    ax = self.ax
    self.lines = [
        ax.plot([], [], color=_rgb(BLACK), linestyle=(0, (1, 2)), linewidth=1.6)[0],
        ax.plot([], [], color=_rgb(GREEN), linewidth=1.6)[0],
        ax.plot([], [], color=_rgb(BLUE), linestyle=(0, (5, 3)), linewidth=1.6)[0],
        ax.plot([], [], color=_rgb(LIGHT_BLUE), linestyle=(0, (1, 1.5)), linewidth=1.0)[0]]
    for line, label in zip(self.lines, _LABELS):
      line.set_label(label)
    ax.set_ylim(0.0, y_max)
    ax.spines[['top', 'right']].set_visible(False)
    self.map_ax = fig.add_subplot(map_spec)
    m = self.map_ax
    m.set_ylim(-0.08, 1.08)
    for side in ('top', 'right', 'bottom', 'left'):
      m.spines[side].set_visible(False)
    m.set_xticks([])
    m.tick_params(axis='y', length=0, pad=4)
    self.rails = m.hlines([0.0, 1.0], 0.0, 1.0, colors='black', linewidth=0.8)
    self.map = mpl_collections.LineCollection([], colors=[_rgb(GREY)], linewidths=0.8)
    m.add_collection(self.map)
    self.heads = m.plot([], [], linestyle='none', marker='v', markersize=3.5,
                        color=_rgb(GREY))[0]

  def show(self, curves: Curves) -> None:
    lo, hi = curves.x[0], curves.x[-1]
    for line, y in zip(self.lines, (curves.p_data, curves.p_g, curves.d,
                                    _masked_d_star(curves))):
      line.set_data(curves.x, y)
    self.ax.set_xlim(lo, hi)
    self.ax.set_title(curves.title)
    self.map_ax.set_xlim(lo, hi)
    segments = _map_segments(curves)
    self.map.set_segments(segments)
    self.heads.set_data([s[1][0] for s in segments], [1.0] * len(segments))
    self.rails.set_segments([((lo, y), (hi, y)) for y in (0.0, 1.0)] if segments else [])
    self.map_ax.set_yticks([0.0, 1.0] if segments else [], ['$z$', '$x$'] if segments else [])


def _y_max(curves: list[Curves]) -> float:
  return max(1.05, 1.25 * max(float(np.max(c.p_data)) for c in curves))


def _image(canvas) -> np.ndarray:
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def draw_toy_figure(panels: list[Curves]) -> np.ndarray:
  """Draws Figure 1's panels side by side, the map x = G(z) under each, one legend underneath.

  Returns:
    uint8 RGB [HEIGHT, len(panels) * PANEL_W, 3].
  """
  with matplotlib.style.context('default'), matplotlib.rc_context({'font.size': FONT_SIZE}):
    fig = Figure(figsize=(len(panels) * PANEL_W / DPI, HEIGHT / DPI), dpi=DPI,
                 layout='constrained')
    canvas = FigureCanvasAgg(fig)
    grid_spec = fig.add_gridspec(2, len(panels), height_ratios=(3.2, 1.0))
    y_max, first = _y_max(panels), None
    for k, curves in enumerate(panels):
      panel = _Panel(fig, grid_spec[0, k], grid_spec[1, k], y_max, share=first)
      panel.show(curves)
      panel.ax.tick_params(labelleft=k == 0)
      first = first or panel.ax
    handles, labels = first.get_legend_handles_labels()
    # One row under 3 or more panels; narrower figures fold it.
    fig.legend(handles, labels, loc='outside lower center', ncol={1: 1, 2: 2}.get(len(panels), 4),
               frameon=False, handlelength=3.0, columnspacing=2.0)
    return _image(canvas)


def draw_frames(frames: list[Curves]) -> list[np.ndarray]:
  """The animation's frames: one panel each (curves and map), all on the same axes' limits.

  Returns:
    uint8 RGB [FRAME_H, FRAME_W, 3] per frame.
  """
  with matplotlib.style.context('default'), matplotlib.rc_context({'font.size': FONT_SIZE}):
    fig = Figure(figsize=(FRAME_W / FRAME_DPI, FRAME_H / FRAME_DPI), dpi=FRAME_DPI,
                 layout='constrained')
    canvas = FigureCanvasAgg(fig)
    grid_spec = fig.add_gridspec(2, 1, height_ratios=(3.2, 1.0))
    panel = _Panel(fig, grid_spec[0, 0], grid_spec[1, 0], _y_max(frames))
    fig.legend(*panel.ax.get_legend_handles_labels(), loc='outside lower center', ncol=4,
               frameon=False, handlelength=2.5, columnspacing=1.2, fontsize=FONT_SIZE - 1)
    # The layout is fixed on the first frame, so that titles of other widths do not move it.
    panel.show(frames[0])
    canvas.draw()
    fig.set_layout_engine('none')
    images = []
    for curves in frames:
      panel.show(curves)
      images.append(_image(canvas))
  return images


def gif_bytes(images: list[np.ndarray], frame_ms: int, last_frame_ms: int) -> bytes:
  """The frames as a looping GIF, one adaptive palette for all (taken from their union)."""
  strip = Image.fromarray(np.concatenate(images[::max(1, len(images) // 16)], axis=0))
  palette = strip.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
  frames = [Image.fromarray(im).quantize(palette=palette, dither=Image.Dither.NONE)
            for im in images]
  out = io.BytesIO()
  frames[0].save(out, format='GIF', save_all=True, append_images=frames[1:], loop=0,
                 duration=[frame_ms] * (len(frames) - 1) + [last_frame_ms], optimize=False,
                 disposal=1)
  return out.getvalue()
