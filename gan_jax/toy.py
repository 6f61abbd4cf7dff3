"""Figure 1's quantities for 1-D data: KS distance, p_g's density, D*, and D's inner loop.

* `ks_distance`: the Kolmogorov-Smirnov distance between samples and N(mean, std^2).
* `pushforward_density`: p_g for a G of a 1-D z, from G on a fine grid of z: G is taken as
  linear between grid points, so each interval of z carries its prior mass evenly onto
  [G(z_i), G(z_i+1)]. For a monotone G this is the change of variables p_g(x) = p_z(z) / |G'(z)|
  at z = G^-1(x); the branches of a non-monotone G add up. `pushforward_cdf` is its integral.
* `optimal_discriminator`: D*(x) = p_data / (p_data + p_g) of Proposition 1.
* `Toy`: one G and D of a 1-D problem: samples, D on a grid, p_g, the panel's numbers, D trained
  alone against a fixed G (Algorithm 1's inner loop run to convergence: on samples,
  `InnerLoop`, or on the population objective itself, `ExactInnerLoop`) and one G update.

Kernels: pure functions of arrays and Flax apply functions; they know nothing of files or configs.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import special

from gan_jax import losses
from gan_jax import models

# The panel's numbers max |D - D*| and max |D - 1/2| are taken on p_data's support, mean +- 4 sd
# ([2, 6] for N(4, 0.5^2)), and on its centre, mean +- 2 sd (95% of p_data; [3, 5]).
SUPPORT_SDS, CENTRAL_SDS = 4.0, 2.0
GRID_POINTS = 801  # x grid of an interval for those maxima.
# ... and without x this close (in sd) to a jump of D*, which a continuous D can only approach.
JUMP_SDS = 0.05
Z_GRID_POINTS = 4_001  # z grid for the pushforward density.
KDE_SAMPLES = 20_000  # G's samples for p_g when z has several dimensions.
GAUSSIAN_Z_RANGE = 6.0  # A Gaussian z is cut at +-6 sd (mass 2e-9 left out).
EXACT_SDS = 6.0  # ExactInnerLoop's cells cover at least p_data's mean +- this many sd.


def normal_pdf(x, mean: float, std: float) -> np.ndarray:
  x = np.asarray(x, np.float64)
  return np.exp(-0.5 * np.square((x - mean) / std)) / (std * np.sqrt(2.0 * np.pi))


def ks_distance(samples, mean: float, std: float) -> float:
  """sup_x |F_n(x) - Phi((x - mean) / std)| for the empirical CDF F_n of `samples`."""
  x = np.sort(np.asarray(samples, np.float64).reshape(-1))
  if not np.all(np.isfinite(x)):
    return 1.0  # A diverged G: as far from p_data as a distance can be.
  n = len(x)
  cdf = special.ndtr((x - mean) / std)
  return float(max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max()))


def prior_grid(prior: str) -> tuple[np.ndarray, np.ndarray]:
  """A fine grid of a 1-D z and the prior mass of each interval between its points.

  The points are Chebyshev-spaced, closest together at the ends of z's range, where a G that
  reaches p_data's tails is steepest.
  """
  if prior not in models.PRIORS:
    raise ValueError(f"Unknown prior '{prior}': choose one of {models.PRIORS}.")
  end = np.sqrt(3.0) if prior == 'uniform' else GAUSSIAN_Z_RANGE
  z = -end * np.cos(np.pi * np.arange(Z_GRID_POINTS) / (Z_GRID_POINTS - 1))
  z[0], z[-1] = -end, end
  if prior == 'uniform':
    return z, np.diff(z) / (2 * end)
  return z, np.diff(special.ndtr(z))


def pushforward_density(g_of_z, interval_mass, grid) -> np.ndarray:
  """The density on `grid` of x = G(z), G linear between the points where it was evaluated.

  Args:
    g_of_z: G at increasing grid points of z, [N + 1].
    interval_mass: the prior's mass of each of the N intervals between them.
    grid: x, [M].

  Returns:
    p_g on `grid`: each interval's mass spread evenly over [G(z_i), G(z_i+1)), summed over the
    intervals that cover x (a flat piece of G, whose mass sits at one x, adds nothing).
  """
  g = np.asarray(g_of_z, np.float64)
  lo, hi = np.minimum(g[:-1], g[1:]), np.maximum(g[:-1], g[1:])
  height = np.asarray(interval_mass, np.float64) / np.maximum(hi - lo, 1e-300)
  grid = np.asarray(grid, np.float64)
  out = np.zeros_like(grid)
  for chunk in np.array_split(np.arange(len(lo)), max(1, len(lo) // 1000)):
    inside = (grid[:, None] >= lo[chunk]) & (grid[:, None] < hi[chunk])
    out += inside.astype(np.float64) @ height[chunk]
  return out


def pushforward_cdf(g_of_z, interval_mass, edges) -> np.ndarray:
  """The CDF at `edges` of x = G(z), G linear between the points where it was evaluated.

  The integral of `pushforward_density`, exact for that piecewise-linear G: each interval of z
  spreads its mass evenly over [G(z_i), G(z_i+1)], all of it at one x for a flat piece, so a
  spike of p_g keeps its mass (a density on a grid would miss it).
  """
  g = np.asarray(g_of_z, np.float64)
  lo, hi = np.minimum(g[:-1], g[1:]), np.maximum(g[:-1], g[1:])
  mass = np.asarray(interval_mass, np.float64)
  edges = np.asarray(edges, np.float64)
  out = np.zeros_like(edges)
  for chunk in np.array_split(np.arange(len(lo)), max(1, len(lo) // 1000)):
    width = hi[chunk] - lo[chunk]
    done = (edges[:, None] - lo[chunk]) / np.where(width > 0, width, 1.0)
    done = np.where(width > 0, np.clip(done, 0.0, 1.0), edges[:, None] >= lo[chunk])
    out += done @ mass[chunk]
  return out


def optimal_discriminator(p_data, p_g) -> np.ndarray:
  """D*(x) = p_data / (p_data + p_g) (Proposition 1); 1/2 where both densities are 0."""
  p_data, p_g = np.asarray(p_data, np.float64), np.asarray(p_g, np.float64)
  total = p_data + p_g
  return np.where(total > 0, p_data / np.where(total > 0, total, 1.0), 0.5)


def kde(samples, grid, min_width: float) -> np.ndarray:
  """Gaussian KDE (Silverman's bandwidth, floored at `min_width` for a collapsed G)."""
  samples = np.asarray(samples, np.float64).reshape(-1)
  h = max(1.06 * samples.std() * len(samples) ** -0.2, min_width)
  out = np.zeros(len(grid), np.float64)
  for chunk in np.array_split(samples, max(1, len(samples) // 2000)):
    out += np.exp(-0.5 * np.square((np.asarray(grid)[None, :] - chunk[:, None]) / h)).sum(axis=0)
  return out / (len(samples) * h * np.sqrt(2.0 * np.pi))


@dataclasses.dataclass(frozen=True)
class InnerLoop:
  """D trained alone against a fixed G: Adam, its learning rate cosine-decayed to 0 over
  `steps` steps of `batch_size` fresh samples of p_data and of G each."""
  steps: int = 2_000
  batch_size: int = 4_096
  learning_rate: float = 3e-3


@dataclasses.dataclass(frozen=True)
class ExactInnerLoop:
  """D trained alone against a fixed G on the population objective itself,
  E_p_data[log D] + E_p_g[log(1 - D)], not on samples: the expectations are sums over `cells`
  equal cells of x, each weighted by its exact mass under p_data and under p_g, D taken at its
  midpoint. The cells span p_data's mean +- EXACT_SDS sd, widened to hold G's whole range.
  Full-batch Adam, its learning rate cosine-decayed to 0 over `steps` steps. Free of sampling
  noise, D converges to D* cell by cell, also in the tails, where a batch has few samples."""
  steps: int = 20_000  # 6,000 leave D's step at an end of G's range 2-3 grid points wide.
  learning_rate: float = 3e-3
  cells: int = 4_000


@dataclasses.dataclass(frozen=True)
class Toy:
  """A G and D of a 1-D problem with p_data = N(data_mean, data_std^2).

  Attributes:
    g_apply: (g_params, z [n, z_dim]) -> x [n, ...] (one number per example).
    d_apply: (d_params, x [n, 1, 1, 1]) -> logits [n] (evaluation mode).
    data_mean, data_std: p_data's.
    z_dim, prior: G's noise.
  """
  g_apply: Callable
  d_apply: Callable
  data_mean: float
  data_std: float
  z_dim: int
  prior: str

  def interval(self, sds: float) -> np.ndarray:
    """A grid of x over p_data's mean +- `sds` sd."""
    half = sds * self.data_std
    return np.linspace(self.data_mean - half, self.data_mean + half, GRID_POINTS)

  def generate(self, g_params, num: int, key) -> jax.Array:
    z = models.sample_prior(key, (num, self.z_dim), self.prior)
    return self.g_apply(g_params, z).reshape(num, 1, 1, 1)

  def samples(self, g_params, num: int, key) -> np.ndarray:
    return np.asarray(self.generate(g_params, num, key)).reshape(-1)

  def discriminator(self, d_params, x) -> np.ndarray:
    """D(x) on the host, for x of any shape (as a flat array)."""
    logits = self.d_apply(d_params, jnp.asarray(x, jnp.float32).reshape(-1, 1, 1, 1))
    return np.asarray(jax.nn.sigmoid(logits), np.float64)

  def g_on_z(self, g_params, z) -> np.ndarray:
    """G at the 1-D z's given, on the host."""
    z = jnp.asarray(z, jnp.float32).reshape(-1, 1)
    return np.asarray(self.g_apply(g_params, z), np.float64).reshape(-1)

  def density(self, g_params, grid, samples=None) -> np.ndarray:
    """p_g on `grid`: the exact pushforward for a 1-D z, else a KDE of `samples` (default:
    KDE_SAMPLES of G's)."""
    if self.z_dim == 1:
      z, mass = prior_grid(self.prior)
      return pushforward_density(self.g_on_z(g_params, z), mass, grid)
    if samples is None:
      samples = self.samples(g_params, KDE_SAMPLES, jax.random.key(0))
    return kde(samples, grid, (grid[-1] - grid[0]) / 300)

  def p_data(self, grid) -> np.ndarray:
    return normal_pdf(grid, self.data_mean, self.data_std)

  def numbers(self, g_params, d_params, samples) -> dict:
    """The panel's numbers.

    Returns:
      ks: the KS distance of `samples` (G's) to p_data;
      max_abs_d_minus_d_star, max_abs_d_minus_half: on p_data's support (mean +- SUPPORT_SDS
        sd), and the same on its centre (mean +- CENTRAL_SDS sd) in the keys ending _central;
      mean_abs_d_minus_d_star, mean_abs_d_minus_half: their means on the support weighted by
        (p_data + p_g) / 2, the mixture D is trained on: a maximum is set by the few x where
        D* jumps (at the ends of G's range), a mean by where the samples are;
      max_abs_d_minus_d_star_off_jumps: max |D - D*| on the support farther than JUMP_SDS sd
        from each x where p_g turns 0 (an end of G's range): there D* jumps to 1, and the sup
        distance of any continuous D to it is at least half the jump.
    """
    out = dict(ks=ks_distance(samples, self.data_mean, self.data_std))
    for suffix, sds in (('', SUPPORT_SDS), ('_central', CENTRAL_SDS)):
      grid = self.interval(sds)
      d = self.discriminator(d_params, grid)
      p_data, p_g = self.p_data(grid), self.density(g_params, grid, samples)
      off_star, off_half = np.abs(d - optimal_discriminator(p_data, p_g)), np.abs(d - 0.5)
      out['max_abs_d_minus_d_star' + suffix] = float(np.max(off_star))
      out['max_abs_d_minus_half' + suffix] = float(np.max(off_half))
      if not suffix:
        jumps = (p_g[1:] > 0) != (p_g[:-1] > 0)
        at = (grid[1:][jumps] + grid[:-1][jumps]) / 2
        far = np.all(np.abs(grid[:, None] - at[None, :]) > JUMP_SDS * self.data_std, axis=1)
        out['max_abs_d_minus_d_star_off_jumps'] = float(np.max(off_star[far], initial=0.0))
        mixture = (p_data + p_g) / 2
        mass = max(float(np.trapezoid(mixture, grid)), 1e-12)
        out['mean_abs_d_minus_d_star'] = float(np.trapezoid(off_star * mixture, grid) / mass)
        out['mean_abs_d_minus_half'] = float(np.trapezoid(off_half * mixture, grid) / mass)
    return out

  def cell_masses(self, g_params, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal cells of x over p_data's mean +- EXACT_SDS sd and G's range.

    Returns:
      The cells' midpoints, and their masses under p_data and under p_g: exact for a 1-D z (the
      pushforward's CDF), else the fractions of KDE_SAMPLES samples of G.
    """
    if self.z_dim == 1:
      z, mass = prior_grid(self.prior)
      g_of_z = self.g_on_z(g_params, z)
    else:
      g_of_z = self.samples(g_params, KDE_SAMPLES, jax.random.key(0))
    finite = g_of_z[np.isfinite(g_of_z)]
    half = EXACT_SDS * self.data_std
    lo = min([self.data_mean - half] + [finite.min()] * bool(finite.size))
    hi = max([self.data_mean + half] + [finite.max()] * bool(finite.size))
    edges = np.linspace(lo, hi, cells + 1)
    edges[0], edges[-1] = -np.inf, np.inf  # Each density's whole mass lies in some cell.
    p_data = np.diff(special.ndtr((edges - self.data_mean) / self.data_std))
    if self.z_dim == 1:
      p_g = np.diff(pushforward_cdf(g_of_z, mass, edges))
    else:
      p_g = np.histogram(g_of_z, edges)[0] / len(g_of_z)
    middle = np.linspace(lo, hi, cells + 1)
    return (middle[:-1] + middle[1:]) / 2, p_data, p_g

  def fit_discriminator(self, g_params, d_params, key,
                        loop: InnerLoop | ExactInnerLoop = ExactInnerLoop()):
    """D trained alone against the fixed G from `d_params` until it is close to D* of this G:
    Algorithm 1's inner loop run to convergence, on fresh samples of p_data and G (InnerLoop)
    or on the expectations themselves (ExactInnerLoop; `key` is then unused)."""
    if isinstance(loop, InnerLoop):
      return _fit_discriminator(self, loop, g_params, d_params, key)
    x, p_data, p_g = self.cell_masses(g_params, loop.cells)
    return _fit_exact(self.d_apply, loop, d_params, jnp.asarray(x, jnp.float32),
                      jnp.asarray(p_data, jnp.float32), jnp.asarray(p_g, jnp.float32))

  def generator_update(self, g_params, d_params, key, max_move: float,
                       batch_size: int = 4_096):
    """G after one step of gradient descent on -log D(G(z)) against the fixed D.

    The gradient is taken on `batch_size` z; the step size is the one that moves G(z) by at
    most `max_move` on those z to first order, so the step is visible whatever the gradient's
    scale. Returns (g_params, the step size, the largest move of G(z) it made).
    """
    new, step_size, move = _generator_update(self, batch_size, g_params, d_params, key,
                                             max_move)
    return new, float(step_size), float(move)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fit_discriminator(toy: Toy, loop: InnerLoop, g_params, d_params, key):
  tx = optax.adam(optax.cosine_decay_schedule(loop.learning_rate, loop.steps))

  def step(carry, i):
    params, opt_state = carry
    real_key, fake_key = jax.random.split(jax.random.fold_in(key, i))
    real = toy.data_mean + toy.data_std * jax.random.normal(real_key, (loop.batch_size, 1, 1, 1))
    fake = toy.generate(g_params, loop.batch_size, fake_key)

    def loss(params):
      return losses.discriminator_loss(toy.d_apply(params, real), toy.d_apply(params, fake))

    grads = jax.grad(loss)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  (d_params, _), _ = jax.lax.scan(step, (d_params, tx.init(d_params)), jnp.arange(loop.steps))
  return d_params


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fit_exact(d_apply: Callable, loop: ExactInnerLoop, d_params, x, p_data, p_g):
  tx = optax.adam(optax.cosine_decay_schedule(loop.learning_rate, loop.steps))
  x = x.reshape(-1, 1, 1, 1)

  def loss(params):
    logits = d_apply(params, x)  # -V(D, G): log D = -softplus(-l), log(1 - D) = -softplus(l).
    return jnp.sum(p_data * jax.nn.softplus(-logits) + p_g * jax.nn.softplus(logits))

  def step(carry, _):
    params, opt_state = carry
    updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  (d_params, _), _ = jax.lax.scan(step, (d_params, tx.init(d_params)), None, length=loop.steps)
  return d_params


@functools.partial(jax.jit, static_argnums=(0, 1))
def _generator_update(toy: Toy, batch_size: int, g_params, d_params, key, max_move):
  z = models.sample_prior(key, (batch_size, toy.z_dim), toy.prior)

  def g_of_z(g_params):
    return toy.g_apply(g_params, z).reshape(batch_size, 1, 1, 1)

  def loss(g_params):
    return losses.generator_loss(toy.d_apply(d_params, g_of_z(g_params)), 'non_saturating')

  grads = jax.grad(loss)(g_params)
  descent = jax.tree.map(jnp.negative, grads)
  # How fast each G(z) moves along the descent direction, per unit of step size.
  _, speed = jax.jvp(g_of_z, (g_params,), (descent,))
  step_size = max_move / jnp.maximum(jnp.max(jnp.abs(speed)), 1e-12)
  new = jax.tree.map(lambda p, d: p + step_size * d, g_params, descent)
  return new, step_size, jnp.max(jnp.abs(g_of_z(new) - g_of_z(g_params)))
