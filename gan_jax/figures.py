"""The paper's figures from a run's checkpoints.

* Figure 1 (1-D data, experiments/toy1d.py): p_data, p_g and D(x) at several points of training,
  with the map x = G(z) drawn underneath (figure1.png).
* Figure 2: random samples (samples.png) and rows of samples, each ending with the training
  example nearest to the row's last sample, to show the model does not memorise (nearest.png).
* Figure 3: linear walks in z space (interpolation.png).

Everything is drawn with PIL (no plotting library) and is deterministic given config.seed.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import evaluation
from gan_jax import models
from gan_jax import run
from gan_jax import writers

# Layout of the figures (rows x columns) and their random streams (folded into config.seed).
NUM_SAMPLES, SAMPLE_ROWS = 100, 10
NEAREST_ROWS, NEAREST_COLS = 6, 5
WALK_ROWS, WALK_STEPS = 6, 10
TOY_PANELS, TOY_SAMPLES = 4, 20_000
_SAMPLES_SALT, _NEAREST_SALT, _WALK_SALT, _TOY_SALT = 10, 11, 12, 13
# nearest.png: white gap before the neighbour, and the neighbour's border (colour, width).
NN_GAP, NN_BORDER, NN_COLOUR = 3, 2, (255, 200, 0)


@functools.partial(jax.jit, static_argnames=('block_size',))
def _nearest_kernel(queries, train, block_size: int):
  """Running argmin over blocks of the training set; see `nearest_neighbours`."""
  n, q = train.shape[0], queries.shape[0]
  hi = jax.lax.Precision.HIGHEST  # No reduced-precision (bf16/TF32) matmuls on accelerators.
  t_norm = jnp.einsum('nd,nd->n', train, train, precision=hi)
  q_norm = jnp.einsum('qd,qd->q', queries, queries, precision=hi)

  def body(b, carry):
    best_d, best_i = carry
    # Blocks are slices of `train` itself (no padded copy): the last one is shifted back to end
    # at row n, and the rows it shares with the block before are masked out.
    start = jnp.minimum(b * block_size, n - block_size)
    block = jax.lax.dynamic_slice_in_dim(train, start, block_size)
    norms = jax.lax.dynamic_slice_in_dim(t_norm, start, block_size)
    d = q_norm[:, None] + norms[None, :] - 2.0 * jnp.dot(queries, block.T, precision=hi)
    rows = start + jnp.arange(block_size, dtype=jnp.int32)
    d = jnp.where(rows[None, :] >= b * block_size, d, jnp.inf)
    j = jnp.argmin(d, axis=1)  # The first (lowest index) of equal minima in the block.
    dj = jnp.take_along_axis(d, j[:, None], axis=1)[:, 0]
    better = dj < best_d  # Strict: on a tie the earlier block (lower index) keeps the place.
    return jnp.where(better, dj, best_d), jnp.where(better, rows[j], best_i)

  init = (jnp.full((q,), jnp.inf, queries.dtype), jnp.zeros((q,), jnp.int32))
  dist, idx = jax.lax.fori_loop(0, -(-n // block_size), body, init)
  return idx, jnp.maximum(dist, 0.0)  # Rounding can make a zero distance slightly negative.


def nearest_neighbours(queries, train, block_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
  """The training example nearest (squared Euclidean) to each query.

  Distances use the expansion ||x||^2 + ||y||^2 - 2 x.y, one matmul per block of `block_size`
  training examples, with a running argmin, so memory is O(queries * block_size) whatever the
  size of the training set.

  Ties: among equal computed distances the lowest training index wins. The expansion rounds
  differently from summing (x - y)^2, so two examples whose distances differ by less than about
  1e-6 * (||x||^2 + ||y||^2) may come in either order.

  Args:
    queries: [Q, ...] float (e.g. samples [Q, H, W, C]).
    train: [N, ...] float with the same trailing shape.
    block_size: training examples per block.

  Returns:
    (indices int32 [Q], squared distances float32 [Q]) on the host.
  """
  queries, train = np.asarray(queries, np.float32), np.asarray(train, np.float32)
  if queries.shape[1:] != train.shape[1:]:
    raise ValueError(f'Queries of shape {queries.shape[1:]} cannot be compared with training '
                     f'examples of shape {train.shape[1:]}: pass arrays of the same example shape.')
  if len(train) == 0 or len(queries) == 0:
    raise ValueError('nearest_neighbours needs at least one query and one training example.')
  if block_size < 1:
    raise ValueError(f'block_size must be positive, got {block_size}.')
  block_size = min(block_size, len(train))
  idx, dist = _nearest_kernel(queries.reshape(len(queries), -1), train.reshape(len(train), -1),
                              block_size)
  return np.asarray(idx), np.asarray(dist)


def latent_walk(g_apply, g_params, key, rows: int, steps: int, z_dim: int, prior: str):
  """Figure 3's walks: G along the segment from z_a to z_b, for `rows` random pairs.

  Returns:
    (images [rows, steps, H, W, C], z [rows, steps, z_dim]); z[:, 0] is z_a and z[:, -1] is z_b.
  """
  if rows < 1 or steps < 2:
    raise ValueError(f'A latent walk needs rows >= 1 and steps >= 2, got {rows} and {steps}.')
  z_ends = models.sample_prior(key, (2, rows, z_dim), prior)
  t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
  z = (1.0 - t) * z_ends[0][:, None] + t * z_ends[1][:, None]  # Exact at t = 0 and t = 1.
  images = g_apply(g_params, z.reshape(rows * steps, z_dim))
  return np.asarray(images).reshape(rows, steps, *images.shape[1:]), np.asarray(z)


def _tiles(images: np.ndarray, normalisation: str) -> list[np.ndarray]:
  """uint8 RGB tiles, normalised together (one scale for 'gcn'), by writers.image_grid."""
  strip = writers.image_grid(images, rows=1, pad=0, normalisation=normalisation)
  w = images.shape[2]
  strip = np.repeat(strip, 3, axis=-1) if strip.shape[-1] == 1 else strip
  return [strip[:, i * w:(i + 1) * w] for i in range(len(images))]


def nearest_layout(rows_of_samples: np.ndarray, neighbours: np.ndarray,
                   normalisation: str = 'unit') -> np.ndarray:
  """Figure 2: each row of samples, a gap, then the nearest training example in a border.

  Args:
    rows_of_samples: [R, C, H, W, ch] samples.
    neighbours: [R, H, W, ch], the training example nearest to each row's last sample.
    normalisation: as writers.image_grid.

  Returns:
    uint8 RGB [R * (H + 2b + 1) - 1, C * (W + 1) - 1 + gap + W + 2b, 3] with b = NN_BORDER.
  """
  r, c, h, w = rows_of_samples.shape[:4]
  b = NN_BORDER
  tiles = _tiles(np.concatenate([rows_of_samples.reshape(r * c, *rows_of_samples.shape[2:]),
                                 neighbours]), normalisation)
  row_h, nn_x = h + 2 * b, c * (w + 1) - 1 + NN_GAP
  out = np.full((r * (row_h + 1) - 1, nn_x + w + 2 * b, 3), 255, np.uint8)
  for i in range(r):
    y = i * (row_h + 1)
    for j in range(c):
      out[y + b:y + b + h, j * (w + 1):j * (w + 1) + w] = tiles[i * c + j]
    out[y:y + row_h, nn_x:nn_x + w + 2 * b] = NN_COLOUR
    out[y + b:y + b + h, nn_x + b:nn_x + b + w] = tiles[r * c + i]
  return out


def _pick_steps(steps: list[int], count: int) -> list[int]:
  """`count` of `steps`, spread geometrically from the first to the last (both included), since
  training changes fastest early."""
  if len(steps) <= count:
    return list(steps)
  chosen = []
  for t in np.geomspace(max(steps[0], 1), max(steps[-1], 1), count):
    rest = [s for s in steps if s not in chosen]
    chosen.append(min(rest, key=lambda s: abs(np.log(max(s, 1)) - np.log(t))))
  return sorted(chosen)


def _save(path: str, image: np.ndarray) -> str:
  if jax.process_index() == 0:  # One writer when several processes run the same command.
    writers.save_png(path, image)
  return path


def make_figures(config, workdir: str, step: int | None = None) -> list[str]:
  """Writes the figures of the run in `workdir` into `workdir/figures/`.

  Args:
    config: the run's config.
    workdir: the run's directory (holding checkpoints/).
    step: the checkpoint to draw (default: the newest). For 1-D data, the last panel of
      Figure 1; the earlier panels are the initial state and older checkpoints.

  Returns:
    The paths written: figure1.png for 1-D data, else samples.png, nearest.png and
    interpolation.png (in figures_g_average_<W>/ for G averaged as config.eval.parzen.g_average,
    figures_g_ema/ for the EMA of G with config.eval.parzen.g_ema; Figure 1 heeds only g_ema).

  Raises:
    CheckpointError: the workdir has no checkpoint (at `step`).
  """
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(ckpt_dir):
    raise checkpoint.CheckpointError(
        f'No checkpoints in {workdir}: train first (launch.py --mode=train --workdir={workdir}).')
  train = data.load_split(config.data, config.data.train_split)
  exp = run.build(config, len(train), train.shape[1:])
  target = exp.initial_state(train)
  out_dir = os.path.join(workdir, 'figures')
  key = jax.random.key(config.seed)
  ckpt = checkpoint.Checkpointer(ckpt_dir, read_only=True)  # Figures never prune a run.
  try:
    # An averaged G or the EMA of G (what --mode=eval scores with g_average or g_ema) is drawn
    # into a folder of its own.
    window, ema = config.eval.parzen.get('g_average', 0), config.eval.parzen.get('g_ema', False)
    if int(np.prod(train.shape[1:])) == 1:
      return [_toy_figure(exp, ckpt, target, step, jax.random.fold_in(key, _TOY_SALT),
                          os.path.join(out_dir + evaluation.generator_suffix(0, ema),
                                       'figure1.png'), ema)]
    g, _, _ = evaluation.restore_generator(ckpt, target, step, window, ema)
    out_dir += evaluation.generator_suffix(window, ema)
  finally:
    ckpt.close()
  norm = config.data.preprocessing
  paths = []

  samples = exp.generate(g, NUM_SAMPLES, jax.random.fold_in(key, _SAMPLES_SALT))
  paths.append(_save(os.path.join(out_dir, 'samples.png'),
                     writers.image_grid(samples, SAMPLE_ROWS, normalisation=norm)))

  rows = exp.generate(g, NEAREST_ROWS * NEAREST_COLS, jax.random.fold_in(key, _NEAREST_SALT))
  rows = rows.reshape(NEAREST_ROWS, NEAREST_COLS, *rows.shape[1:])
  idx, _ = nearest_neighbours(rows[:, -1], train)
  paths.append(_save(os.path.join(out_dir, 'nearest.png'),
                     nearest_layout(rows, train[idx], norm)))

  walk, _ = latent_walk(exp.g_apply, g, jax.random.fold_in(key, _WALK_SALT), WALK_ROWS,
                        WALK_STEPS, exp.spec.z_dim, exp.spec.prior)
  grid = writers.image_grid(walk.reshape(-1, *walk.shape[2:]), WALK_ROWS, normalisation=norm)
  paths.append(_save(os.path.join(out_dir, 'interpolation.png'), grid))
  return paths


def _toy_figure(exp, ckpt, target, step, key, path: str, ema: bool = False) -> str:
  """Figure 1 from the initial state and up to TOY_PANELS - 1 checkpoints (the last: `step`).

  With `ema`, G is the EMA of G each checkpoint carries (at step 0 the two are the same).
  """
  steps = sorted(ckpt.manager.all_steps())
  if not steps:
    raise checkpoint.CheckpointError(
        f'No checkpoint in {ckpt.directory}: train first (launch.py --mode=train).')
  if step is not None and step not in steps:
    raise checkpoint.CheckpointError(
        f'No checkpoint at step {step} in {ckpt.directory}; it has {steps}.')
  last = steps[-1] if step is None else step
  panels = [toy_panel(exp, target.g_params, target.d_params, key, 0)]
  for s in _pick_steps([s for s in steps if s <= last], TOY_PANELS - 1):
    state, _ = ckpt.restore(target, s)
    g = evaluation.g_ema_params(state, s, ckpt.directory) if ema else state.g_params
    panels.append(toy_panel(exp, g, state.d_params, key, s))
  d = exp.config.data
  return _save(path, draw_toy_figure(panels, float(d.toy_mean), float(d.toy_std)))


def toy_panel(exp, g_params, d_params, key, step: int) -> dict:
  """What one panel of Figure 1 needs: G's samples, D as a function, and (for a 1-D z) G on a
  grid of z for the map underneath."""
  samples = exp.generate(g_params, TOY_SAMPLES, key).reshape(-1)
  d_apply = jax.jit(exp.d_model.apply)

  def discriminator(x):
    logits = d_apply(d_params, jnp.asarray(x, jnp.float32).reshape(-1, 1, 1, 1))
    return np.asarray(jax.nn.sigmoid(logits))

  panel = dict(step=step, samples=samples, discriminator=discriminator, z=None, g_of_z=None)
  if exp.spec.z_dim == 1:
    z = np.linspace(*prior_range(exp.spec.prior), MAP_LINES, dtype=np.float32)
    panel.update(z=z, g_of_z=np.asarray(exp.g_apply(g_params, z[:, None])).reshape(-1))
  return panel


# Figure 1, drawn by hand: p_data black dotted, p_g green solid, D blue dashed (as the paper),
# and D* (what D would be if trained to optimality against this G) thin, light blue, dotted.
PANEL_W, PANEL_H, LEGEND_H = 360, 290, 28
MAP_LINES = 15  # Lines of the map x = G(z) under each panel.
_SS = 2  # PIL does not anti-alias: drawing at twice the size and downsampling smooths lines.
_BLACK, _GREEN, _BLUE, _GREY = (0, 0, 0), (0, 150, 0), (30, 70, 230), (120, 120, 120)
_LIGHT_BLUE = (120, 170, 255)
# Panel geometry (1x pixels): plot box, then x tick labels, then the x and z lines of the map.
_LEFT, _RIGHT, _TOP, _PLOT_H, _X_LINE, _Z_LINE = 42, 14, 26, 150, 218, 266


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


def _nice_step(span: float, target: int = 6) -> float:
  raw = span / target
  mag = 10.0 ** np.floor(np.log10(raw))
  return float(mag * min((m for m in (1, 2, 5, 10) if m * mag >= raw), default=10))


def _font(size: int):
  try:
    return ImageFont.load_default(size=size * _SS)
  except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font.
    return ImageFont.load_default()


def _line(draw, xs, ys, colour, width, dash: tuple[int, int] | None = None):
  """A polyline (1x pixel coordinates), solid or dashed (`dash` = (on, off) pixels).

  NaN coordinates break the line: each finite run is drawn separately.
  """
  pts = np.stack(np.broadcast_arrays(np.asarray(xs, float), np.asarray(ys, float)), axis=1)
  finite = np.isfinite(pts).all(axis=1)
  if not finite.all():
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
      if stop - start > 1:
        _line(draw, pts[start:stop, 0], pts[start:stop, 1], colour, width, dash)
    return
  pts = pts * _SS
  if dash is None:
    draw.line([tuple(p) for p in pts], fill=colour, width=width * _SS, joint='curve')
    return
  cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
  on, off = dash[0] * _SS, dash[1] * _SS
  for start in np.arange(0.0, cum[-1], on + off):
    s = np.concatenate([[start], cum[(cum > start) & (cum < start + on)],
                        [min(start + on, cum[-1])]])
    seg = np.stack([np.interp(s, cum, pts[:, 0]), np.interp(s, cum, pts[:, 1])], axis=1)
    draw.line([tuple(p) for p in seg], fill=colour, width=width * _SS)


def _text(draw, xy, text, font, anchor='mm', colour=_BLACK):
  draw.text((xy[0] * _SS, xy[1] * _SS), text, fill=colour, font=font, anchor=anchor)


def draw_toy_figure(panels: list[dict], data_mean: float, data_std: float) -> np.ndarray:
  """Draws Figure 1's panels side by side, with a legend underneath.

  Args:
    panels: from `toy_panel`: step, G's samples, the z grid and G(z), and D as a function.
    data_mean, data_std: p_data = N(data_mean, data_std^2).

  Returns:
    uint8 RGB [PANEL_H + LEGEND_H, len(panels) * PANEL_W, 3].
  """
  everything = np.concatenate([p['samples'] for p in panels])
  lo = min(np.quantile(everything, 0.005), data_mean - 4 * data_std)
  hi = max(np.quantile(everything, 0.995), data_mean + 4 * data_std)
  lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
  grid = np.linspace(lo, hi, 600)
  p_data = np.exp(-0.5 * np.square((grid - data_mean) / data_std)) / (
      data_std * np.sqrt(2 * np.pi))
  y_max = max(1.05, 1.25 * p_data.max())
  width, height = len(panels) * PANEL_W, PANEL_H + LEGEND_H
  image = Image.new('RGB', (width * _SS, height * _SS), 'white')
  draw = ImageDraw.Draw(image)
  font, small = _font(12), _font(10)
  x_step, y_step = _nice_step(hi - lo), (0.5 if y_max <= 2 else _nice_step(y_max, 4))
  bottom = _TOP + _PLOT_H

  for k, panel in enumerate(panels):
    x0, x1 = k * PANEL_W + _LEFT, (k + 1) * PANEL_W - _RIGHT
    px = lambda v, x0=x0, x1=x1: x0 + (np.asarray(v) - lo) / (hi - lo) * (x1 - x0)
    py = lambda v: bottom - np.minimum(np.asarray(v), y_max) / y_max * _PLOT_H
    _text(draw, ((x0 + x1) / 2, _TOP / 2), f'({"abcdefgh"[k % 8]}) step {panel["step"]}', font)
    _line(draw, [x0, x0, x1], [_TOP, bottom, bottom], _GREY, 1)  # The axes.
    for t in np.arange(np.ceil(lo / x_step) * x_step, hi, x_step):
      _line(draw, [px(t), px(t)], [bottom, bottom + 4], _GREY, 1)
      _text(draw, (px(t), bottom + 12), f'{round(t, 6) + 0.0:g}', small)  # No '-0'.
    for t in np.arange(0.0, y_max + 1e-9, y_step):
      _line(draw, [x0 - 4, x0], [py(t), py(t)], _GREY, 1)
      _text(draw, (x0 - 6, py(t)), f'{t:g}', small, anchor='rm')
    _line(draw, px(grid), py(p_data), _BLACK, 2, dash=(2, 4))
    p_g = _kde(panel['samples'], grid, (hi - lo) / 300)
    _line(draw, px(grid), py(p_g), _GREEN, 2)
    # D* of Proposition 1 for this G (from the KDE), where the densities are not both ~0.
    with np.errstate(invalid='ignore', divide='ignore'):
      d_star = np.where(p_data + p_g > 1e-3, p_data / (p_data + p_g), np.nan)
    _line(draw, px(grid), py(d_star), _LIGHT_BLUE, 1, dash=(2, 3))
    _line(draw, px(grid), py(panel['discriminator'](grid)), _BLUE, 2, dash=(8, 5))
    if panel['z'] is None:  # A z of several dimensions has no line to draw.
      continue
    # The map: z evenly spaced on the lower line, an arrow to G(z) on the upper line.
    z_lo, z_hi = panel['z'][0], panel['z'][-1]
    zx = x0 + (panel['z'] - z_lo) / (z_hi - z_lo) * (x1 - x0)
    _line(draw, [x0, x1], [_X_LINE, _X_LINE], _BLACK, 1)
    _line(draw, [x0, x1], [_Z_LINE, _Z_LINE], _BLACK, 1)
    _text(draw, (x0 - 10, _X_LINE), 'x', font)
    _text(draw, (x0 - 10, _Z_LINE), 'z', font)
    for z_px, gx in zip(zx, np.clip(px(panel['g_of_z']), x0, x1)):
      _line(draw, [z_px, gx], [_Z_LINE, _X_LINE + 3], _GREY, 1)
      _line(draw, [gx - 3, gx, gx + 3], [_X_LINE + 7, _X_LINE + 2, _X_LINE + 7], _GREY, 1)

  legend_y = PANEL_H + LEGEND_H / 2
  entries = [('p_data', _BLACK, (2, 4)), ('p_g (KDE of G\'s samples)', _GREEN, None),
             ('D(x)', _BLUE, (8, 5)), ('D*(x) = p_data / (p_data + p_g)', _LIGHT_BLUE, (2, 3))]
  widths = [44 + draw.textlength(label, font=font) / _SS + 30 for label, _, _ in entries]
  x = (width - sum(widths)) / 2
  for (label, colour, dash), w in zip(entries, widths):
    _line(draw, [x, x + 36], [legend_y, legend_y], colour, 1 if colour == _LIGHT_BLUE else 2,
          dash=dash)
    _text(draw, (x + 44, legend_y), label, font, anchor='lm')
    x += w
  image = image.resize((width, height), Image.LANCZOS)
  return np.asarray(image)
