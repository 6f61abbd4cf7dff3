"""Nearest-neighbour measures of samples: precision, recall, density, coverage and memorisation.

Precision and recall are those of Kynkaanniemi et al. 2019 ("Improved precision and recall metric
for assessing generative models"), density and coverage those of Naeem et al. 2020 ("Reliable
fidelity and diversity metrics for generative models"), all four as in Naeem et al.'s reference
code (clovaai/generative-evaluation-prdc). Conventions followed:
  * Euclidean distances between feature vectors;
  * a point's radius is the distance to its k-th nearest neighbour in its own set, the point
    itself excluded (a duplicate of it counts as a neighbour at distance 0);
  * k = 5 for all four, the value Naeem et al. use (Kynkaanniemi et al. used k = 3);
  * "inside a ball" is strictly closer than its radius.
Then, with real points r_i (radius R_i) and fake points f_j (radius F_j):
  precision = fraction of f_j inside at least one real ball;
  recall    = fraction of r_i inside at least one fake ball;
  density   = mean over f_j of the number of real balls holding f_j, divided by k;
  coverage  = fraction of r_i whose nearest fake point lies inside r_i's own ball.
For a set scored against itself precision, recall and coverage are 1 (each point is at distance
0 from itself, inside its own ball) as long as no radius is 0, and density is exactly 1 when no
two distances from a point to its neighbours tie: the strict ball of r_i then holds r_i and its
k - 1 nearer neighbours, k points, so the counts sum to k N. Ties at a radius lower it. (Exactly
1 here too because the radius pass and the real x fake pass compute a distance the same way,
bit for bit, as tested on CPU.)

Memorisation compares each sample's distance to its nearest training example with the same
distance for held-out test examples (see `memorisation`).

No distance matrix is ever built whole: blocks of at most 1024 x 2048 squared distances (8 MB)
come from a float32 matmul, ||x||^2 + ||y||^2 - 2 x.y on data centred on the reference set's
mean (smaller norms, smaller rounding), at HIGHEST precision so that accelerators do not drop
to TF32 / bf16 passes, and are reduced as they stream by: a running k smallest, counts, a
running minimum. Each kernel is jitted and compiled once per padded shape.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

_HIGHEST = jax.lax.Precision.HIGHEST
ROW_BLOCK = 1024  # Points per block of rows ...
COL_BLOCK = 2048  # ... and of columns: each block of distances is at most 8 MB.
NEAREST_K = 5  # Naeem et al.'s k for precision, recall, density and coverage.


def as_matrix(name: str, a) -> np.ndarray:
  """`a` as a 2-D [n, d] real, finite NumPy array (its own dtype), or a one-line ValueError."""
  a = np.asarray(a)
  if a.ndim != 2:
    raise ValueError(f'{name} must be a 2-D [n, d] array (flatten images first), '
                     f'got shape {a.shape}.')
  if a.shape[0] == 0 or a.shape[1] == 0:
    raise ValueError(f'{name} is empty (shape {a.shape}); pass at least one row and one feature.')
  if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
    raise ValueError(f'{name} must be a real numeric array, got dtype {a.dtype}.')
  if not np.all(np.isfinite(a)):
    raise ValueError(f'{name} contains NaN or Inf; remove or fix those rows first.')
  return a


def check_same_dim(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
  """A one-line ValueError unless the matrices a and b have as many columns."""
  if a.shape[1] != b.shape[1]:
    raise ValueError(f'{name_a} has {a.shape[1]} features but {name_b} has {b.shape[1]}: '
                     'describe both sets with the same feature extractor (or flattening).')


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


def _blocked(a: np.ndarray, centre: np.ndarray, target: int) -> np.ndarray:
  """a - centre as float32 [num_blocks, block, d], zero-padded; blocks balanced, multiples of 8."""
  n = len(a)
  block = _round_up(-(-n // -(-n // target)), 8)
  num_blocks = -(-n // block)
  out = np.zeros((num_blocks * block, a.shape[1]), np.float32)
  out[:n] = a
  out[:n] -= centre
  return out.reshape(num_blocks, block, a.shape[1])


def _pad_blocks(v: np.ndarray, like: np.ndarray, fill: float) -> np.ndarray:
  """Per-point values [n] padded with `fill` and laid out as the blocks of `like`."""
  out = np.full(like.shape[0] * like.shape[1], fill, np.float32)
  out[:len(v)] = v
  return out.reshape(like.shape[:2])


def _sq_norms(blocks):
  return jnp.sum(blocks * blocks, axis=-1)


def _sq_dists(xb, x_sq, yb, y_sq):
  """Squared distances [bx, by] between two blocks of points, from one matmul."""
  cross = jnp.dot(xb, yb.T, precision=_HIGHEST)
  return jnp.maximum(x_sq[:, None] + y_sq[None, :] - 2.0 * cross, 0.0)


@functools.partial(jax.jit, static_argnames='k')
def _kth_nearest_sq(rows, cols, n, k: int):
  """Squared distance of every point to its k-th nearest other point of the same set.

  Args:
    rows, cols: the same n points, blocked [nr, br, d] and [nc, bc, d] (zero padding past n).
    n: number of real points (traced: one compilation serves every n of the same padding).
    k: which neighbour.

  Returns:
    [nr * br] squared radii (garbage on padding rows).
  """
  nr, br = rows.shape[:2]
  nc, bc = cols.shape[:2]
  col_sq = _sq_norms(cols)
  col_idx = jnp.arange(nc * bc).reshape(nc, bc)
  row_idx = jnp.arange(nr * br).reshape(nr, br)

  def row_block(args):
    xb, xi = args
    x_sq = _sq_norms(xb)

    def step(best, col):
      yb, y_sq, yi = col
      d = _sq_dists(xb, x_sq, yb, y_sq)
      d = jnp.where((yi[None, :] == xi[:, None]) | (yi[None, :] >= n), jnp.inf, d)
      # The k smallest so far, ascending (top_k is much cheaper than a sort on CPU).
      return -jax.lax.top_k(-jnp.concatenate([best, d], axis=1), k)[0], None

    best, _ = jax.lax.scan(step, jnp.full((br, k), jnp.inf), (cols, col_sq, col_idx))
    return best[:, k - 1]

  return jax.lax.map(row_block, (rows, row_idx)).reshape(-1)


@jax.jit
def _real_fake_pass(real, real_r2, fake, fake_r2):
  """One pass over the real x fake distances.

  Args:
    real: [nr, br, d] real points; real_r2: [nr, br] their squared radii (-inf on padding).
    fake: [nf, bf, d] fake points; fake_r2: [nf, bf] their squared radii (-inf on padding).

  Returns:
    counts: [nf * bf] int32, for each fake point the number of real balls holding it;
    in_fake: [nr * br] bool, whether each real point is inside some fake ball;
    nearest: [nr * br] squared distance of each real point to its nearest fake point.
  """
  fake_sq = _sq_norms(fake)
  fake_mask = jnp.where(jnp.isfinite(fake_r2), 0.0, jnp.inf)  # +inf on padding columns.

  def row_block(counts, args):
    xb, r2 = args
    x_sq = _sq_norms(xb)

    def step(carry, col):
      in_fake, nearest = carry
      yb, y_sq, s2, mask = col
      d = _sq_dists(xb, x_sq, yb, y_sq)
      block_counts = jnp.sum(d < r2[:, None], axis=0, dtype=jnp.int32)
      in_fake = in_fake | jnp.any(d < s2[None, :], axis=1)
      nearest = jnp.minimum(nearest, jnp.min(d + mask[None, :], axis=1))
      return (in_fake, nearest), block_counts

    init = (jnp.zeros(xb.shape[0], bool), jnp.full(xb.shape[0], jnp.inf))
    (in_fake, nearest), block_counts = jax.lax.scan(step, init, (fake, fake_sq, fake_r2,
                                                                 fake_mask))
    return counts + block_counts.reshape(-1), (in_fake, nearest)

  counts = jnp.zeros(fake.shape[0] * fake.shape[1], jnp.int32)
  counts, (in_fake, nearest) = jax.lax.scan(row_block, counts, (real, real_r2))
  return counts, in_fake.reshape(-1), nearest.reshape(-1)


def _radii_sq(points: np.ndarray, centre: np.ndarray, k: int):
  """(squared k-NN radii [n] float32, the points as row blocks, as column blocks)."""
  rows = _blocked(points, centre, ROW_BLOCK)
  cols = _blocked(points, centre, COL_BLOCK)
  r2 = np.asarray(_kth_nearest_sq(rows, cols, np.int32(len(points)), k))[:len(points)]
  return r2, rows, cols


@dataclasses.dataclass(frozen=True)
class PRDC:
  """Precision, recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020)."""
  precision: float
  recall: float
  density: float
  coverage: float


def prdc(real_features, fake_features, *, k: int = NEAREST_K) -> PRDC:
  """Precision, recall, density and coverage of fake points against real ones.

  Args:
    real_features: [N, F] features of real data (e.g. the test split).
    fake_features: [M, F] features of samples.
    k: the neighbour that sets each radius (Naeem et al.: 5); needs N > k and M > k.

  Returns:
    A PRDC of floats (see the module docstring for the definitions).
  """
  real = as_matrix('real_features', real_features)
  fake = as_matrix('fake_features', fake_features)
  check_same_dim('real_features', real, 'fake_features', fake)
  if k < 1:
    raise ValueError(f'k must be >= 1, got {k}.')
  for name, a in (('real_features', real), ('fake_features', fake)):
    if k >= len(a):
      raise ValueError(f'k = {k} nearest neighbours need more than {k} points, but '
                       f'{name} has {len(a)}: lower k or pass more points.')
  centre = real.mean(axis=0, dtype=np.float64).astype(np.float32)
  real_r2, real_rows, _ = _radii_sq(real, centre, k)
  fake_r2, _, fake_cols = _radii_sq(fake, centre, k)
  counts, in_fake, nearest = _real_fake_pass(
      real_rows, _pad_blocks(real_r2, real_rows, -np.inf),
      fake_cols, _pad_blocks(fake_r2, fake_cols, -np.inf))
  counts = np.asarray(counts)[:len(fake)]
  return PRDC(precision=float(np.mean(counts > 0)),
              recall=float(np.mean(np.asarray(in_fake)[:len(real)])),
              density=float(counts.sum(dtype=np.int64) / (k * len(fake))),
              coverage=float(np.mean(np.asarray(nearest)[:len(real)] < real_r2)))


@jax.jit
def _nearest_index(queries, refs, n_refs):
  """Index [nq * bq] of each query's nearest reference (by float32 squared distance)."""
  nc, bc = refs.shape[:2]
  # ||q||^2 is common to a row: left out. Padding columns get +inf.
  ref_sq = jnp.where(jnp.arange(nc * bc).reshape(nc, bc) < n_refs, _sq_norms(refs), jnp.inf)
  offsets = jnp.arange(nc, dtype=jnp.int32) * bc

  def row_block(qb):
    def step(carry, col):
      best, best_idx = carry
      yb, y_sq, offset = col
      e = y_sq[None, :] - 2.0 * jnp.dot(qb, yb.T, precision=_HIGHEST)
      # top_k(., 1) is a cheaper argmin than argmin on CPU (a variadic reduction).
      neg, idx = jax.lax.top_k(-e, 1)
      closer = -neg[:, 0] < best
      return (jnp.where(closer, -neg[:, 0], best),
              jnp.where(closer, idx[:, 0] + offset, best_idx)), None

    init = (jnp.full(qb.shape[0], jnp.inf), jnp.zeros(qb.shape[0], jnp.int32))
    return jax.lax.scan(step, init, (refs, ref_sq, offsets))[0][1]

  return jax.lax.map(row_block, queries).reshape(-1)


def nearest(queries, refs) -> tuple[np.ndarray, np.ndarray]:
  """Each query's nearest reference point: (indices int [Q], Euclidean distances float64 [Q]).

  The search streams float32 blocks; the distance to the point found is then recomputed in
  float64 from the inputs, so that exact copies come out at distance 0. Where two references
  are within float32 rounding (~1e-6 relative of the squared norms) of equally near, either
  may be returned.
  """
  queries, refs = as_matrix('queries', queries), as_matrix('refs', refs)
  check_same_dim('queries', queries, 'refs', refs)
  centre = refs.mean(axis=0, dtype=np.float64).astype(np.float32)
  idx = np.asarray(_nearest_index(_blocked(queries, centre, ROW_BLOCK),
                                  _blocked(refs, centre, COL_BLOCK), np.int32(len(refs))))
  idx = np.minimum(idx[:len(queries)], len(refs) - 1)  # Defensive: never a padding index.
  dist = np.empty(len(queries))
  for lo in range(0, len(queries), 4096):  # Chunks: no float64 copy of the whole set.
    diff = queries[lo:lo + 4096].astype(np.float64) - refs[idx[lo:lo + 4096]]
    dist[lo:lo + 4096] = np.sqrt(np.einsum('ij,ij->i', diff, diff))
  return idx, dist


@dataclasses.dataclass(frozen=True)
class Memorisation:
  """How close samples are to the training set, next to held-out test data.

  Attributes:
    fraction_closer: fraction of samples nearer to their nearest training example than the
      threshold: ~percentile / 100 for samples as novel as test data, 1 for a copier.
    threshold: the `percentile`-th percentile of the test examples' nearest-train distances.
    median_ratio: median sample-to-train distance / median test-to-train distance (~1 for
      novel samples, 0 for a copier).
    copies: samples within copy_tolerance x (median test-to-train distance) of a training
      example.
    sample_distances, test_distances: [S], [T] float64 distances to the nearest training example.
    sample_nearest: [S] index of each sample's nearest training example (for figures).
  """
  fraction_closer: float
  threshold: float
  median_ratio: float
  copies: int
  sample_distances: np.ndarray
  test_distances: np.ndarray
  sample_nearest: np.ndarray


def memorisation(samples, train, test, *, percentile: float = 1.0,
                 copy_tolerance: float = 1e-6) -> Memorisation:
  """Are samples closer to the training set than held-out data is?

  Test examples come from the data distribution but were not trained on, so their distances to
  the nearest training example show how near a novel point typically lands. The `percentile`-th
  percentile of those distances is the threshold: by construction about percentile % of samples
  fall below it when they are as novel as test data, and all of them when G reproduces training
  examples. Copies are counted on a scale-free tolerance: a distance of at most copy_tolerance
  times the median test-to-train distance (distances are recomputed in float64, so exact copies
  are at 0; with 1e-6 only copies up to float rounding count, near-copies show in
  fraction_closer and median_ratio instead).

  Args:
    samples: [S, D] samples (flattened pixels, or any vectors).
    train: [N, D] training examples, in the same representation.
    test: [T, D] held-out examples, in the same representation.
    percentile: q in (0, 100), default 1.
    copy_tolerance: relative tolerance of a copy, >= 0.

  Returns:
    A Memorisation.
  """
  samples, train, test = (as_matrix(n, a) for n, a in
                          (('samples', samples), ('train', train), ('test', test)))
  check_same_dim('samples', samples, 'train', train)
  check_same_dim('test', test, 'train', train)
  if not 0 < percentile < 100:
    raise ValueError(f'percentile must be in (0, 100), got {percentile}.')
  if not copy_tolerance >= 0:
    raise ValueError(f'copy_tolerance must be >= 0, got {copy_tolerance}.')
  # One search for both sets: one compilation, one pass over the training set.
  idx, dist = nearest(np.concatenate([samples, test]), train)
  sample_d, test_d = dist[:len(samples)], dist[len(samples):]
  threshold = float(np.percentile(test_d, percentile))
  test_median = float(np.median(test_d))
  return Memorisation(
      fraction_closer=float(np.mean(sample_d < threshold)),
      threshold=threshold,
      median_ratio=float(np.median(sample_d) / test_median) if test_median > 0 else float('nan'),
      copies=int(np.sum(sample_d <= copy_tolerance * test_median)),
      sample_distances=sample_d, test_distances=test_d, sample_nearest=idx[:len(samples)])
