"""Tests of gan_jax.ais (and gan_jax.hmc) against closed forms and quadrature."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial
from scipy import stats
from scipy.special import logsumexp

from gan_jax import ais
from gan_jax import hmc

SQRT3 = math.sqrt(3.0)


def linear(params, z):
  w, b = params
  return z @ w.T + b


def tanh_mlp(params, z):
  a, c, w, b = params
  return jnp.tanh(z @ a + c) @ w.T + b


def linear_generator(rng, d, z_dim, scale):
  w = (scale * rng.standard_normal((d, z_dim))).astype(np.float32)
  b = rng.standard_normal(d).astype(np.float32)
  return Partial(linear, (jnp.asarray(w), jnp.asarray(b))), w, b


def gaussian_exact(x, w, b, obs_std):
  """log N(x; b, W W^T + obs_std^2 I) in float64."""
  cov = w.astype(np.float64) @ w.T.astype(np.float64) + obs_std**2 * np.eye(len(b))
  return stats.multivariate_normal(b.astype(np.float64), cov).logpdf(x)


def uniform_quadrature(fn, x, z_dim, obs_std, nodes=200):
  """log p(x) under z ~ U(-sqrt 3, sqrt 3)^z_dim by Gauss-Legendre (z_dim <= 2), float64."""
  t, wt = np.polynomial.legendre.leggauss(nodes)
  grids = np.meshgrid(*[SQRT3 * t] * z_dim, indexing='ij')
  z = np.stack([g.ravel() for g in grids], 1)
  log_wt = sum(np.log(g.ravel()) for g in np.meshgrid(*[wt * SQRT3] * z_dim, indexing='ij'))
  g = np.asarray(fn(jnp.asarray(z, jnp.float32)), np.float64)  # [M, D]
  d = x.shape[1]
  sq = (x**2).sum(1)[:, None] + (g**2).sum(1)[None] - 2 * x @ g.T
  log_lik = -sq / (2 * obs_std**2) - d * math.log(obs_std * math.sqrt(2 * math.pi))
  return logsumexp(log_lik + log_wt[None], axis=1) - z_dim * math.log(2 * SQRT3)


def far_points(rng, x, w, distance):
  """x moved by `distance` orthogonally to the columns of w (outside G's range)."""
  d, z_dim = w.shape
  q, _ = np.linalg.qr(np.concatenate([w, rng.standard_normal((d, d - z_dim))], 1))
  direction = q[:, z_dim:] @ rng.standard_normal((d - z_dim, len(x)))
  return (x + distance * (direction / np.linalg.norm(direction, axis=0)).T).astype(np.float32)


def test_linear_gaussian_matches_closed_form():
  rng = np.random.default_rng(0)
  d, z_dim, obs_std = 20, 5, 1.0
  gen, w, b = linear_generator(rng, d, z_dim, scale=0.5)
  near = (rng.standard_normal((12, z_dim)) @ w.T + b + obs_std * rng.standard_normal((12, d)))
  x = np.concatenate([near, far_points(rng, near[:8], w, 15.0)]).astype(np.float32)
  exact = gaussian_exact(x, w, b, obs_std)
  assert np.all(exact[12:] < exact[:8] - 80)  # The far points are far.
  got = ais.log_likelihood(gen, x, jax.random.key(0), z_dim=z_dim, prior='gaussian',
                           obs_std=obs_std, num_temps=1000)
  chex.assert_shape(got, (20,))
  err = got - exact
  assert np.mean(np.abs(err)) < 0.1, err
  assert np.mean(np.abs(err[12:])) < 0.1, err


def test_importance_sampling_with_many_chains_is_unbiased():
  """num_temps=1 is importance sampling from the prior: E[w] = p(x) exactly."""
  rng = np.random.default_rng(1)
  gen, w, b = linear_generator(rng, 6, 2, scale=0.5)
  x = (rng.standard_normal((4, 2)) @ w.T + b + rng.standard_normal((4, 6))).astype(np.float32)
  got = ais.log_likelihood(gen, x, jax.random.key(1), z_dim=2, prior='gaussian', obs_std=1.0,
                           num_temps=1, num_chains=8192)
  np.testing.assert_allclose(got, gaussian_exact(x, w, b, 1.0), atol=0.02)


def test_hmc_samples_the_posterior():
  """HMC at beta = 1 leaves the linear-Gaussian posterior invariant (mean and covariance)."""
  rng = np.random.default_rng(2)
  gen, w, b = linear_generator(rng, 8, 3, scale=1.0)
  x = jnp.asarray(rng.standard_normal(8), jnp.float32)

  def ll_and_grad(u):
    total = lambda u: (lambda ll: (ll.sum(), ll))(-0.5 * jnp.sum((x - gen(u))**2, axis=1))
    (_, ll), grad = jax.value_and_grad(total, has_aux=True)(u)
    return ll, grad

  precision = np.eye(3) + w.T.astype(np.float64) @ w
  cov = np.linalg.inv(precision)
  mean = cov @ w.T @ (np.asarray(x) - b)
  start = jnp.asarray(mean + rng.standard_normal((8000, 3)) @ np.linalg.cholesky(cov).T,
                      jnp.float32)

  @jax.jit
  def run(key):
    def body(chains, k):
      chains, accept = hmc.move(ll_and_grad, chains, 1.0, 0.07, k, 7, jitter=0.5)
      return chains, accept.mean()
    chains, accept = jax.lax.scan(body, hmc.start(ll_and_grad, start), jax.random.split(key, 30))
    return chains.u, accept.mean()

  u, accept = run(jax.random.key(2))
  u = np.asarray(u, np.float64)
  assert 0.5 < accept < 1.0
  se = np.sqrt(np.diag(cov) / len(u))
  assert np.all(np.abs(u.mean(0) - mean) < 4 * se)
  np.testing.assert_allclose(np.cov(u.T), cov, atol=0.06 * np.abs(cov).max())


def test_uniform_reparametrisation_density_is_exact():
  u = jnp.linspace(-5.0, 5.0, 1001)
  dz_du = jax.vmap(jax.grad(lambda v: ais.latent(v, 'uniform')))(u)
  # log N(u; 0, 1) - log |dz/du| is the log-density of z(u): exactly uniform's.
  log_pz = jax.scipy.stats.norm.logpdf(u) - jnp.log(dz_du)
  np.testing.assert_allclose(log_pz, -math.log(2 * SQRT3), atol=2e-6)
  d = 7
  per_example = log_pz[:d * 100].reshape(100, d).sum(1)
  np.testing.assert_allclose(per_example, -d * math.log(2 * SQRT3), rtol=1e-6)
  z = ais.latent(jax.random.normal(jax.random.key(3), (20_000,)), 'uniform')
  assert float(jnp.max(jnp.abs(z))) <= SQRT3
  assert stats.kstest(np.asarray(z), stats.uniform(-SQRT3, 2 * SQRT3).cdf).pvalue > 0.01


@pytest.mark.parametrize('z_dim', [1, 2])
def test_uniform_prior_linear_matches_quadrature(z_dim):
  rng = np.random.default_rng(4 + z_dim)
  d, obs_std = 10, 0.5
  gen, w, b = linear_generator(rng, d, z_dim, scale=0.5)
  z = rng.uniform(-SQRT3, SQRT3, (10, z_dim))
  near = z @ w.T + b + obs_std * rng.standard_normal((10, d))
  x = np.concatenate([near, far_points(rng, near[:4], w, 5.0)]).astype(np.float32)
  exact = uniform_quadrature(gen, x.astype(np.float64), z_dim, obs_std)
  got = ais.log_likelihood(gen, x, jax.random.key(4), z_dim=z_dim, prior='uniform',
                           obs_std=obs_std, num_temps=500)
  assert np.mean(np.abs(got - exact)) < 0.1, got - exact


def small_mlp(rng, d=10, z_dim=2, hidden=16):
  params = (rng.standard_normal((z_dim, hidden)).astype(np.float32),
            (0.5 * rng.standard_normal(hidden)).astype(np.float32),
            (rng.standard_normal((d, hidden)) / math.sqrt(hidden)).astype(np.float32),
            rng.standard_normal(d).astype(np.float32))
  return Partial(tanh_mlp, tuple(jnp.asarray(p) for p in params))


def test_bdmc_sandwich_and_gap_shrinks():
  gen = small_mlp(np.random.default_rng(5))
  obs_std, n = 0.3, 12
  gaps = []
  for num_temps in (10, 100, 1000):
    r = ais.bdmc(gen, jax.random.key(5), num_examples=n, z_dim=2, prior='uniform',
                 obs_std=obs_std, num_chains=16, num_temps=num_temps, leapfrog_steps=10)
    exact = uniform_quadrature(gen, r.x.astype(np.float64), 2, obs_std)
    # Per example E[lower] <= exact <= E[upper]; the means over n examples may cross by
    # Monte-Carlo noise, here at most 3 standard errors of the mean difference.
    for bound, sign in ((r.lower_ll, 1), (r.upper_ll, -1)):
      diff = sign * (bound - exact)
      assert diff.mean() <= 3 * diff.std() / math.sqrt(n) + 1e-3, (num_temps, bound - exact)
    assert r.gap == pytest.approx(r.upper - r.lower)
    gaps.append(r.gap)
  # The bounds hold in expectation: at 1000 temperatures both are within noise of the exact
  # value, and the measured gap may come out slightly negative.
  assert gaps[0] > gaps[1] > abs(gaps[2]), gaps
  assert abs(gaps[2]) < 0.2, gaps


def count_traces():
  """A generator that counts how often JAX traces it, and the counter."""
  rng = np.random.default_rng(6)
  traces = []

  def traced(params, z):
    traces.append(1)
    return linear(params, z)

  make = lambda: Partial(traced, (jnp.asarray(rng.standard_normal((5, 2)), jnp.float32),
                                  jnp.asarray(rng.standard_normal(5), jnp.float32)))
  return make, traces


def test_traces_once_per_shape():
  make, traces = count_traces()
  args = dict(z_dim=2, prior='uniform', num_chains=4, num_temps=5, leapfrog_steps=2)
  x = np.random.default_rng(7).standard_normal((6, 5)).astype(np.float32)
  ais.log_likelihood(make(), x, jax.random.key(0), obs_std=0.5, **args)
  first = len(traces)
  assert first > 0
  # New params, data, key and obs_std of the same shapes: no new trace, no compilation.
  compiles = []
  listener = lambda event, duration, **kw: compiles.append(event) if 'compile' in event else None
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    ais.log_likelihood(make(), x + 1, jax.random.key(1), obs_std=0.7, **args)
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert len(traces) == first
  assert not compiles, compiles


def test_devices_split_matches_one_device():
  assert jax.local_device_count() == 4  # conftest.py
  rng = np.random.default_rng(8)
  gen = small_mlp(rng)
  x = rng.standard_normal((6, 10)).astype(np.float32)  # 6 images: padded to 8 on 4 devices.
  args = dict(z_dim=2, prior='gaussian', obs_std=0.5, num_chains=4, num_temps=20)
  one = ais.log_likelihood(gen, x, jax.random.key(9), devices=jax.local_devices()[:1], **args)
  four = ais.log_likelihood(gen, x, jax.random.key(9), **args)
  small_batches = ais.log_likelihood(gen, x, jax.random.key(9), batch_size=3, **args)
  np.testing.assert_allclose(four, one, rtol=1e-5)
  np.testing.assert_allclose(small_batches, one, rtol=1e-5)
  assert np.all(np.isfinite(one))


def test_evaluate_chooses_obs_std_and_reports():
  rng = np.random.default_rng(10)
  gen, w, b = linear_generator(rng, 10, 2, scale=0.5)
  data = lambda n: (rng.standard_normal((n, 2)) @ w.T + b
                    + 0.3 * rng.standard_normal((n, 10))).astype(np.float32)
  settings = ais.AISSettings(z_dim=2, prior='gaussian', num_chains=8, num_temps=50,
                             obs_stds=(0.05, 0.3, 2.0), batch_size=4, bdmc_examples=3)
  calls = []
  result = ais.evaluate(gen, data(5), data(6), jax.random.key(10), settings,
                        progress=lambda done, total: calls.append((done, total)))
  assert result.obs_std == 0.3
  assert result.valid_ll.shape == (3,) and int(np.argmax(result.valid_ll)) == 1
  chex.assert_shape(result.ll, (5,))
  assert result.mean_ll == pytest.approx(result.ll.mean())
  assert result.std_err == pytest.approx(result.ll.std() / math.sqrt(5))
  assert 0 < result.accept_rate <= 1
  assert result.bdmc is not None and result.bdmc.lower_ll.shape == (3,)
  total = 6 * 3 + 5 + 2 * 3
  assert calls[-1] == (total, total)
  assert [c[0] for c in calls] == sorted(c[0] for c in calls)
  fixed = ais.evaluate(gen, data(5), None, jax.random.key(10),
                       ais.AISSettings(z_dim=2, prior='gaussian', num_chains=8, num_temps=50,
                                       obs_std=0.3, batch_size=4, bdmc_examples=0))
  assert fixed.obs_std == 0.3 and fixed.bdmc is None and fixed.valid_ll.size == 0


def bad_calls():
  gen = Partial(linear, (jnp.ones((5, 2)), jnp.zeros(5)))
  x = np.zeros((3, 5), np.float32)
  ok = dict(z_dim=2, prior='gaussian', obs_std=0.5, num_chains=2, num_temps=2,
            leapfrog_steps=1)
  ll = lambda x=x, **kw: ais.log_likelihood(gen, x, jax.random.key(0), **{**ok, **kw})
  return {
      'obs_std': (lambda: ll(obs_std=0.0), 'obs_std'),
      'negative obs_std': (lambda: ll(obs_std=-1.0), 'obs_std'),
      'num_chains': (lambda: ll(num_chains=0), 'num_chains'),
      'num_temps': (lambda: ll(num_temps=0), 'num_temps'),
      'leapfrog_steps': (lambda: ll(leapfrog_steps=0), 'leapfrog_steps'),
      'prior': (lambda: ll(prior='cauchy'), "'gaussian', 'uniform'"),
      'x dimension': (lambda: ll(x=np.zeros((3, 4), np.float32)), 'makes 5'),
      'x rank': (lambda: ll(x=np.zeros(5, np.float32)), 'x must be'),
      'bdmc examples': (lambda: ais.bdmc(gen, jax.random.key(0), num_examples=0, **ok),
                        'num_examples'),
      'bdmc obs_std': (lambda: ais.bdmc(gen, jax.random.key(0), num_examples=2,
                                        **{**ok, 'obs_std': 0.0}), 'obs_std'),
      'settings obs_std': (lambda: ais.AISSettings(z_dim=2, obs_std=-0.1), 'obs_std'),
      'settings grid': (lambda: ais.AISSettings(z_dim=2, obs_stds=(0.1, 0.0)), 'obs_stds'),
      'settings empty grid': (lambda: ais.AISSettings(z_dim=2, obs_stds=()), 'obs_stds'),
      'settings chains': (lambda: ais.AISSettings(z_dim=2, num_chains=0), 'num_chains'),
      'settings temps': (lambda: ais.AISSettings(z_dim=2, num_temps=0), 'num_temps'),
      'settings leapfrog': (lambda: ais.AISSettings(z_dim=2, leapfrog_steps=0),
                            'leapfrog_steps'),
      'settings prior': (lambda: ais.AISSettings(z_dim=2, prior='normal'), 'prior'),
      'settings bdmc': (lambda: ais.AISSettings(z_dim=2, bdmc_examples=-1), 'bdmc_examples'),
      'evaluate test_x': (lambda: ais.evaluate(
          gen, np.zeros((2, 6), np.float32), None, jax.random.key(0),
          ais.AISSettings(z_dim=2, obs_std=0.5)), 'test_x has 6'),
  }


@pytest.mark.parametrize('case', sorted(bad_calls()))
def test_bad_input_is_one_line_value_error(case):
  call, words = bad_calls()[case]
  with pytest.raises(ValueError) as info:
    call()
  message = str(info.value)
  assert words in message and '\n' not in message, message
