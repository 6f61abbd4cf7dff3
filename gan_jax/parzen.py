"""Gaussian Parzen-window log-likelihood, as used to evaluate GANs in Goodfellow et al. 2014.

For generated samples mu_1..mu_N in R^d and a test point x:

  log p(x) = logsumexp_j(-||x - mu_j||^2 / (2 sigma^2)) - log N - d log(sigma sqrt(2 pi)).

A JAX port of goodfeli/adversarial's ``parzen_ll.py`` that never builds the [n, N, d]
difference tensor: squared distances come block by block from a matmul, are shared by every
sigma of the sweep, and are reduced with a streaming (online) logsumexp; x is split over the
local devices (gan_jax.parallel).

Accuracy: the target is 1e-3 nats per example (1e-6 relative where |LL| > 1000). In float32
the expansion ||x||^2 + ||mu||^2 - 2 x.mu carries a small absolute error, and at small sigma
the nearest samples dominate the logsumexp and multiply it by 1 / (2 sigma^2). Hence:
  * the two nearest samples of each point are tracked during the stream and their distances
    recomputed exactly (float64, difference form), so the result is anchored on the exact
    nearest distance;
  * the anchor's own streamed error would shift every other term alike (a bias that does not
    average out), so it is measured (exact e_i1 on the same float32 vectors) and removed;
  * x and samples are centred on the samples' mean, and ||x||^2, common to a row, is left out
    of the streamed quantity (smaller magnitudes, one rounding less);
  * what remains matters only when several terms of similar weight sit close around x at
    small sigma (mode-collapsed samples): a conservative per-row error estimate sends such
    rows to an exact float64 path.
All of this is O(n d) host work next to the O(n N d) stream. Matmuls use HIGHEST precision so
that accelerators (TF32 / bf16 passes by default) keep full float32. The errors measured for
each fix are in results/README.md ("Parzen kernel accuracy").
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import neighbours
from gan_jax import parallel

_HIGHEST = jax.lax.Precision.HIGHEST


def default_sigmas() -> np.ndarray:
  """The sigma grid of the original evaluation: numpy.logspace(-1, 0, 10)."""
  return np.logspace(-1, 0, 10)


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


def _check_2d(name: str, a) -> np.ndarray:
  """`a` as a float32 [n, d] array, or neighbours.as_matrix's one-line ValueError."""
  return neighbours.as_matrix(name, a).astype(np.float32, copy=False)


def _check_sigmas(sigmas) -> np.ndarray:
  s = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
  if s.ndim != 1 or s.size == 0:
    raise ValueError(f'sigmas must be a non-empty scalar or 1-D sequence, got shape {s.shape}.')
  if not np.all(np.isfinite(s)) or np.any(s <= 0):
    raise ValueError(f'every sigma must be finite and > 0, got {s.tolist()}.')
  if np.any(0.5 / np.square(s) > np.finfo(np.float32).max):
    raise ValueError(f'sigma too small for float32 (1/(2 sigma^2) overflows): {s.min()}.')
  return s


def _check_pair(x, samples, name: str = 'x'):
  x = _check_2d(name, x)
  samples = _check_2d('samples', samples)
  if x.shape[1] != samples.shape[1]:
    raise ValueError(f'{name} has dimension {x.shape[1]} but samples have {samples.shape[1]}; '
                     'flatten both the same way.')
  return x, samples


# Streamed e_j errors measured on MNIST, uniform, Gaussian and clustered data (d = 3 to
# 2304) reach 1-9 x eps (|mu'|^2 + 2 |x'| |mu'|); this scale is used as their bound.
_ERR_SCALE = 8.0
_GROUP = 32  # Columns per group in the two-nearest search (sample blocks are multiples).


def _block_top2(e):
  """Two smallest entries per row of e [bx, bs], with their column indices.

  A full argmin over [bx, bs] is a slow variadic reduction on CPU (costing ~2/3 of the
  matmul), so we take plain mins over groups of _GROUP columns, pick the two best groups
  per row, and search only those (a gather of 2 * _GROUP entries per row).
  """
  bx, bs = e.shape
  ng = bs // _GROUP
  eg = e.reshape(bx, ng, _GROUP)
  gmin = jnp.min(eg, axis=2)  # [bx, ng]
  g1 = jnp.argmin(gmin, axis=1)
  gmin_wo = jnp.where(jnp.arange(ng)[None, :] == g1[:, None], jnp.inf, gmin)
  g2 = jnp.argmin(gmin_wo, axis=1)
  pick = jnp.take_along_axis(eg, jnp.stack([g1, g2], axis=1)[:, :, None], axis=1)
  a, b = pick[:, 0], pick[:, 1]  # [bx, _GROUP]: the best group, the second-best group.
  col = jnp.arange(_GROUP)[None, :]
  a1 = jnp.argmin(a, axis=1)
  v1 = jnp.min(a, axis=1)
  a_wo = jnp.where(col == a1[:, None], jnp.inf, a)
  a2 = jnp.argmin(a_wo, axis=1)
  va2 = jnp.min(a_wo, axis=1)
  vb1 = jnp.min(gmin_wo, axis=1)  # inf when there is no second group.
  b1 = jnp.argmin(b, axis=1)
  second_in_a = va2 <= vb1
  v2 = jnp.where(second_in_a, va2, vb1)
  i2 = jnp.where(second_in_a, g1 * _GROUP + a2, g2 * _GROUP + b1)
  return v1, g1 * _GROUP + a1, v2, i2


def _x_block_ll(xb, samples, center, coef, n_samples: int, sample_block: int):
  """Streams all sample blocks past one block of points.

  Args:
    xb: [bx, d] points (uncentred).
    samples: [N', d] samples (uncentred); rows >= n_samples are padding (N' >= block).
    center: [d] common centre.
    coef: [S] 1 / (2 sigma^2).
    n_samples: number of real samples.
    sample_block: rows per sample block (a multiple of _GROUP, <= N').

  Returns:
    i1, i2: [bx] indices of the two nearest samples (by the streamed distances).
    m1: [bx] streamed e_i1, where e_j = ||mu'_j||^2 - 2 x'.mu'_j (' = centred).
    gap: [bx] streamed e_i2 - e_i1 (inf when there is a single sample).
    s: [S, bx] sum_j exp(-(e_j - e_i1) coef), all streamed.
  """
  xm2 = -2.0 * (xb - center)  # Scaling by -2 is exact.
  col = jnp.arange(sample_block)
  inf = jnp.float32(jnp.inf)

  def step(carry, nominal):
    m1, i1, m2, i2, s = carry
    # The last block is shifted back to end at the last row (no padded copy of the
    # samples); the rows it shares with the previous block are masked out.
    start = jnp.minimum(nominal, samples.shape[0] - sample_block)
    mu = jax.lax.dynamic_slice_in_dim(samples, start, sample_block) - center
    sq = jnp.sum(mu * mu, axis=1)
    own = (start + col >= nominal) & (start + col < n_samples)
    sq = jnp.where(own, sq, inf)  # Masked: e = inf, exp(-inf) = 0.
    # e_j = ||mu_j||^2 - 2 x.mu_j = d_j - ||x||^2 (||x||^2 cancels in the logsumexp).
    e = sq[None, :] + jnp.dot(xm2, mu.T, precision=_HIGHEST)
    b1, j1, b2, j2 = _block_top2(e)
    j1, j2 = j1 + start, j2 + start
    # Merge the running and the block top-2.
    first = b1 < m1
    n1 = jnp.minimum(b1, m1)
    k1 = jnp.where(first, j1, i1)
    n2 = jnp.where(first, jnp.minimum(m1, b2), jnp.minimum(m2, b1))
    k2 = jnp.where(first, jnp.where(m1 <= b2, i1, j2), jnp.where(m2 <= b1, i2, j1))
    # Online logsumexp for all sigmas: the running max is -n1 * coef for every sigma.
    # Layout [bx, S, bs] keeps a row of e in cache across the sigmas.
    s = s * jnp.exp((n1 - m1)[:, None] * coef[None, :]) + jnp.sum(
        jnp.exp((n1[:, None] - e)[:, None, :] * coef[None, :, None]), axis=2)
    return (n1, k1, n2, k2, s), None

  bx = xb.shape[0]
  init = (jnp.full((bx,), inf), jnp.zeros((bx,), jnp.int32), jnp.full((bx,), inf),
          jnp.zeros((bx,), jnp.int32), jnp.zeros((bx, coef.shape[0]), jnp.float32))
  starts = jnp.arange(0, n_samples, sample_block, dtype=jnp.int32)
  (m1, i1, m2, i2, s), _ = jax.lax.scan(step, init, starts)
  return i1, i2, m1, m2 - m1, s.T


@functools.lru_cache(maxsize=32)
def _compiled(n_samples: int, sample_block: int, devices: tuple):
  """pmapped kernel: x sharded over devices, everything else replicated."""

  def per_device(xb, samples, center, coef):
    return _x_block_ll(xb, samples, center, coef, n_samples, sample_block)

  return parallel.over_devices(per_device, in_axes=(0, None, None, None), devices=devices)


def _layout(n: int, n_samples: int, ndev: int, x_block: int, sample_block: int):
  """Balanced block sizes (x block per device, sample block).

  Balanced (and multiples of 8 / _GROUP) so that odd sizes waste little work. XLA's
  matmul computes rows independently (for blocks of >= 2 rows), so the per-device x
  block changing with the device count leaves results bit-identical.
  """
  bs = _round_up(-(-n_samples // -(-n_samples // sample_block)), _GROUP)
  per_dev = -(-n // ndev)
  bx = _round_up(-(-per_dev // -(-per_dev // x_block)), 8)
  return bx, bs


def _rowdot(a, b):
  return np.einsum('ij,ij->i', a, b)


def _exact_rows(x, samples, sig) -> np.ndarray:
  """float64 log-likelihoods [S, len(x)] (the fallback for the few rows that need it)."""
  centre = samples.mean(0, dtype=np.float64)
  out = np.empty((len(sig), len(x)))
  coef = (0.5 / np.square(sig))[:, None, None]
  for lo in range(0, len(x), 512):
    xc = x[lo:lo + 512].astype(np.float64) - centre
    xn = _rowdot(xc, xc)
    m, acc = np.full(len(xc), np.inf), np.zeros((len(sig), len(xc)))
    for so in range(0, len(samples), 1024):
      mc = samples[so:so + 1024].astype(np.float64) - centre
      # (mc @ xc.T).T: OpenBLAS is ~10x slower on the transposed form for few rows of x.
      d2 = np.maximum(xn[:, None] + _rowdot(mc, mc)[None, :] - 2 * (mc @ xc.T).T, 0.0)
      new_m = np.minimum(m, d2.min(1))
      acc = acc * np.exp(-(m - new_m) * coef[:, :, 0]) + np.exp(
          -(d2 - new_m[:, None])[None] * coef).sum(2)
      m = new_m
    out[:, lo:lo + 512] = -m * coef[:, :, 0] + np.log(acc)
  return out


def _stream(x, samples, sig, x_block, sample_block, devices):
  """Runs the device kernel over x in chunks of one block per device.

  Returns:
    (i1, i2, m1, gap [n], s [S, n], centre [d]): see _x_block_ll.
  """
  (n, d), n_samples, ndev = x.shape, samples.shape[0], len(devices)
  bx, bs = _layout(n, n_samples, ndev, x_block, sample_block)
  centre = samples.mean(0, dtype=np.float64).astype(np.float32)
  if n_samples < bs:  # Only tiny sample sets are padded (to one block).
    samples = np.concatenate([samples, np.zeros((bs - n_samples, d), np.float32)])
  replicated = NamedSharding(Mesh(np.array(devices), (parallel.AXIS,)), P())
  on_dev = [jax.device_put(a, replicated)
            for a in (samples, centre, (0.5 / np.square(sig)).astype(np.float32))]
  kernel = _compiled(n_samples, bs, devices)
  chunk = ndev * bx  # Host and device copies of x stay chunk-sized.
  outs = []
  for lo in range(0, n, chunk):
    xc = x[lo:lo + chunk]
    if len(xc) < chunk:
      xc = np.concatenate([xc, np.zeros((chunk - len(xc), d), np.float32)])
    outs.append(kernel(xc.reshape(ndev, bx, d), *on_dev))  # Dispatch is asynchronous.
  # Per chunk [ndev, bx] and [ndev, S, bx] -> per point.
  i1, i2, m1, gap = (np.concatenate([np.asarray(o[k]).reshape(-1) for o in outs])[:n]
                     for k in range(4))
  s = np.concatenate([np.asarray(o[4], np.float64).transpose(1, 0, 2).reshape(len(sig), -1)
                      for o in outs], axis=1)[:, :n]
  i1, i2 = np.minimum(i1, n_samples - 1), np.minimum(i2, n_samples - 1)  # Defensive.
  return i1, i2, m1.astype(np.float64), gap.astype(np.float64), s, centre


def _dominant_terms(x_in, samples_in, x, samples, centre, i1, i2):
  """float64 facts about the two streamed-nearest samples of every point.

  Chunked, so no float64 copy of the inputs is made.

  Returns:
    d1, d2: exact squared distances to samples i1, i2 (the caller's values).
    e1: exact e_i1 on the kernel's float32 centred vectors (to measure the streamed one).
    xnorm: ||x'|| (centred), for the error estimate.
  """
  n = len(x)
  d1, d2, e1, xnorm = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
  for lo in range(0, n, 512):
    sl = slice(lo, min(lo + 512, n))
    xc = x_in[sl].astype(np.float64)
    diff = xc - samples_in[i1[sl]]
    d1[sl] = _rowdot(diff, diff)
    diff = xc - samples_in[i2[sl]]
    d2[sl] = _rowdot(diff, diff)
    xs = (x[sl] - centre).astype(np.float64)
    ms = (samples[i1[sl]] - centre).astype(np.float64)
    e1[sl] = _rowdot(ms, ms - 2 * xs)
    xnorm[sl] = np.sqrt(_rowdot(xs, xs))
  return d1, d2, e1, xnorm


def log_likelihood(x, samples, sigmas, *, x_block: int = 1024, sample_block: int = 1024,
                   devices: Sequence[jax.Device] | None = None) -> np.ndarray:
  """Parzen-window log-likelihood of every point of x for every sigma, in one pass.

  Args:
    x: [n, d] points to score.
    samples: [N, d] generated samples (the kernel centres).
    sigmas: scalar or [S] bandwidths.
    x_block: points per block per device; with sample_block it bounds the memory
      (~ x_block * sample_block * 4 bytes of distances, plus one copy of the samples).
    sample_block: samples per streamed block (balanced, rounded up to a multiple of 32).
    devices: devices to shard x over (default: all local devices).

  Returns:
    float64 numpy array [S, n] of log-likelihoods in nats.
  """
  x_in, samples_in = np.asarray(x), np.asarray(samples)
  x, samples = _check_pair(x_in, samples_in)
  sig = _check_sigmas(sigmas)
  if x_block < 1 or sample_block < 1:
    raise ValueError(f'x_block and sample_block must be >= 1, got {x_block}, {sample_block}.')
  devices = tuple(jax.local_devices() if devices is None else devices)
  (n, d), n_samples = x.shape, samples.shape[0]
  i1, i2, m1, gap, s, centre = _stream(x, samples, sig, x_block, sample_block, devices)
  d1, d2, e1, xnorm = _dominant_terms(x_in, samples_in, x, samples, centre, i1, i2)

  coef = (0.5 / np.square(sig))[:, None]
  has2 = np.isfinite(gap)  # False when there is a single sample.
  t2_streamed = np.where(has2, np.exp(-np.where(has2, gap, 0.0) * coef), 0.0)
  # Terms 3..N relative to the streamed nearest, with the streamed nearest's own error
  # (shared by all of them) taken out.
  shift = (m1 - e1) * coef
  rest = np.maximum(s - 1.0 - t2_streamed, 0.0) * np.exp(-np.clip(shift, -50.0, 50.0))
  # Anchor on the exactly nearer of the two, so that no exponent is positive.
  d2 = np.where(has2, d2, np.inf)
  near = np.minimum(d1, d2)
  w1 = np.exp(-(d1 - near) * coef)  # 1 unless the stream misordered a near tie.
  other = np.where(d1 <= d2, np.exp(-(d2 - near) * coef), w1)
  total = 1.0 + other + w1 * rest
  const = -math.log(n_samples) - d * np.log(sig * math.sqrt(2 * math.pi))
  ll = -near * coef + np.log(total) + const[:, None]

  # Left: the streamed terms' own errors, independent from term to term and each below
  # ~_ERR_SCALE eps (|mu'|^2 + 2 |x'| |mu'|). Their weighted sum has a typical size
  # <= coef * delta * sqrt(sum w^2), and sum w^2 <= w_2 rho (rho: weight fraction of the
  # streamed terms, each lighter than the second nearest). Rows where that reaches half
  # the target, or whose streamed anchor is off by > 1 nat (x very far from the samples
  # in float32 terms), are redone exactly.
  mnorm = math.sqrt(max(float(_rowdot(c, c).max()) for c in (
      samples[lo:lo + 4096] - centre for lo in range(0, n_samples, 4096))))
  delta = _ERR_SCALE * 2.0**-24 * (mnorm**2 + 2 * xnorm * mnorm)
  rho = w1 * rest / total
  risk = coef * delta * np.sqrt(np.minimum(other, 1.0) / total * rho)
  at_risk = (risk > 0.5 * np.maximum(1e-3, 1e-6 * np.abs(ll))) | (np.abs(shift) > 1.0)
  redo = np.nonzero(np.any(at_risk, axis=0))[0]
  if redo.size:
    ll[:, redo] = _exact_rows(x_in[redo], samples_in, sig) + const[:, None]
  return ll


def select_sigma(valid_x, samples, sigmas=None, **kwargs) -> tuple[float, np.ndarray]:
  """Chooses the sigma with the highest mean validation log-likelihood.

  Returns:
    (best sigma, [S] mean validation log-likelihood per sigma).
  """
  sig = _check_sigmas(default_sigmas() if sigmas is None else sigmas)
  curve = log_likelihood(valid_x, samples, sig, **kwargs).mean(axis=1)
  return float(sig[int(np.argmax(curve))]), curve


@dataclasses.dataclass(frozen=True)
class ParzenResult:
  """Outcome of the full protocol (validation sweep, then test at the chosen sigma)."""
  mean_ll: float
  std_err: float  # std(ddof=0) / sqrt(n_test), as parzen_ll.py.
  sigma: float
  sigmas: np.ndarray
  valid_ll: np.ndarray  # Mean validation log-likelihood per sigma.
  n_samples: int
  n_valid: int
  n_test: int


def evaluate(test_x, valid_x, samples, sigmas=None, **kwargs) -> ParzenResult:
  """Runs the protocol of goodfeli/adversarial parzen_ll.py.

  Args:
    test_x: [n_test, d] test points.
    valid_x: [n_valid, d] validation points used to choose sigma.
    samples: [N, d] generated samples.
    sigmas: candidate bandwidths (default: default_sigmas()).
    **kwargs: forwarded to log_likelihood (block sizes, devices).

  Returns:
    A ParzenResult.
  """
  sig = _check_sigmas(default_sigmas() if sigmas is None else sigmas)
  _check_pair(test_x, samples, 'test_x')  # Clear errors before any work.
  _check_pair(valid_x, samples, 'valid_x')
  best, curve = select_sigma(valid_x, samples, sig, **kwargs)
  ll = log_likelihood(test_x, samples, best, **kwargs)[0]
  return ParzenResult(mean_ll=float(ll.mean()), std_err=float(ll.std() / math.sqrt(len(ll))),
                      sigma=best, sigmas=sig, valid_ll=curve, n_samples=len(samples),
                      n_valid=len(valid_x), n_test=len(test_x))
