"""Tests of gan_jax.metrics and gan_jax.neighbours against NumPy / SciPy references."""

import chex
import jax
import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist
from scipy.special import softmax

from gan_jax import metrics
from gan_jax import neighbours


def sqrtm_fid(mu1, cov1, mu2, cov2):
  """pytorch-fid's calculate_frechet_distance (scipy.linalg.sqrtm of C1 C2)."""
  covmean = scipy.linalg.sqrtm(cov1 @ cov2).real
  diff = mu1 - mu2
  return diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean)


def random_cov(rng, f, scale=1.0):
  a = rng.standard_normal((f, f))
  return scale * (a @ a.T / f + 0.5 * np.eye(f))


# ---------------------------------------------------------------------------------------- FID


def test_feature_statistics_are_float64_mean_and_ddof1_cov():
  x = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
  mu, cov = metrics.feature_statistics(x)
  assert mu.dtype == cov.dtype == np.float64
  np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(cov, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_frechet_matches_sqrtm_formula_on_well_conditioned_covariances(seed):
  rng = np.random.default_rng(seed)
  f = 40
  mu1, mu2 = rng.standard_normal(f), rng.standard_normal(f)
  cov1, cov2 = random_cov(rng, f), random_cov(rng, f, scale=3.0)
  want = sqrtm_fid(mu1, cov1, mu2, cov2)
  got = metrics.frechet_distance(mu1, cov1, mu2, cov2)
  assert abs(got - want) <= 1e-6 * abs(want)
  assert abs(metrics.frechet_distance(mu2, cov2, mu1, cov1) - want) <= 1e-6 * abs(want)


def test_frechet_of_diagonal_covariances_with_zero_variances_is_exact():
  rng = np.random.default_rng(3)
  a, b = rng.random(30), rng.random(30)
  a[:5], b[3:8] = 0.0, 0.0  # Zero-variance features, some in both.
  mu1, mu2 = rng.standard_normal(30), rng.standard_normal(30)
  want = np.sum((np.sqrt(a) - np.sqrt(b))**2) + np.sum((mu1 - mu2)**2)
  got = metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
  assert got == pytest.approx(want, rel=1e-12)


def test_frechet_of_commuting_rank_deficient_covariances_is_exact():
  rng = np.random.default_rng(4)
  q, _ = np.linalg.qr(rng.standard_normal((25, 25)))
  a, b = rng.random(25) * 10, rng.random(25)
  a[:10], b[5:12] = 0.0, 0.0
  cov1, cov2 = (q * a) @ q.T, (q * b) @ q.T
  want = np.sum((np.sqrt(a) - np.sqrt(b))**2)
  for got in (metrics.frechet_distance(np.zeros(25), cov1, np.zeros(25), cov2),
              metrics.frechet_distance(np.zeros(25), cov2, np.zeros(25), cov1)):
    assert got == pytest.approx(want, rel=1e-9)


def test_frechet_of_rank_one_covariances_is_exact():
  # C1 = u u^T, C2 = v v^T: tr (C1^1/2 C2 C1^1/2)^1/2 = |u.v|.
  rng = np.random.default_rng(5)
  u, v = rng.standard_normal(64), rng.standard_normal(64)
  want = u @ u + v @ v - 2 * abs(u @ v)
  got = metrics.frechet_distance(np.zeros(64), np.outer(u, u), np.zeros(64), np.outer(v, v))
  assert got == pytest.approx(want, rel=1e-9, abs=1e-9 * (u @ u + v @ v))


def rank_deficient_sets(rng):
  """Pairs of feature sets whose covariances are singular."""
  f = 48
  x = rng.standard_normal((30, f))  # N < F.
  y = rng.standard_normal((35, f)) @ random_cov(rng, f) + 0.3
  dup = rng.standard_normal((200, f))
  dup[:, 1] = dup[:, 0]  # A duplicated feature ...
  dup[:, 2] = 4.0  # ... and a constant one.
  dup2 = rng.standard_normal((300, f)) * 1.5
  dup2[:, 1] = dup2[:, 0]
  return [(x, y), (dup, dup2), (x, dup)]


def test_frechet_of_rank_deficient_covariances_is_finite_non_negative_and_symmetric():
  rng = np.random.default_rng(6)
  for a, b in rank_deficient_sets(rng):
    sa, sb = metrics.feature_statistics(a), metrics.feature_statistics(b)
    ab, ba = metrics.frechet_distance(*sa, *sb), metrics.frechet_distance(*sb, *sa)
    scale = np.trace(sa[1]) + np.trace(sb[1])
    assert np.isfinite(ab) and ab >= 0
    assert abs(ab - ba) <= 1e-9 * scale
    assert 0 <= metrics.frechet_distance(*sa, *sa) <= 1e-6 * scale


def test_fid_of_two_halves_is_small_and_of_another_distribution_large():
  rng = np.random.default_rng(7)
  mix = rng.standard_normal((16, 16))
  data = (rng.standard_normal((6000, 16)) @ mix).astype(np.float32)
  other = (rng.standard_normal((3000, 16)) @ (1.5 * mix) + 1.0).astype(np.float32)
  same = metrics.fid(data[:3000], data[3000:])
  different = metrics.fid(data[:3000], other)
  assert same < 0.02 * np.trace(np.cov(data, rowvar=False))  # Bias ~ F^2 / N.
  assert different > 100 * same


def test_fid_bad_input():
  with pytest.raises(ValueError, match=r'^FID needs at least 8 samples for 8-dimensional '
                     r'features, got 5: draw more samples$'):
    metrics.fid(np.zeros((20, 8)), np.zeros((5, 8)))
  with pytest.raises(ValueError, match='features_a has 8 features but features_b has 6'):
    metrics.fid(np.zeros((20, 8)), np.zeros((20, 6)))
  with pytest.raises(ValueError, match='flatten images first'):
    metrics.fid(np.zeros((20, 8, 1)), np.zeros((20, 8)))
  with pytest.raises(ValueError, match='at least 2 samples'):
    metrics.feature_statistics(np.zeros((1, 3)))
  with pytest.raises(ValueError, match='same feature extractor'):
    metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
  with pytest.raises(ValueError, match='mean .F. and covariance'):
    metrics.frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))


# ---------------------------------------------------------------------------------------- KID


def numpy_kid(a, b, idx_a, idx_b):
  """Unbiased MMD^2, cubic kernel, float64, per subset."""
  out = []
  for ia, ib in zip(idx_a, idx_b):
    x, y = a[ia].astype(np.float64), b[ib].astype(np.float64)
    m, f = len(x), x.shape[1]
    kxx, kyy, kxy = ((u @ v.T / f + 1)**3 for u, v in ((x, x), (y, y), (x, y)))
    out.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
               - 2 * kxy.mean())
  return np.array(out)


def test_kid_matches_numpy_unbiased_estimator_on_the_same_subsets():
  rng = np.random.default_rng(8)
  a = np.abs(rng.standard_normal((400, 32))).astype(np.float32)  # ReLU-like features.
  b = np.abs(rng.standard_normal((300, 32)) * 1.1 + 0.05).astype(np.float32)
  key = jax.random.key(0)
  idx_a, idx_b = metrics.kid_subset_indices(key, 400, 300, num_subsets=7, subset_size=150)
  assert idx_a.shape == idx_b.shape == (7, 150)
  for row in np.concatenate([idx_a, idx_b]):
    assert len(np.unique(row)) == 150  # Without replacement.
  assert idx_a.max() < 400 and idx_b.max() < 300
  want = numpy_kid(a, b, idx_a, idx_b)
  got = metrics.kid(a, b, key, num_subsets=7, subset_size=150)
  kernel_scale = ((np.abs(a).mean() ** 2 + 1) ** 3)  # Size of the sums that cancel.
  assert abs(got.mean - want.mean()) <= 1e-6 * kernel_scale
  assert abs(got.sd - want.std()) <= 1e-6 * kernel_scale
  assert got.mean > 2 * got.sd  # The distributions differ measurably.


def test_kid_is_near_zero_for_one_distribution_and_key_driven():
  rng = np.random.default_rng(9)
  x = rng.standard_normal((600, 16)).astype(np.float32)
  same = metrics.kid(x[:300], x[300:], jax.random.key(1), num_subsets=20, subset_size=200)
  other = metrics.kid(x[:300], x[300:] + 0.5, jax.random.key(1), num_subsets=20,
                      subset_size=200)
  assert abs(same.mean) < 3 * same.sd and other.mean > 20 * abs(same.mean) + 3 * other.sd
  again = metrics.kid(x[:300], x[300:], jax.random.key(1), num_subsets=20, subset_size=200)
  assert again == same
  assert metrics.kid(x[:300], x[300:], jax.random.key(2), num_subsets=20,
                     subset_size=200) != same


def test_kid_bad_input():
  x = np.zeros((50, 4), np.float32)
  with pytest.raises(ValueError, match=r'subset_size 45 is larger than features_b \(40 rows\)'):
    metrics.kid(x, x[:40], jax.random.key(0), subset_size=45, num_subsets=2)
  with pytest.raises(ValueError, match='features_a has 4 features but features_b has 3'):
    metrics.kid(x, x[:, :3], jax.random.key(0), subset_size=10)
  with pytest.raises(ValueError, match='subset_size >= 2'):
    metrics.kid(x, x, jax.random.key(0), subset_size=1)


# ----------------------------------------------------------------- precision, recall, ...


def numpy_prdc(real, fake, k):
  """Naeem et al.'s compute_prdc, with scipy's cdist."""
  real_r = np.sort(cdist(real, real), axis=1)[:, k]  # Column 0 is the point itself.
  fake_r = np.sort(cdist(fake, fake), axis=1)[:, k]
  d = cdist(real, fake)
  return neighbours.PRDC(precision=(d < real_r[:, None]).any(0).mean(),
                         recall=(d < fake_r[None, :]).any(1).mean(),
                         density=(d < real_r[:, None]).sum(0).mean() / k,
                         coverage=(d.min(1) < real_r).mean())


@pytest.fixture
def small_blocks(monkeypatch):
  """Blocks of 64 x 96: every case streams several blocks, the last ones padded."""
  monkeypatch.setattr(neighbours, 'ROW_BLOCK', 64)
  monkeypatch.setattr(neighbours, 'COL_BLOCK', 96)


def assert_prdc_close(got, want, atol):
  for name in ('precision', 'recall', 'density', 'coverage'):
    assert getattr(got, name) == pytest.approx(getattr(want, name), abs=atol), name


@pytest.mark.parametrize('k', [1, 5])
def test_prdc_matches_brute_force_on_integer_data_with_ties(small_blocks, k):
  # Small integers: float32 distances are exact, so even ties (many here) must agree.
  rng = np.random.default_rng(10 + k)
  half = rng.integers(-3, 4, (150, 12))
  real = np.concatenate([half, -half]).astype(np.float32)  # Mean 0: centring stays exact.
  fake = rng.integers(-3, 4, (257, 12)).astype(np.float32)
  assert_prdc_close(neighbours.prdc(real, fake, k=k), numpy_prdc(real, fake, k), atol=1e-12)


def test_prdc_matches_brute_force_on_gaussian_data(small_blocks):
  rng = np.random.default_rng(12)
  real = rng.standard_normal((333, 24)).astype(np.float32) * 3 + 10
  fake = (rng.standard_normal((271, 24)) * 1.3 + 0.4).astype(np.float32) * 3 + 10
  # A float32 rounding may flip a comparison that sits within ~1e-6 of a radius.
  assert_prdc_close(neighbours.prdc(real, fake), numpy_prdc(real, fake, 5), atol=1.5 / 271)


def test_prdc_of_a_set_against_itself(small_blocks):
  x = np.random.default_rng(13).standard_normal((300, 10)).astype(np.float32)
  assert neighbours.prdc(x, x) == neighbours.PRDC(1.0, 1.0, 1.0, 1.0)


def test_prdc_kernels_trace_once_per_shape(small_blocks, monkeypatch):
  for name in ('_kth_nearest_sq', '_real_fake_pass'):
    fn = getattr(neighbours, name)
    static = ('k',) if name == '_kth_nearest_sq' else ()
    monkeypatch.setattr(neighbours, name, jax.jit(chex.assert_max_traces(fn.__wrapped__, n=1),
                                                  static_argnames=static))
  rng = np.random.default_rng(14)
  # 200 and 197 points pad to the same blocks: one trace serves both.
  for n in (200, 197, 200):
    neighbours.prdc(rng.standard_normal((n, 8)), rng.standard_normal((n, 8)))


def test_prdc_bad_input():
  x = np.zeros((10, 3))
  with pytest.raises(ValueError, match='need more than 5 points, but fake_features has 5'):
    neighbours.prdc(x, x[:5])
  with pytest.raises(ValueError, match='need more than 10 points, but real_features has 10'):
    neighbours.prdc(x, x, k=10)
  with pytest.raises(ValueError, match='real_features has 3 features but fake_features has 2'):
    neighbours.prdc(x, x[:, :2])
  with pytest.raises(ValueError, match='k must be >= 1'):
    neighbours.prdc(x, x, k=0)
  with pytest.raises(ValueError, match='NaN or Inf'):
    neighbours.prdc(np.full((10, 3), np.nan), x)


# --------------------------------------------------------------------------- classifier score


def numpy_classifier_score(logits, splits):
  """Salimans et al.'s inception_score on softmax(logits)."""
  preds = softmax(logits.astype(np.float64), axis=1)
  n = len(preds) // splits
  scores = []
  for i in range(splits):
    part = preds[i * n:(i + 1) * n]
    kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
    scores.append(np.exp(kl.sum(1).mean()))
  return np.mean(scores), np.std(scores)


def test_classifier_score_matches_numpy():
  logits = np.random.default_rng(15).standard_normal((1003, 10)).astype(np.float32) * 3
  got = metrics.classifier_score(logits, num_splits=10)
  want = numpy_classifier_score(logits, 10)
  np.testing.assert_allclose(got, want, rtol=1e-10)


def test_classifier_score_extremes():
  one_hot = 100.0 * np.tile(np.eye(10), (50, 1))  # Confident, every class equally often.
  assert metrics.classifier_score(one_hot, num_splits=5) == pytest.approx((10.0, 0.0))
  single = 100.0 * np.tile(np.eye(10)[3], (500, 1))
  assert metrics.classifier_score(single, num_splits=5) == pytest.approx((1.0, 0.0))


def test_classifier_score_bad_input():
  with pytest.raises(ValueError, match=r'num_splits must be in \[1, 4\]'):
    metrics.classifier_score(np.zeros((4, 10)), num_splits=5)


# ------------------------------------------------------------------------------ memorisation


def test_nearest_matches_brute_force(small_blocks):
  rng = np.random.default_rng(16)
  train = rng.random((500, 30), np.float32)
  queries = rng.random((150, 30), np.float32)
  idx, dist = neighbours.nearest(queries, train)
  d = cdist(queries.astype(np.float64), train.astype(np.float64))
  np.testing.assert_array_equal(idx, d.argmin(1))
  np.testing.assert_allclose(dist, d.min(1), rtol=1e-12)


def test_memorisation_of_a_copier(small_blocks):
  rng = np.random.default_rng(17)
  train, test = rng.random((400, 50), np.float32), rng.random((200, 50), np.float32)
  picks = rng.choice(400, 150, replace=False)
  result = neighbours.memorisation(train[picks], train, test)
  assert result.fraction_closer == 1.0 and result.copies == 150
  assert result.median_ratio == 0.0
  np.testing.assert_array_equal(result.sample_nearest, picks)
  # Near-copies: all closer than held-out data, none an exact copy.
  near = neighbours.memorisation(train[picks] + 1e-3, train, test)
  assert near.fraction_closer == 1.0 and near.copies == 0


def test_memorisation_of_held_out_data_is_near_the_percentile(small_blocks):
  rng = np.random.default_rng(18)
  data = rng.standard_normal((4000, 20)).astype(np.float32)
  train, test, samples = data[:2000], data[2000:3000], data[3000:]
  result = neighbours.memorisation(samples, train, test, percentile=10.0)
  # Samples and test points are exchangeable, so fraction_closer is ~0.1 with a standard
  # deviation of about sqrt(0.1 * 0.9 * (1/1000 + 1/1000)) = 0.013: allow 4 of them.
  assert abs(result.fraction_closer - 0.1) < 0.054
  assert 0.9 < result.median_ratio < 1.1 and result.copies == 0
  assert result.threshold == pytest.approx(np.percentile(result.test_distances, 10.0))


def test_memorisation_bad_input():
  x = np.zeros((10, 4))
  with pytest.raises(ValueError, match='flatten images first'):
    neighbours.memorisation(np.zeros((10, 2, 2)), x, x)
  with pytest.raises(ValueError, match='test has 3 features but train has 4'):
    neighbours.memorisation(x, x, x[:, :3])
  with pytest.raises(ValueError, match=r'percentile must be in \(0, 100\)'):
    neighbours.memorisation(x, x, x, percentile=100)


# ----------------------------------------------------------------------------------- summary


def test_summary_is_a_flat_dict_of_the_metrics():
  rng = np.random.default_rng(19)
  feats, test_feats = rng.standard_normal((120, 6)), rng.standard_normal((100, 6))
  logits = rng.standard_normal((120, 10))
  pixels, train_pix, test_pix = (rng.random((n, 4, 4, 1)) for n in (120, 200, 100))
  settings = metrics.SummarySettings(kid_subsets=3, kid_subset_size=50, num_splits=4)
  got = metrics.summary(jax.random.key(0), sample_features=feats, sample_logits=logits,
                        test_features=test_feats, sample_pixels=pixels, train_pixels=train_pix,
                        test_pixels=test_pix, settings=settings)
  assert all(isinstance(v, float) for v in got.values())
  assert got['fid'] == metrics.fid(feats, test_feats)
  assert got['precision'] == neighbours.prdc(test_feats, feats).precision
  assert got['classifier_score_mean'] == metrics.classifier_score(logits, 4).mean
  assert got['kid_mean'] == metrics.kid(feats, test_feats, jax.random.key(0), num_subsets=3,
                                        subset_size=50).mean
  memo = neighbours.memorisation(pixels.reshape(120, -1), train_pix.reshape(200, -1),
                                 test_pix.reshape(100, -1))
  assert got['memorisation_fraction_closer'] == memo.fraction_closer
