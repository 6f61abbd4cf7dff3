"""Figure 1 (1-D data): p_data, p_g and D(x) at several points of training, drawn with matplotlib.

Each panel shows p_data (black, dotted), p_g (green, solid: a KDE of G's samples), D(x) (blue,
dashed, as the paper) and D*(x) = p_data / (p_data + p_g), what D would be if trained to
optimality against this G (thin, light blue, dotted); underneath, for a 1-D z, the map x = G(z):
arrows from evenly spaced z on the lower line to G(z) on the upper line.

The figure is built on a `matplotlib.figure.Figure` with its own Agg canvas (no pyplot, no global
backend), under matplotlib's default style so that a user's matplotlibrc does not change it, at a
fixed size and dpi: the same panels give the same pixels.
"""

from __future__ import annotations

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

MAP_LINES = 15  # Arrows of the map x = G(z) under each panel.
# Size in pixels: PANEL_W per panel, HEIGHT in all (inches are these / DPI, exact in binary).
PANEL_W, HEIGHT, DPI = 480, 520, 160
FONT_SIZE = 9  # Points.
# Colours (RGB, 0-255): p_data, p_g, D, D* and the map's arrows.
BLACK, GREEN, BLUE = (0, 0, 0), (0, 150, 0), (30, 70, 230)
LIGHT_BLUE, GREY = (120, 170, 255), (120, 120, 120)
_P_DATA = r'$p_{\mathrm{data}}$'


def prior_range(prior: str) -> tuple[float, float]:
  """The z interval drawn under each panel: the uniform prior's support, or +-2.5 sd."""
  return (-np.sqrt(3.0), np.sqrt(3.0)) if prior == 'uniform' else (-2.5, 2.5)


def _kde(samples: np.ndarray, grid: np.ndarray, min_width: float) -> np.ndarray:
  """Gaussian KDE (Silverman's bandwidth, floored at `min_width` for a collapsed G)."""
  samples = np.asarray(samples, np.float64)
  h = max(1.06 * samples.std() * len(samples) ** -0.2, min_width)
  out = np.zeros_like(grid, np.float64)
  for chunk in np.array_split(samples, max(1, len(samples) // 2000)):
    out += np.exp(-0.5 * np.square((grid[None, :] - chunk[:, None]) / h)).sum(axis=0)
  return out / (len(samples) * h * np.sqrt(2.0 * np.pi))


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
  return tuple(c / 255.0 for c in colour)


def _draw_map(ax, panel: dict, lo: float, hi: float):
  """The map x = G(z): z evenly spaced on the lower line (y = 0), G(z) on the upper (y = 1).

  z is drawn across the panel's whole width, G(z) on the density plot's x axis (clipped to it).
  """
  ax.set_xlim(lo, hi)
  ax.set_ylim(-0.08, 1.08)
  for side in ('top', 'right', 'bottom', 'left'):
    ax.spines[side].set_visible(False)
  ax.set_xticks([])
  ax.set_yticks([0.0, 1.0], ['$z$', '$x$'])
  ax.tick_params(axis='y', length=0, pad=4)
  if panel['z'] is None:  # A z of several dimensions has no line to draw.
    ax.set_yticks([])
    return
  ax.hlines([0.0, 1.0], lo, hi, colors='black', linewidth=0.8)
  z = np.asarray(panel['z'], np.float64)
  z_x = lo + (z - z[0]) / (z[-1] - z[0]) * (hi - lo)
  g_x = np.clip(np.asarray(panel['g_of_z'], np.float64), lo, hi)
  for start, end in zip(z_x, g_x):
    ax.annotate('', xy=(end, 1.0), xytext=(start, 0.0),
                arrowprops=dict(arrowstyle='-|>', color=_rgb(GREY), linewidth=0.7,
                                mutation_scale=7, shrinkA=0, shrinkB=0))


def draw_toy_figure(panels: list[dict], data_mean: float, data_std: float) -> np.ndarray:
  """Draws Figure 1's panels side by side, the map x = G(z) under each, one legend underneath.

  Args:
    panels: from figures.toy_panel: step, G's samples, D as a function, and z with G(z) (or
      None for a z of several dimensions).
    data_mean, data_std: p_data = N(data_mean, data_std^2).

  Returns:
    uint8 RGB [HEIGHT, len(panels) * PANEL_W, 3].
  """
  everything = np.concatenate([p['samples'] for p in panels])
  lo = min(np.quantile(everything, 0.005), data_mean - 4 * data_std)
  hi = max(np.quantile(everything, 0.995), data_mean + 4 * data_std)
  lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
  grid = np.linspace(lo, hi, 600)
  p_data = np.exp(-0.5 * np.square((grid - data_mean) / data_std)) / (
      data_std * np.sqrt(2 * np.pi))
  y_max = max(1.05, 1.25 * p_data.max())

  with matplotlib.style.context('default'), matplotlib.rc_context({'font.size': FONT_SIZE}):
    fig = Figure(figsize=(len(panels) * PANEL_W / DPI, HEIGHT / DPI), dpi=DPI,
                 layout='constrained')
    canvas = FigureCanvasAgg(fig)
    grid_spec = fig.add_gridspec(2, len(panels), height_ratios=(3.2, 1.0))
    first = None
    for k, panel in enumerate(panels):
      ax = fig.add_subplot(grid_spec[0, k], sharey=first)
      first = first or ax
      ax.plot(grid, p_data, color=_rgb(BLACK), linestyle=(0, (1, 2)), linewidth=1.6,
              label=_P_DATA)
      p_g = _kde(panel['samples'], grid, (hi - lo) / 300)
      ax.plot(grid, p_g, color=_rgb(GREEN), linewidth=1.6, label=r'$p_g$ (KDE of $G$’s samples)')
      ax.plot(grid, np.asarray(panel['discriminator'](grid)).reshape(-1), color=_rgb(BLUE),
              linestyle=(0, (5, 3)), linewidth=1.6, label='$D(x)$')
      # D* of Proposition 1 for this G (from the KDE), where the densities are not both ~0.
      with np.errstate(invalid='ignore', divide='ignore'):
        d_star = np.where(p_data + p_g > 1e-3, p_data / (p_data + p_g), np.nan)
      ax.plot(grid, d_star, color=_rgb(LIGHT_BLUE), linestyle=(0, (1, 1.5)), linewidth=1.0,
              label=rf'$D^*(x) = {_P_DATA[1:-1]} / ({_P_DATA[1:-1]} + p_g)$')
      ax.set_xlim(lo, hi)
      ax.set_ylim(0.0, y_max)
      ax.set_title(f'({"abcdefghijklmnopqrstuvwxyz"[k % 26]}) step {panel["step"]:,}')
      ax.spines[['top', 'right']].set_visible(False)
      ax.tick_params(labelleft=k == 0)
      _draw_map(fig.add_subplot(grid_spec[1, k]), panel, lo, hi)
    handles, labels = first.get_legend_handles_labels()
    # One row under 3 or more panels; narrower figures fold it.
    fig.legend(handles, labels, loc='outside lower center', ncol={1: 1, 2: 2}.get(len(panels), 4),
               frameon=False,
               handlelength=3.0, columnspacing=2.0)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
  return image
