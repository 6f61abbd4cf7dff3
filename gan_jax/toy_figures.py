"""Figure 1 from a 1-D run's checkpoints, by the paper's procedure, its numbers and an animation.

The panels follow Figure 1's caption rather than a training log:

* (a) a pair near convergence: once G has come within KS distance NEAR_KS of p_data, the later
  checkpoint where it is farthest from p_data (largest KS), so that p_g is similar to p_data
  but visibly not equal and D is a partially accurate classifier, as in the paper's panel (a)
  (if G never comes that near: the checkpoint closest to p_data); with the D trained with it;
* (b) the same G, with D trained alone against it until it is close to D* (Algorithm 1's inner
  loop run to convergence, starting from (a)'s D: INNER_LOOP, on the population objective
  itself rather than on samples, so that D reaches D* also in the tails);
* (c) after one update of G against that D: one gradient step on -log D(G(z)), its size such
  that G(z) moves by at most G_STEP_SDS of p_data's sd (to first order), so that it shows;
* (d) the end of training (the checkpoint asked for, default the newest).

Every number of figure1.json is computed here from the checkpoints (`toy.Toy.numbers`): the KS
distance of TOY_SAMPLES samples of G to p_data, and max |D - D*| and max |D - 1/2| on p_data's
support (mean +- 4 sd) and on its centre (mean +- 2 sd), with p_g the exact density of
x = G(z) for a 1-D z (`toy.pushforward_density`). figure1.gif animates the whole run: one frame
per checkpoint (at most MAX_FRAMES, evenly spread), the initial state first.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from gan_jax import checkpoint
from gan_jax import evaluation
from gan_jax import figure1
from gan_jax import state as state_lib
from gan_jax import toy as toy_lib
from gan_jax import writers

TOY_SAMPLES = 20_000
NEAR_KS = 0.05  # (a): chosen among the checkpoints after G first came this close to p_data.
INNER_LOOP = toy_lib.ExactInnerLoop()  # (b): how D is trained alone against (a)'s G.
# (c): G's one gradient step moves G(z) by at most this many of p_data's sd (to first order).
G_STEP_SDS = 0.25
MAX_FRAMES = 80
FRAME_MS, LAST_FRAME_MS = 80, 2_000
DRAW_POINTS = 600  # x grid of the drawn curves.
_TOY_SALT = 13
_SAMPLES, _INNER_LOOP, _G_STEP = 0, 1, 2  # Random streams under a seed's figure key.
NAMES = 'abcd'


def figure1_paths(out_dir: str) -> list[str]:
  return [os.path.join(out_dir, n) for n in ('figure1.png', 'figure1.json', 'figure1.gif')]


def make_figure1(exp, ckpt, target, step: int | None, out_dirs: list[str],
                 ema: bool = False) -> list[str]:
  """Writes figure1.png, figure1.json and figure1.gif of each seed into its `out_dirs` entry.

  Args:
    exp: the run's experiment.Experiment (1-D data).
    ckpt: its checkpoints.
    target: the initial state (the restore target, stacked for several seeds).
    step: (d)'s checkpoint (default: the newest); (a) is chosen among those up to it.
    out_dirs: one folder per seed.
    ema: draw the EMA of G each checkpoint carries (at step 0 the two are the same).

  Returns:
    The paths written, seed by seed.

  Raises:
    CheckpointError: the workdir has no checkpoint (at `step`).
  """
  steps = ckpt.steps()
  if step is not None and step not in steps:
    raise checkpoint.no_checkpoint_error(ckpt.directory, step, steps)
  if not steps:
    raise checkpoint.no_checkpoint_error(ckpt.directory)
  last = steps[-1] if step is None else step
  d = exp.config.data
  toy = toy_lib.Toy(g_apply=exp.g_apply, d_apply=jax.jit(exp.d_model.apply),
                    data_mean=float(d.toy_mean), data_std=float(d.toy_std),
                    z_dim=exp.spec.z_dim, prior=exp.spec.prior)
  history = _history(exp, ckpt, target, [s for s in steps if s <= last], ema)
  paths = []
  for i, (seed, out_dir) in enumerate(zip(exp.seeds, out_dirs)):
    key = jax.random.fold_in(jax.random.key(seed), _TOY_SALT)
    paths += _seed_figure1(toy, [(s, g[i], dd[i]) for s, g, dd in history], key, out_dir)
  return paths


def _history(exp, ckpt, target, steps: list[int], ema: bool) -> list[tuple]:
  """(step, [G of each seed], [D of each seed]) at step 0 and at each of `steps`: every
  checkpoint restored once, whole, and sliced seed by seed."""
  def split(tree):
    tree = jax.device_get(tree)
    return ([state_lib.seed_slice(tree, i) for i in range(len(exp.seeds))] if exp.stacked
            else [tree])

  out = [(0, split(target.g_params), split(target.d_params))]
  for s in steps:
    state, _ = ckpt.restore(target, s)
    g = evaluation.g_ema_params(state, s, ckpt.directory) if ema else state.g_params
    out.append((s, split(g), split(state.d_params)))
  return out


def _seed_figure1(toy: toy_lib.Toy, history: list[tuple], key, out_dir: str) -> list[str]:
  """One seed's figure, numbers and animation from its (step, G, D) history."""
  sample_key = jax.random.fold_in(key, _SAMPLES)
  samples = [toy.samples(g, TOY_SAMPLES, sample_key) for _, g, _ in history]
  ks = [toy_lib.ks_distance(x, toy.data_mean, toy.data_std) for x in samples]
  a = _near_convergence(ks)
  step_a, g_a, d_a = history[a]
  d_b = toy.fit_discriminator(g_a, d_a, jax.random.fold_in(key, _INNER_LOOP), INNER_LOOP)
  g_c, step_size, move = toy.generator_update(g_a, d_b, jax.random.fold_in(key, _G_STEP),
                                              G_STEP_SDS * toy.data_std)
  step_d, g_d, d_d = history[-1]
  states = [(step_a, g_a, d_a, samples[a]), (step_a, g_a, d_b, samples[a]),
            (step_a, g_c, d_b, toy.samples(g_c, TOY_SAMPLES, sample_key)),
            (step_d, g_d, d_d, samples[-1])]
  record = {
      'panels': [dict(name=name, step=s, **toy.numbers(g, d, x))
                 for name, (s, g, d, x) in zip(NAMES, states)],
      'support': _ends(toy.interval(toy_lib.SUPPORT_SDS)),
      'central': _ends(toy.interval(toy_lib.CENTRAL_SDS)),
      'p_g': 'exact density of x = G(z)' if toy.z_dim == 1 else 'Gaussian KDE of G samples',
      'near_ks': NEAR_KS,
      'inner_loop': dict(kind=type(INNER_LOOP).__name__, **dataclasses.asdict(INNER_LOOP)),
      'g_update': dict(step_size=step_size, max_move=move),
      'ks_by_step': {str(s): k for (s, _, _), k in zip(history, ks)},
  }
  titles = [f'(a) step {step_a:,}: near convergence', '(b) D trained to convergence',
            '(c) after one update of G', f'(d) step {step_d:,}: end of training']
  titles = [f'{t}\nKS distance {p["ks"]:.3f}' for t, p in zip(titles, record['panels'])]
  grid = _draw_grid(toy, [st[3] for st in states])
  panels = [_curves(toy, grid, g, d, t) for t, (_, g, d, _) in zip(titles, states)]
  frames = _frames(toy, history, samples, ks)
  png, json_path, gif = figure1_paths(out_dir)
  if jax.process_index() == 0:  # One writer when several processes run the same command.
    writers.save_png(png, figure1.draw_toy_figure(panels))
    writers.write_json(json_path, record, indent=2)
    data = figure1.gif_bytes(figure1.draw_frames(frames), FRAME_MS, LAST_FRAME_MS)
    writers.atomic_write(gif, lambda f: f.write(data), binary=True)
  return [png, json_path, gif]


def _frames(toy: toy_lib.Toy, history: list[tuple], samples: list[np.ndarray],
            ks: list[float]) -> list[figure1.Curves]:
  """The animation's curves: at most MAX_FRAMES checkpoints, evenly spread, on one x grid."""
  at = np.unique(np.linspace(0, len(history) - 1, min(len(history), MAX_FRAMES)).round()
                 .astype(int))
  grid = _draw_grid(toy, [samples[j] for j in at])
  return [_curves(toy, grid, history[j][1], history[j][2],
                  f'step {history[j][0]:,}   KS distance to p_data {ks[j]:.3f}') for j in at]


def _near_convergence(ks: list[float]) -> int:
  """Panel (a)'s index into the history (0 is the initial state, never chosen)."""
  near = [j for j in range(1, len(ks)) if ks[j] < NEAR_KS]
  if not near:
    return 1 + int(np.argmin(ks[1:]))
  return near[0] + int(np.argmax(ks[near[0]:]))


def _ends(grid: np.ndarray) -> list[float]:
  return [float(grid[0]), float(grid[-1])]


def _draw_grid(toy: toy_lib.Toy, samples: list[np.ndarray]) -> np.ndarray:
  """x from p_data's mean -+ 4 sd, widened to hold the middle 99% of every G's samples."""
  finite = [x[np.isfinite(x)] for x in samples]
  lo = min([toy.data_mean - 4 * toy.data_std] + [np.quantile(x, 0.005) for x in finite if len(x)])
  hi = max([toy.data_mean + 4 * toy.data_std] + [np.quantile(x, 0.995) for x in finite if len(x)])
  pad = 0.05 * (hi - lo)
  return np.linspace(lo - pad, hi + pad, DRAW_POINTS)


def _curves(toy: toy_lib.Toy, grid: np.ndarray, g_params, d_params,
            title: str) -> figure1.Curves:
  p_data = toy.p_data(grid)
  p_g = toy.density(g_params, grid)
  z = g_of_z = None
  if toy.z_dim == 1:
    z = np.linspace(*figure1.prior_range(toy.prior), figure1.MAP_LINES)
    g_of_z = toy.g_on_z(g_params, z)
  return figure1.Curves(title=title, x=grid, p_data=p_data, p_g=p_g,
                        d=toy.discriminator(d_params, grid),
                        d_star=toy_lib.optimal_discriminator(p_data, p_g), z=z, g_of_z=g_of_z)
