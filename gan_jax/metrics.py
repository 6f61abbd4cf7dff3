"""Sample-quality metrics on classifier features: FID, KID, classifier score, and a summary.

Pure functions of arrays: features [N, F] (e.g. a classifier's penultimate layer) or logits
[N, C]; nothing here knows of files, configs or which classifier made them. The
nearest-neighbour measures (precision, recall, density, coverage, memorisation) are in
gan_jax.neighbours.

  * FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to two feature sets,
    with float64 statistics and the covariance's ddof = 1, as the TTUR / pytorch-fid code. The
    matrix square root is taken through symmetric eigendecompositions, not scipy's sqrtm.
  * KID (Binkowski et al. 2018): the unbiased MMD^2 with the kernel k(x, y) = (x.y / F + 1)^3,
    mean and standard deviation (ddof 0) over random subsets, each set subsampled without
    replacement to the same size, as torch-fidelity (defaults 100 subsets of 1,000).
  * Classifier score: the Inception Score formula of Salimans et al. 2016,
    exp(E_x KL(p(y|x) || p(y))), with p(y|x) the classifier's softmax, mean and standard deviation
    (ddof 0) over splits of N // num_splits points (the remainder is dropped), as their code.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import log_softmax
from scipy.special import logsumexp

from gan_jax import neighbours

_HIGHEST = jax.lax.Precision.HIGHEST
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class Estimate(NamedTuple):
  """A mean and standard deviation (ddof 0) over repeated estimates (subsets or splits)."""
  mean: float
  sd: float


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean [F] and covariance [F, F] (ddof 1) of features [N, F], in float64 (N >= 2).

  Any N >= 2 gives the (then rank-deficient) sample covariance; `fid` asks for N >= F.
  """
  x = neighbours.as_matrix('features', features)
  if len(x) < 2:
    raise ValueError(f'A covariance needs at least 2 samples, got {len(x)}: draw more samples.')
  mu = x.mean(axis=0, dtype=np.float64)
  centred = x.astype(np.float64) - mu
  return mu, centred.T @ centred / (len(x) - 1)


def _check_statistics(mu, cov, name: str) -> tuple[np.ndarray, np.ndarray]:
  mu, cov = np.asarray(mu, np.float64), np.asarray(cov, np.float64)
  if mu.ndim != 1 or cov.shape != (mu.size, mu.size):
    raise ValueError(f'{name}: need a mean [F] and covariance [F, F], got shapes {mu.shape} and '
                     f'{cov.shape}.')
  if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
    raise ValueError(f'{name}: the mean or covariance contains NaN or Inf.')
  return mu, (cov + cov.T) / 2  # Symmetric exactly, as eigh assumes.


def _denoise(eigenvalues: np.ndarray) -> np.ndarray:
  """Symmetric eigenvalues with those inside eigh's rounding (F eps |largest|) set to 0.

  Rounding leaves a zero eigenvalue at about +-eps |largest|; its square root, ~1e-8 of the
  largest's, would not be negligible, so exact rank deficiencies would come out ~1e-8 wrong.
  A true eigenvalue that small is indistinguishable from rounding anyway.
  """
  tol = eigenvalues.size * np.finfo(np.float64).eps * np.max(np.abs(eigenvalues), initial=0.0)
  return np.where(eigenvalues > tol, eigenvalues, 0.0)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
  """The symmetric PSD square root; negative (and rounding-level) eigenvalues taken as 0."""
  eigenvalues, vectors = np.linalg.eigh(cov)
  return (vectors * np.sqrt(_denoise(eigenvalues))) @ vectors.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2), in float64.

  tr (C1^1/2 C2 C1^1/2)^1/2 equals tr (C1 C2)^1/2 of the usual formula (pytorch-fid), but is
  the trace of the root of a symmetric PSD matrix M: the sum of the square roots of M's
  eigenvalues. So no complex parts and no sqrtm iteration arise, and ill-conditioned or
  rank-deficient covariances (fewer samples than features, duplicated or constant features) stay
  exact up to rounding: eigenvalues that rounding makes negative, or leaves at rounding level
  where they should be 0, are taken as 0 (see _denoise). The result is clipped to >= 0 (a
  squared distance; rounding can make it -1e-12).
  """
  mu1, cov1 = _check_statistics(mu1, cov1, 'first distribution')
  mu2, cov2 = _check_statistics(mu2, cov2, 'second distribution')
  if mu1.size != mu2.size:
    raise ValueError(f'The distributions have {mu1.size} and {mu2.size} features: use the same '
                     'feature extractor for both.')
  root1 = _psd_sqrt(cov1)
  m = root1 @ cov2 @ root1
  tr_sqrt = np.sum(np.sqrt(_denoise(np.linalg.eigvalsh((m + m.T) / 2))))
  diff = mu1 - mu2
  return max(float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt), 0.0)


def fid(features_a, features_b) -> float:
  """Frechet distance between Gaussians fitted to two feature sets [N_a, F] and [N_b, F].

  Each set needs at least F samples: with fewer the covariance is rank-deficient and the FID
  estimate is dominated by its bias.
  """
  a = neighbours.as_matrix('features_a', features_a)
  b = neighbours.as_matrix('features_b', features_b)
  neighbours.check_same_dim('features_a', a, 'features_b', b)
  f = a.shape[1]
  for x in (a, b):
    if len(x) < f:
      raise ValueError(f'FID needs at least {f} samples for {f}-dimensional features, '
                       f'got {len(x)}: draw more samples')
  return frechet_distance(*feature_statistics(a), *feature_statistics(b))


@functools.partial(jax.jit, static_argnames=('n_a', 'n_b', 'num_subsets', 'subset_size'))
def _subset_indices(key, n_a: int, n_b: int, num_subsets: int, subset_size: int):
  key_a, key_b = jax.random.split(key)

  def draw(keys, n):
    return jax.vmap(lambda k: jax.random.choice(k, n, (subset_size,), replace=False))(keys)

  return (draw(jax.random.split(key_a, num_subsets), n_a),
          draw(jax.random.split(key_b, num_subsets), n_b))


def kid_subset_indices(key, n_a: int, n_b: int, *, num_subsets: int = KID_SUBSETS,
                       subset_size: int = KID_SUBSET_SIZE) -> tuple[np.ndarray, np.ndarray]:
  """The rows of each set that `kid` uses: two int arrays [num_subsets, subset_size].

  Each subset is drawn without replacement, independently of the others, from its own key
  (a split of `key`), so the subsets do not depend on how the work is batched.
  """
  return tuple(np.asarray(i) for i in _subset_indices(key, n_a, n_b, num_subsets, subset_size))


@jax.jit
def _kid_row_sums(a, b, idx_a, idx_b):
  """Per subset, the row sums of K_aa, K_bb (diagonals left out) and K_ab: [S, 3, m] float32.

  Rows of m terms are summed here; the m rows are summed on the host in float64, which keeps
  the rounding of the large kernel sums well below the MMD^2 they cancel down to.
  """
  inv_dim = 1.0 / a.shape[1]

  def one(idx):
    x, y = a[idx[0]], b[idx[1]]
    off_diagonal = ~jnp.eye(x.shape[0], dtype=bool)

    def kernel(u, v):
      return (jnp.dot(u, v.T, precision=_HIGHEST) * inv_dim + 1.0) ** 3

    return jnp.stack([jnp.sum(jnp.where(off_diagonal, kernel(x, x), 0.0), axis=1),
                      jnp.sum(jnp.where(off_diagonal, kernel(y, y), 0.0), axis=1),
                      jnp.sum(kernel(x, y), axis=1)])

  return jax.lax.map(one, (idx_a, idx_b))


def kid(features_a, features_b, key, *, num_subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE) -> Estimate:
  """Kernel Inception Distance (Binkowski et al. 2018) between two feature sets.

  For each of num_subsets subsets (subset_size rows of each set, drawn without replacement by
  `kid_subset_indices(key, ...)`), the unbiased estimate of MMD^2 with the cubic polynomial
  kernel k(x, y) = (x.y / F + 1)^3:
    sum_{i != j} k(a_i, a_j) / (m (m - 1)) + sum_{i != j} k(b_i, b_j) / (m (m - 1))
    - 2 sum_{i, j} k(a_i, b_j) / m^2.
  It can be slightly negative when the sets match.

  Returns:
    Estimate(mean, sd) over the subsets.
  """
  a = neighbours.as_matrix('features_a', features_a)
  b = neighbours.as_matrix('features_b', features_b)
  neighbours.check_same_dim('features_a', a, 'features_b', b)
  if num_subsets < 1 or subset_size < 2:
    raise ValueError(f'KID needs num_subsets >= 1 and subset_size >= 2, got {num_subsets} and '
                     f'{subset_size}.')
  for name, x in (('features_a', a), ('features_b', b)):
    if subset_size > len(x):
      raise ValueError(f'KID subset_size {subset_size} is larger than {name} ({len(x)} rows): '
                       'lower subset_size or pass more samples.')
  idx_a, idx_b = _subset_indices(key, len(a), len(b), num_subsets, subset_size)
  sums = np.asarray(_kid_row_sums(a.astype(np.float32), b.astype(np.float32), idx_a, idx_b),
                    np.float64).sum(axis=2)
  m = subset_size
  mmd2 = (sums[:, 0] + sums[:, 1]) / (m * (m - 1)) - 2.0 * sums[:, 2] / (m * m)
  return Estimate(float(mmd2.mean()), float(mmd2.std()))


def classifier_score(logits, num_splits: int = 10) -> Estimate:
  """exp(E_x KL(p(y|x) || p(y))) (the Inception Score formula, Salimans et al. 2016).

  p(y|x) = softmax(logits), p(y) its mean over a split; computed in float64 from log-softmax (so
  that confident predictions cost no precision). Ranges from 1 (every x gets the same
  prediction) to C (confident predictions spread evenly over the C classes).

  Args:
    logits: [N, C] classifier logits of samples.
    num_splits: the splits of N // num_splits points each (the remainder is dropped).

  Returns:
    Estimate(mean, sd) over the splits.
  """
  logits = neighbours.as_matrix('logits', logits).astype(np.float64)
  if not 1 <= num_splits <= len(logits):
    raise ValueError(f'num_splits must be in [1, {len(logits)}] (the number of samples), got '
                     f'{num_splits}.')
  size = len(logits) // num_splits
  log_p = log_softmax(logits[:size * num_splits], axis=1).reshape(num_splits, size, -1)
  # log p(y) from the log-probabilities: finite even for classes whose every p underflows to 0.
  log_marginal = logsumexp(log_p, axis=1, keepdims=True) - np.log(size)
  kl = np.sum(np.exp(log_p) * (log_p - log_marginal), axis=2).mean(axis=1)
  scores = np.exp(kl)
  return Estimate(float(scores.mean()), float(scores.std()))


@dataclasses.dataclass(frozen=True)
class SummarySettings:
  """The knobs of `summary`, with the references' defaults."""
  nearest_k: int = neighbours.NEAREST_K
  kid_subsets: int = KID_SUBSETS
  kid_subset_size: int = KID_SUBSET_SIZE
  num_splits: int = 10
  percentile: float = 1.0


def summary(key, *, sample_features, sample_logits, test_features, sample_pixels, train_pixels,
            test_pixels, settings: SummarySettings = SummarySettings()) -> dict[str, float]:
  """Every metric of samples against real data, as a flat dict of floats.

  The test split is the real data of FID, KID and precision / recall / density / coverage;
  pixels (images [N, ...], flattened here) are for memorisation, with the training split as
  the reference and the test split as the held-out data.
  """
  sample_pixels, train_pixels, test_pixels = (np.reshape(p, (len(p), -1)) for p in
                                              (sample_pixels, train_pixels, test_pixels))
  fid_value = fid(sample_features, test_features)
  kid_estimate = kid(sample_features, test_features, key, num_subsets=settings.kid_subsets,
                     subset_size=settings.kid_subset_size)
  nn = neighbours.prdc(test_features, sample_features, k=settings.nearest_k)
  score = classifier_score(sample_logits, settings.num_splits)
  memo = neighbours.memorisation(sample_pixels, train_pixels, test_pixels,
                                 percentile=settings.percentile)
  return {'fid': fid_value,
          'kid_mean': kid_estimate.mean, 'kid_sd': kid_estimate.sd,
          'precision': nn.precision, 'recall': nn.recall,
          'density': nn.density, 'coverage': nn.coverage,
          'classifier_score_mean': score.mean, 'classifier_score_sd': score.sd,
          'memorisation_fraction_closer': memo.fraction_closer,
          'memorisation_threshold': memo.threshold,
          'memorisation_median_ratio': memo.median_ratio,
          'memorisation_copies': float(memo.copies)}
