"""Tests of gan_jax.parzen against a float64 NumPy reference."""

import math
import os

import chex
import jax
import numpy as np
import pytest
from scipy.special import logsumexp

from conftest import REAL_MNIST
from gan_jax import parzen

# Small blocks: every case streams several sample blocks, the last one partial (shifted
# back and masked), and pads the last chunk of x.
BLOCKS = dict(x_block=64, sample_block=96)
SIGMAS = np.array([0.05, 0.1, 0.2, 0.5, 1.0, 2.0])


def reference(x, samples, sigmas):
  """float64 Parzen log-likelihood [S, n], plain expansion in float64 (error ~1e-12)."""
  x = np.asarray(x, np.float64)
  mu = np.asarray(samples, np.float64)
  d2 = np.maximum((x * x).sum(1)[:, None] + (mu * mu).sum(1)[None, :] - 2 * x @ mu.T, 0.0)
  out = []
  for s in np.atleast_1d(sigmas):
    out.append(logsumexp(-d2 / (2 * s * s), axis=1) - math.log(len(mu))
               - x.shape[1] * math.log(s * math.sqrt(2 * math.pi)))
  return np.stack(out)


def assert_accurate(got, want):
  """Per example: within 1e-3 nats, or 1e-6 relative where |LL| > 1000."""
  chex.assert_equal_shape([got, want])
  assert np.all(np.isfinite(got))
  tol = np.maximum(1e-3, 1e-6 * np.abs(want))
  worst = np.max(np.abs(got - want) / tol)
  assert worst <= 1.0, f'error {worst:.2f}x the tolerance'


def clustered(rng, n, n_samples, d, spread, offset=0.0):
  """Points and samples around shared cluster centres: near neighbours dominate the sum."""
  centres = rng.random((20, d)) + offset
  x = centres[rng.integers(20, size=n)] + spread * rng.standard_normal((n, d))
  mu = centres[rng.integers(20, size=n_samples)] + spread * rng.standard_normal((n_samples, d))
  return x.astype(np.float32), mu.astype(np.float32)


@pytest.mark.parametrize('d, spread, offset', [(3, 0.05, 0.0), (64, 0.02, 0.0),
                                               (784, 0.1, 0.0), (784, 0.01, 0.0),
                                               (784, 0.01, 5.0), (64, 1.0, 0.0)])
def test_matches_float64_reference(d, spread, offset):
  rng = np.random.default_rng(d)
  x, mu = clustered(rng, 203, 517, d, spread, offset)  # Neither divides the block sizes.
  assert_accurate(parzen.log_likelihood(x, mu, SIGMAS, **BLOCKS), reference(x, mu, SIGMAS))


def test_uniform_data_default_blocks():
  rng = np.random.default_rng(1)
  x, mu = rng.random((300, 50), np.float32), rng.random((1100, 50), np.float32)
  assert_accurate(parzen.log_likelihood(x, mu, SIGMAS), reference(x, mu, SIGMAS))


def _mnist(split, n):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  images = tfds.as_numpy(tfds.load('mnist', split=f'{split}[:{n}]', batch_size=-1,
                                   data_dir=os.environ['TFDS_DATA_DIR']))['image']
  return (images.reshape(n, -1) / np.float32(255)).astype(np.float32)


def count_exact_rows(monkeypatch):
  """Counts the rows sent to the float64 fallback."""
  rows, exact = [], parzen._exact_rows

  def counting(x, *args):
    rows.append(len(x))
    return exact(x, *args)

  monkeypatch.setattr(parzen, '_exact_rows', counting)
  return rows


@pytest.mark.skipif(not REAL_MNIST, reason='needs TFDS_DATA_DIR with mnist')
def test_real_mnist(monkeypatch):
  # The hard case: x in [0, 1], d = 784, nearest squared distances ~20-40 against norms
  # ~100: a plain float32 expansion is ~5x over the bound at sigma = 0.1.
  x, mu = _mnist('test', 700), _mnist('train', 3000)
  sigmas = np.concatenate([SIGMAS, parzen.default_sigmas()])
  redone = count_exact_rows(monkeypatch)
  assert_accurate(parzen.log_likelihood(x, mu, sigmas, x_block=256, sample_block=1000),
                  reference(x, mu, sigmas))
  assert sum(redone) <= 0.01 * len(x)  # The fast path does (nearly) all the work.


def test_mode_collapse_uses_the_exact_fallback(monkeypatch):
  # Many samples in a tight clump around x: at small sigma dozens of streamed terms carry
  # weight and their float32 errors (~1e-5 each, x 200 at sigma = 0.05) add up; the risk
  # estimate must send those rows to the float64 path.
  rng = np.random.default_rng(8)
  x, mu = clustered(rng, 40, 600, 784, 0.01)
  redone = count_exact_rows(monkeypatch)
  assert_accurate(parzen.log_likelihood(x, mu, SIGMAS, **BLOCKS), reference(x, mu, SIGMAS))
  assert sum(redone) > 0


def test_sweep_equals_single_sigma_runs():
  rng = np.random.default_rng(2)
  x, mu = clustered(rng, 100, 300, 16, 0.1)
  sweep = parzen.log_likelihood(x, mu, SIGMAS, **BLOCKS)
  for k, s in enumerate(SIGMAS):
    # Equal up to float32 summation order (XLA vectorises the sigma axis differently).
    np.testing.assert_allclose(sweep[k], parzen.log_likelihood(x, mu, s, **BLOCKS)[0],
                               rtol=0, atol=1e-6)


def test_far_point_is_finite():
  rng = np.random.default_rng(3)
  mu = rng.random((200, 10), np.float32)
  x = np.concatenate([mu[:2] + 1e3, mu[:2] - 30.0]).astype(np.float32)
  got = parzen.log_likelihood(x, mu, SIGMAS, **BLOCKS)
  assert np.all(got < -1000)  # exp of these underflows in any precision.
  assert_accurate(got, reference(x, mu, SIGMAS))


def test_duplicates_single_sample_and_exact_hits():
  rng = np.random.default_rng(4)
  mu = np.repeat(rng.random((40, 5), np.float32), 3, axis=0)  # Every sample three times.
  x = np.concatenate([mu[:7], rng.random((30, 5), np.float32)])
  assert_accurate(parzen.log_likelihood(x, mu, SIGMAS, **BLOCKS), reference(x, mu, SIGMAS))
  one = mu[:1]
  got = parzen.log_likelihood(x, one, SIGMAS)
  d2 = ((x.astype(np.float64) - one) ** 2).sum(1)
  want = -d2 / (2 * SIGMAS[:, None] ** 2) - 5 * np.log(SIGMAS[:, None] * math.sqrt(2 * math.pi))
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_padding_contributes_nothing():
  # Same points, samples split so that the last block is almost all padding.
  rng = np.random.default_rng(5)
  x, mu = clustered(rng, 30, 97, 8, 0.2)
  a = parzen.log_likelihood(x, mu, SIGMAS, x_block=8, sample_block=96)  # 2 blocks, 1 real row.
  b = parzen.log_likelihood(x, mu, SIGMAS, x_block=64, sample_block=97)
  np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)
  assert_accurate(a, reference(x, mu, SIGMAS))


def test_multi_device_equals_single_device():
  devices = jax.local_devices()
  if len(devices) < 2:
    pytest.skip('needs several local devices (tests/conftest.py forces 4 CPU devices)')
  rng = np.random.default_rng(6)
  x, mu = clustered(rng, 203, 300, 32, 0.05)  # 203 does not divide over 4 devices.
  multi = parzen.log_likelihood(x, mu, SIGMAS, **BLOCKS)
  single = parzen.log_likelihood(x, mu, SIGMAS, devices=devices[:1], **BLOCKS)
  np.testing.assert_array_equal(multi, single)


def test_select_sigma_and_evaluate():
  rng = np.random.default_rng(7)
  test_x, mu = clustered(rng, 150, 400, 12, 0.15)
  valid_x, _ = clustered(rng, 60, 1, 12, 0.15)
  sigmas = parzen.default_sigmas()
  np.testing.assert_allclose(sigmas, np.logspace(-1, 0, 10))
  ref_curve = reference(valid_x, mu, sigmas).mean(1)
  best, curve = parzen.select_sigma(valid_x, mu, sigmas)
  np.testing.assert_allclose(curve, ref_curve, atol=1e-3)
  assert best == sigmas[np.argmax(ref_curve)]

  result = parzen.evaluate(test_x, valid_x, mu, sigmas)
  ll = reference(test_x, mu, best)[0]
  assert result.sigma == best
  np.testing.assert_allclose(result.mean_ll, ll.mean(), atol=1e-3)
  np.testing.assert_allclose(result.std_err, ll.std() / math.sqrt(len(ll)), rtol=1e-4)
  np.testing.assert_allclose(result.valid_ll, ref_curve, atol=1e-3)
  np.testing.assert_array_equal(result.sigmas, sigmas)
  assert (result.n_samples, result.n_valid, result.n_test) == (400, 60, 150)


_X = np.zeros((4, 3), np.float32)
_MU = np.ones((5, 3), np.float32)


@pytest.mark.parametrize('x, mu, sigmas, match', [
    (np.zeros((4, 2)), _MU, 0.1, 'dimension'),
    (np.zeros((4, 3, 1)), _MU, 0.1, '2-D'),
    (_X, np.ones(3), 0.1, '2-D'),
    (np.zeros((0, 3)), _MU, 0.1, 'empty'),
    (_X, np.zeros((0, 3)), 0.1, 'empty'),
    (_X, _MU, 0.0, 'sigma'),
    (_X, _MU, [0.1, -1.0], 'sigma'),
    (_X, _MU, [np.nan], 'sigma'),
    (_X, _MU, np.inf, 'sigma'),
    (_X, _MU, [], 'sigmas'),
    (_X, _MU, 1e-30, 'too small'),
    (np.where(np.eye(4, 3) > 0, np.nan, 0.0), _MU, 0.1, 'NaN'),
    (_X, np.full((5, 3), np.inf), 0.1, 'NaN or Inf'),
])
def test_bad_inputs(x, mu, sigmas, match):
  with pytest.raises(ValueError, match=match) as e:
    parzen.log_likelihood(x, mu, sigmas)
  assert '\n' not in str(e.value)


def test_bad_inputs_evaluate_and_blocks():
  with pytest.raises(ValueError, match='valid_x has dimension'):
    parzen.evaluate(_X, np.zeros((2, 4)), _MU, [0.1])
  with pytest.raises(ValueError, match='test_x'):
    parzen.evaluate(np.zeros(3), _X, _MU, [0.1])
  with pytest.raises(ValueError, match='sample_block'):
    parzen.log_likelihood(_X, _MU, 0.1, sample_block=0)
