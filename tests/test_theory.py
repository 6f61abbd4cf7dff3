"""Section 4 of Goodfellow et al. (2014), checked numerically with the project's D, loss and optax.

* Proposition 1: for a fixed G, the D that maximises V(G, D) is D*(x) = p_data / (p_data + p_g).
* Theorem 1: C(G) = max_D V(G, D) = -log 4 + 2 JSD(p_data || p_g), whose minimum -log 4 is
  reached exactly when p_g = p_data (then D* = 1/2).

G is fixed and affine in Gaussian z (the project's MLPGenerator with no hidden layer, x = a z + b),
so p_g = N(b, a^2) in closed form. D is the project's MaxoutDiscriminator (no dropout) trained
with losses.discriminator_loss and optax.adam on fresh samples every step. Integrals over x are
trapezoid sums on a fine grid; the JSD is computed independently with scipy.integrate.quad.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate

from gan_jax import losses
from gan_jax import models

LOG4 = np.log(4.0)
# (p_data, p_g) as (mean, sd) pairs: a shift; the toy's N(4, 0.5^2) against a wider, shifted
# p_g (a concave log-ratio: D* is not monotone); and p_g = p_data.
PAIRS = {
    'shift': ((0.0, 1.0), (1.0, 1.0)),
    'toy': ((4.0, 0.5), (4.25, 0.75)),
    'equal': ((4.0, 0.5), (4.0, 0.5)),
}
# D trained for STEPS Adam steps (lr 1e-2 decayed to 1e-4) on BATCH fresh samples of each.
STEPS, BATCH = 2000, 512
# Tolerances, from the errors of the trained D measured over seeds 0-2 (fixed seed 0 here):
# |D - D*| pointwise on the grid where both densities are >= DENSITY_FLOOR, at most 0.015 measured
# (minibatch noise in the last steps and D's piecewise-linear logit); 2x margin. A D stuck at 1/2
# is off by 0.32-0.33 on these pairs, ten times the tolerance.
D_TOL = 0.03
# V(D*) - V(D_trained) in nats: at most 2.2e-4 measured; V(D*) - V(1/2) = 2 JSD is 0.11-0.22.
V_TOL = 0.002
DENSITY_FLOOR = 0.05
GRID = np.linspace(-12.0, 16.0, 28_001)


def normal_pdf(x, mean, sd):
  return np.exp(-0.5 * np.square((x - mean) / sd)) / (sd * np.sqrt(2.0 * np.pi))


def affine_generator(mean: float, sd: float):
  """The project's G with no hidden layer, set to x = sd * z + mean: p_g = N(mean, sd^2)."""
  g = models.MLPGenerator(hidden=(), activations=(), hidden_inits=(), hidden_bias=(),
                          image_shape=(1, 1, 1), output_activation='linear')
  params = {'params': {'out': {'kernel': jnp.full((1, 1), sd), 'bias': jnp.full((1,), mean)}}}
  return g, params


DISCRIMINATOR = models.MaxoutDiscriminator(units=(16, 16), pieces=5, init_range=0.1,
                                           input_keep=1.0, hidden_keep=1.0)


@jax.jit
def _train(d_params, g_params, data_mean, data_sd, key):
  """STEPS Adam steps of the D loss, each on fresh samples of p_data and of the affine G."""
  g, _ = affine_generator(0.0, 1.0)
  tx = optax.adam(optax.exponential_decay(1e-2, STEPS, 0.01))

  def step(carry, k):
    params, opt = carry
    k_data, k_z = jax.random.split(k)
    real = data_mean + data_sd * jax.random.normal(k_data, (BATCH, 1, 1, 1))
    fake = g.apply(g_params, models.sample_prior(k_z, (BATCH, 1), 'gaussian'))

    def loss_fn(p):
      return losses.discriminator_loss(DISCRIMINATOR.apply(p, real),
                                       DISCRIMINATOR.apply(p, fake))

    grads = jax.grad(loss_fn)(params)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), None

  (d_params, _), _ = jax.lax.scan(step, (d_params, tx.init(d_params)),
                                  jax.random.split(key, STEPS))
  return d_params


@functools.lru_cache(maxsize=None)
def trained_discriminator(pair: str, seed: int = 0, start_from: str | None = None):
  """D trained to convergence against the fixed affine G of `pair` (cached across tests).

  Args:
    pair: a key of PAIRS.
    seed: for D's initialisation and the samples.
    start_from: start from the D trained on this pair instead of a fresh initialisation.
  """
  (mu_d, sd_d), (mu_g, sd_g) = PAIRS[pair]
  key = jax.random.key(seed)
  if start_from is None:
    d_params = DISCRIMINATOR.init(key, jnp.zeros((1, 1, 1, 1)))
  else:
    d_params = trained_discriminator(start_from, seed)
  _, g_params = affine_generator(mu_g, sd_g)
  return _train(d_params, g_params, mu_d, sd_d, jax.random.fold_in(key, 1))


def d_logits(d_params, x):
  return np.asarray(DISCRIMINATOR.apply(d_params, jnp.asarray(x, jnp.float32).reshape(-1, 1, 1,
                                                                                       1)),
                    np.float64)


def densities(pair):
  (mu_d, sd_d), (mu_g, sd_g) = PAIRS[pair]
  return normal_pdf(GRID, mu_d, sd_d), normal_pdf(GRID, mu_g, sd_g)


def value(p_data, p_g, logits):
  """V(G, D) = E_data log D + E_g log(1 - D), by quadrature, from D's logits (no log(0))."""
  log_d, log_1md = -np.logaddexp(0.0, -logits), -np.logaddexp(0.0, logits)
  return np.trapezoid(p_data * log_d + p_g * log_1md, GRID)


def optimal_logits(p_data, p_g):
  """logit D*(x) = log p_data(x) - log p_g(x) (Proposition 1)."""
  return np.log(np.maximum(p_data, 1e-300)) - np.log(np.maximum(p_g, 1e-300))


def jsd_quad(pair) -> float:
  """JSD(p_data || p_g) = KL(p_data || m) / 2 + KL(p_g || m) / 2, m the mixture, by scipy quad."""
  (mu_d, sd_d), (mu_g, sd_g) = PAIRS[pair]

  def kl_to_mixture(p, q):
    def f(x):
      a, b = p(x), q(x)
      return 0.0 if a == 0.0 else a * np.log(2.0 * a / (a + b))
    lo = min(mu_d - 12 * sd_d, mu_g - 12 * sd_g)
    hi = max(mu_d + 12 * sd_d, mu_g + 12 * sd_g)
    return integrate.quad(f, lo, hi, epsabs=1e-12, epsrel=1e-10, limit=200)[0]

  pd = lambda x: normal_pdf(x, mu_d, sd_d)
  pg = lambda x: normal_pdf(x, mu_g, sd_g)
  return 0.5 * kl_to_mixture(pd, pg) + 0.5 * kl_to_mixture(pg, pd)


def test_affine_generator_has_the_closed_form_distribution():
  g, params = affine_generator(4.25, 0.75)
  x = np.asarray(g.apply(params, models.sample_prior(jax.random.key(0), (200_000, 1),
                                                     'gaussian'))).ravel()
  assert abs(x.mean() - 4.25) < 0.01 and abs(x.std() - 0.75) < 0.01


@pytest.mark.parametrize('pair', ['shift', 'toy'])
def test_trained_discriminator_is_the_optimal_one(pair):
  """Proposition 1: D(x) -> p_data / (p_data + p_g) where both densities are non-negligible."""
  p_data, p_g = densities(pair)
  d_star = p_data / (p_data + p_g)
  mask = np.minimum(p_data, p_g) >= DENSITY_FLOOR
  d = 1.0 / (1.0 + np.exp(-d_logits(trained_discriminator(pair), GRID)))
  err = np.abs(d - d_star)[mask]
  assert err.max() < D_TOL, f'max |D - D*| = {err.max():.4f}'
  assert err.mean() < D_TOL / 3, f'mean |D - D*| = {err.mean():.4f}'
  # The check can fail: a D that learnt nothing (1/2 everywhere) is far outside the tolerance.
  assert np.abs(0.5 - d_star)[mask].max() > 3 * D_TOL


@pytest.mark.parametrize('pair', ['shift', 'toy'])
def test_max_value_is_minus_log4_plus_twice_jsd(pair):
  """Theorem 1: V(G, D*) = -log 4 + 2 JSD, and a trained D gets there from below."""
  p_data, p_g = densities(pair)
  v_star = value(p_data, p_g, optimal_logits(p_data, p_g))
  jsd = jsd_quad(pair)
  assert v_star == pytest.approx(-LOG4 + 2.0 * jsd, abs=1e-6)
  assert jsd > 0.01  # p_g != p_data: C(G) is strictly above its minimum.
  v_trained = value(p_data, p_g, d_logits(trained_discriminator(pair), GRID))
  assert v_trained <= v_star + 1e-6  # D* is the maximiser ...
  assert v_star - v_trained < V_TOL, f'V(D*) - V(D) = {v_star - v_trained:.5f}'  # ... reached.
  # D = 1/2 scores -log 4 whatever G is: far below V(D*), so the check above can fail.
  assert v_star - value(p_data, p_g, np.zeros_like(GRID)) > 10 * V_TOL


@pytest.mark.parametrize('pair', ['shift', 'toy'])
def test_optimal_discriminator_is_a_maximum(pair):
  """Perturbing D* in any direction (as a logit) lowers V: D* is the pointwise maximiser."""
  p_data, p_g = densities(pair)
  best = optimal_logits(p_data, p_g)
  v_star = value(p_data, p_g, best)
  for direction in (np.ones_like(GRID), np.sin(GRID), np.tanh(GRID - 4.0)):
    for eps in (0.3, -0.3, 0.05):
      assert value(p_data, p_g, best + eps * direction) < v_star


def test_equal_distributions_reach_minus_log4():
  """p_g = p_data: D* = 1/2, C(G) = -log 4 (the global minimum), and a trained D finds 1/2."""
  p_data, p_g = densities('equal')
  assert value(p_data, p_g, optimal_logits(p_data, p_g)) == pytest.approx(-LOG4, abs=1e-9)
  assert jsd_quad('equal') == pytest.approx(0.0, abs=1e-12)
  mask = p_data >= DENSITY_FLOOR
  # Start from the D that was optimal for the 'toy' G (far from 1/2), so D must unlearn it.
  start = 1.0 / (1.0 + np.exp(-d_logits(trained_discriminator('toy'), GRID)))
  assert np.abs(start - 0.5)[mask].max() > 3 * D_TOL
  logits = d_logits(trained_discriminator('equal', start_from='toy'), GRID)
  err = np.abs(1.0 / (1.0 + np.exp(-logits)) - 0.5)[mask]
  assert err.max() < D_TOL, f'max |D - 1/2| = {err.max():.4f}'
  v = value(p_data, p_g, logits)
  assert -LOG4 - V_TOL < v <= -LOG4 + 1e-9
  # Every unequal pair has a larger C(G): -log 4 is the minimum.
  for pair in ('shift', 'toy'):
    assert -LOG4 + 2.0 * jsd_quad(pair) > -LOG4 + 0.01
