"""The paper's figures from a run's checkpoints.

* Figure 1 (1-D data, experiments/toy1d.py): by the paper's procedure, with its numbers and an
  animation of the whole run (figure1.png, figure1.json, figure1.gif; gan_jax/toy_figures.py).
* Figure 2: random samples (samples.png) and rows of samples, each ending with the training
  example nearest to the row's last sample, to show the model does not memorise (nearest.png).
* Figure 3: linear walks in z space (interpolation.png).
* 2-D mixtures (experiments/mog2d.py): G's samples over the mixture's centres, one panel per
  checkpoint, with the modes covered (modes.png, modes.json; gan_jax/mixture_figures.py).

Figure 1 is drawn with matplotlib (gan_jax/figure1.py), the image grids with PIL (writers); all
are deterministic given config.seed. A run of several seeds draws each seed's into its seed_<s>/.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import checkpoint
from gan_jax import data
from gan_jax import evaluation
from gan_jax import experiment
from gan_jax import mixture_figures
from gan_jax import models
from gan_jax import neighbours
from gan_jax import state as state_lib
from gan_jax import toy_figures
from gan_jax import writers

# Layout of the figures (rows x columns) and their random streams (folded into config.seed).
NUM_SAMPLES, SAMPLE_ROWS = 100, 10
NEAREST_ROWS, NEAREST_COLS = 6, 5
WALK_ROWS, WALK_STEPS = 6, 10
_SAMPLES_SALT, _NEAREST_SALT, _WALK_SALT = 10, 11, 12  # Figure 1's is toy_figures._TOY_SALT.
# nearest.png: white gap before the neighbour, and the neighbour's border (colour, width).
NN_GAP, NN_BORDER, NN_COLOUR = 3, 2, (255, 200, 0)


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


def _save(path: str, image: np.ndarray) -> str:
  if jax.process_index() == 0:  # One writer when several processes run the same command.
    writers.save_png(path, image)
  return path


def make_figures(config, workdir: str, step: int | None = None) -> list[str]:
  """Writes the figures of the run in `workdir` into `workdir/figures/`.

  A run of several members (seeds, config.num_seeds, for each value of a sweep, config.sweep)
  draws each member's figures, from its slice of the stacked checkpoints, into its folder's
  figures/ (`workdir/seed_<s>/figures/`): the figures its run alone draws.

  Args:
    config: the run's config.
    workdir: the run's directory (holding checkpoints/).
    step: the checkpoint to draw (default: the newest). For 1-D data, Figure 1's panel (d), the
      end of training; panel (a) and the animation's frames are checkpoints up to it.

  Returns:
    The paths written: figure1.png, figure1.json and figure1.gif for 1-D data (see
    gan_jax/toy_figures.py), modes.png and modes.json for 2-D data (a mixture; panels are the
    checkpoints up to `step`, gan_jax/mixture_figures.py), else samples.png, nearest.png and
    interpolation.png (in figures_g_average_<W>/ for G averaged as config.eval.parzen.g_average,
    figures_g_ema/ for the EMA of G with config.eval.parzen.g_ema; Figure 1 heeds only g_ema);
    seed by seed for several seeds.

  Raises:
    CheckpointError: the workdir has no checkpoint (at `step`).
  """
  p = config.eval.parzen
  evaluation.check_num_seeds(config, workdir)
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:  # Read-only: figures never prune a run.
    train = data.load_split(config.data, config.data.train_split)
    exp = experiment.build(config, train.shape[1:], len(train))
    # An averaged G or the EMA of G (what --mode=eval scores with g_average or g_ema) is drawn
    # into a folder of its own.
    out_dirs = [os.path.join(workdir, m.name if exp.stacked else '', 'figures')
                for m in exp.members]
    if int(np.prod(train.shape[1:])) == 1:
      return toy_figures.make_figure1(
          exp, ckpt, exp.initial_state(train), step,
          [d + evaluation.generator_suffix(0, p.g_ema) for d in out_dirs], p.g_ema)
    if int(np.prod(train.shape[1:])) == 2:
      return mixture_figures.make_modes_figure(
          exp, ckpt, step, [d + evaluation.generator_suffix(0, p.g_ema) for d in out_dirs],
          p.g_ema)
    g, _, _ = evaluation.restore_generator(ckpt, exp.g_shapes(), step, p.g_average, p.g_ema)
  paths = []
  for i, (seed, out_dir) in enumerate(zip(exp.seeds, out_dirs)):
    g_seed = state_lib.seed_slice(g, i) if exp.stacked else g
    paths += _image_figures(exp, g_seed, train, jax.random.key(seed),
                            out_dir + evaluation.generator_suffix(p.g_average, p.g_ema))
  return paths


def _image_figures(exp, g, train: np.ndarray, key, out_dir: str) -> list[str]:
  """Figures 2 and 3 of one G (one seed's, `key` = jax.random.key(seed)) into `out_dir`."""
  norm = exp.config.data.preprocessing
  paths = []
  samples = exp.generate(g, NUM_SAMPLES, jax.random.fold_in(key, _SAMPLES_SALT))
  paths.append(_save(os.path.join(out_dir, 'samples.png'),
                     writers.image_grid(samples, SAMPLE_ROWS, normalisation=norm)))

  rows = exp.generate(g, NEAREST_ROWS * NEAREST_COLS, jax.random.fold_in(key, _NEAREST_SALT))
  rows = rows.reshape(NEAREST_ROWS, NEAREST_COLS, *rows.shape[1:])
  idx, _ = neighbours.nearest(rows[:, -1].reshape(NEAREST_ROWS, -1),
                              train.reshape(len(train), -1))
  paths.append(_save(os.path.join(out_dir, 'nearest.png'),
                     nearest_layout(rows, train[idx], norm)))

  walk, _ = latent_walk(exp.g_apply, g, jax.random.fold_in(key, _WALK_SALT), WALK_ROWS,
                        WALK_STEPS, exp.spec.z_dim, exp.spec.prior)
  grid = writers.image_grid(walk.reshape(-1, *walk.shape[2:]), WALK_ROWS, normalisation=norm)
  paths.append(_save(os.path.join(out_dir, 'interpolation.png'), grid))
  return paths
