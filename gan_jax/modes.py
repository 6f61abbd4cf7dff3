"""Mode coverage of samples from a 2-D Gaussian mixture (ring8, grid25): the collapse benchmarks.

The metrics of Srivastava et al. 2017 (VEEGAN, Sec. 5.1), also used by Lin et al. 2018
(PacGAN): a sample is *high quality* when it lies within 3 std of some mode's centre; a mode is
*covered* when at least `min_count` samples lie within 3 std of its centre. Both papers score
2,500 samples per model (NUM_SAMPLES). MIN_COUNT = 20 of 2,500 (0.8%) is PacGAN's kind of
threshold (a mode with too few samples nearby counts as lost); it is about a sixth of a ring8
mode's fair share (312) and a fifth of a grid25 mode's (100), so a G that only smears a few
samples across a mode does not cover it. The KL between the high-quality samples' distribution
over the modes and the uniform one says how evenly G spreads over them (0: evenly; log K: one
mode).

With the default std of 0.02 and 0.05 the 3-std discs of ring8 (centres 4 sin(pi / 8) = 1.53
apart) and grid25 (2 apart) are disjoint, so each sample is near at most one mode; where a larger
std makes them overlap, a sample counts for its nearest centre only.

Pure functions of arrays, jitted; they know nothing of files or configs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data

Array = jax.Array

# The mixtures' definitions live with their data; re-exported for the metrics' callers.
mixture_centres = data.mixture_centres
mixture_std = data.mixture_std

MIN_COUNT = 20        # Samples within 3 std of a centre for the mode to count as covered.
NUM_SAMPLES = 2_500   # Samples scored per model, as VEEGAN and PacGAN.
RADIUS_IN_STDS = 3.0  # "Within three standard deviations".


@jax.jit
def mode_counts(samples: Array, centres: Array, std: float) -> Array:
  """How many of `samples` lie within 3 std of each centre, int32 [K].

  Args:
    samples: [N, 2] points (any shape [N, ..., 2] is flattened to [N, 2]).
    centres: [K, 2] the modes' centres, e.g. `mixture_centres(name)`.
    std: the components' std.

  Returns:
    [K] counts; a sample near no centre counts nowhere.
  """
  points = jnp.reshape(samples, (samples.shape[0], -1)).astype(jnp.float32)
  sq_dist = jnp.sum(jnp.square(points[:, None, :] - centres[None, :, :]), axis=-1)  # [N, K]
  nearest = jnp.argmin(sq_dist, axis=1)
  near = jnp.min(sq_dist, axis=1) <= jnp.square(RADIUS_IN_STDS * std)
  # The nearest centre only: with disjoint discs this is the one centre within 3 std, if any.
  return jnp.zeros(centres.shape[0], jnp.int32).at[nearest].add(near.astype(jnp.int32))


def mode_coverage(samples: Array, centres: Array, std: float, *,
                  min_count: int = MIN_COUNT) -> dict[str, float]:
  """The collapse metrics of `samples` from a 2-D mixture of `centres`, each with std `std`.

  Args:
    samples: [N, 2] (or [N, 1, 1, 2], G's output) points.
    centres: [K, 2] the modes' centres.
    std: the components' std.
    min_count: samples within 3 std of a centre that cover its mode.

  Returns:
    'modes_covered': modes with at least `min_count` samples within 3 std of their centre;
    'high_quality': the fraction of samples within 3 std of some centre;
    'kl_to_uniform': KL(q || uniform over the K modes), q being the high-quality samples'
      distribution over modes (0 = perfectly even; log K = all in one mode; nan if none is near a
      mode); 'num_samples' and 'num_modes'.

  Raises:
    ValueError: std or min_count not positive, or samples / centres not 2-D points.
  """
  if not std > 0 or min_count < 1:
    raise ValueError(f'std and min_count must be positive, got {std} and {min_count}: pass '
                     f'mixture_std(name) and MIN_COUNT ({MIN_COUNT}).')
  centres = jnp.asarray(centres, jnp.float32)
  if samples.shape[-1] != 2 or centres.ndim != 2 or centres.shape[1] != 2:
    raise ValueError(f'samples [N, 2] and centres [K, 2] are needed, got {samples.shape} and '
                     f'{centres.shape}: score 2-D points against mixture_centres(name).')
  counts = np.asarray(mode_counts(jnp.asarray(samples), centres, float(std)))
  num_near, num_modes = int(counts.sum()), len(counts)
  q = counts / max(num_near, 1)
  # q log(q K), with 0 log 0 = 0.
  kl = float(np.sum(np.where(q > 0, q * np.log(np.maximum(q, 1e-30) * num_modes), 0.0)))
  return {'modes_covered': int(np.sum(counts >= min_count)),
          'high_quality': num_near / samples.shape[0],
          'kl_to_uniform': kl if num_near else float('nan'),
          'num_samples': int(samples.shape[0]),
          'num_modes': num_modes}
