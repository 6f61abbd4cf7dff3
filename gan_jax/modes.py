"""Mode coverage of samples from a 2-D Gaussian mixture (ring8, grid25): the collapse benchmarks.

The metrics of Srivastava et al. 2017 (VEEGAN, Sec. 5.1), also used by Lin et al. 2018
(PacGAN): a sample is *high quality* when it lies within 3 std of some mode's centre; a mode is
*covered* when at least `min_count` samples lie within 3 std of its centre. Both papers score
2,500 samples per model (NUM_SAMPLES) and count a mode covered by a single sample (MIN_COUNT = 1:
"the number of mixture components whose mean is nearest to at least one high quality sample",
VEEGAN's project page, github.com/akashgit/VEEGAN; PacGAN's code, fjxmlzn/PacGAN,
synthetic_data_experiments/PacGAN/pacgan/extensions.py, counts the modes with a non-zero count).
One sample in transit between two modes then covers a mode; a stricter `min_count` (e.g. 20, a
fifth of a grid25 mode's fair share of 100) counts only modes G puts mass on. The KL between the
high-quality samples' distribution over the modes and the uniform one says how evenly G spreads
over them (0: evenly; log K: one mode).

With the default std of 0.02 and 0.05 the 3-std discs of ring8 (centres 4 sin(pi / 8) = 1.53
apart) and grid25 (2 apart) are disjoint, so each sample is near at most one mode; where a larger
std makes them overlap, a sample counts for its nearest centre only.

Stacked MNIST (three MNIST digits as an image's channels, gan_jax.stacked_mnist) has 1,000
modes: `stacked_mnist_coverage` labels each channel with the shipped MNIST classifier, the mode
being 100 * d0 + 10 * d1 + d2, and counts as PacGAN's code does (github.com/fjxmlzn/PacGAN,
stacked_MNIST_experiments/*/model.py, log_metrics, on 26,000 samples): a mode is covered by at
least one sample, and the KL is that of the samples' distribution over the modes from the
uniform one (0 log 0 = 0).

Pure functions of arrays, jitted; they know nothing of files or configs (the classifier's
weights come in as arguments).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import classifier
from gan_jax import data

Array = jax.Array

# The mixtures' definitions live with their data; re-exported for the metrics' callers.
mixture_centres = data.mixture_centres
mixture_std = data.mixture_std

MIN_COUNT = 1         # Samples within 3 std of a centre for the mode to count as covered.
NUM_SAMPLES = 2_500   # Samples scored per model, as VEEGAN and PacGAN.
RADIUS_IN_STDS = 3.0  # "Within three standard deviations".
STACKED_NUM_MODES = 1_000      # 10 digits in each of 3 channels.
STACKED_NUM_SAMPLES = 26_000   # Samples scored per model, as PacGAN.


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


@jax.jit
def stacked_mode_counts(channel_labels: Array) -> tuple[Array, Array]:
  """Each Stacked MNIST mode's sample count, and the KL of their distribution from uniform.

  Args:
    channel_labels: int [N, 3], the digit (0-9) in each channel of N samples.

  Returns:
    (int32 [1000] counts, mode 100 * d0 + 10 * d1 + d2; float32 KL(q || uniform over the 1,000
    modes) of q = counts / N, with 0 log 0 = 0).
  """
  mode = channel_labels.astype(jnp.int32) @ jnp.array([100, 10, 1], jnp.int32)
  counts = jnp.bincount(mode, length=STACKED_NUM_MODES)
  q = counts / channel_labels.shape[0]
  kl = jnp.sum(jnp.where(q > 0, q * jnp.log(jnp.maximum(q, 1e-30) * STACKED_NUM_MODES), 0.0))
  return counts, kl


def stacked_coverage_of_labels(channel_labels) -> dict[str, float]:
  """The Stacked MNIST collapse metrics of samples whose channels' digits are `channel_labels`.

  Args:
    channel_labels: int [N, 3] digits in 0-9, N > 0.

  Returns:
    'modes_covered': modes with at least one sample (of 1,000); 'kl_to_uniform': KL(q ||
    uniform) of the samples' distribution q over the modes (0: evenly spread, log 1000: one
    mode); 'num_samples'; 'num_modes' (1,000).

  Raises:
    ValueError: labels not [N, 3] with N > 0, or not digits.
  """
  labels = np.asarray(channel_labels)
  if labels.ndim != 2 or labels.shape[1] != 3 or not len(labels):
    raise ValueError(f'channel_labels must be [N, 3] with N > 0, got {labels.shape}: pass one '
                     'digit per channel of each sample.')
  if labels.min() < 0 or labels.max() > 9:
    raise ValueError(f'channel_labels must be digits 0-9, got {labels.min()}..{labels.max()}: '
                     "pass the classifier's argmax.")
  counts, kl = stacked_mode_counts(jnp.asarray(labels, jnp.int32))
  return {'modes_covered': int(np.sum(np.asarray(counts) > 0)),
          'kl_to_uniform': float(kl),
          'num_samples': len(labels),
          'num_modes': STACKED_NUM_MODES}


def label_channels(module: classifier.Classifier, params, samples, batch_size: int = 1000):
  """The digit the MNIST classifier sees in each channel of `samples`, int [N, 3].

  Args:
    module, params: the MNIST classifier (gan_jax.classifier.load('mnist')).
    samples: Stacked MNIST images, float32 [N, 28, 28, 3] in [0, 1] (or flat [N, 2352]).
    batch_size: images per compiled call of the classifier.

  Raises:
    ValueError: `samples` are not 3-channel 28x28 images.
  """
  x = np.asarray(samples, np.float32)
  if x.ndim == 2:
    x = x.reshape(len(x), 28, 28, 3)
  if x.shape[1:] != (28, 28, 3):
    raise ValueError(f'Stacked MNIST samples are [N, 28, 28, 3] (or [N, 2352]), got '
                     f'{np.shape(samples)}: score images of config.data.name=stacked_mnist.')
  # [N, 28, 28, 3] -> [3N, 28, 28, 1], sample-major: rows 3i, 3i + 1, 3i + 2 are sample i's.
  digits = np.moveaxis(x, -1, 1).reshape(-1, 28, 28, 1)
  _, logits = classifier.features_and_logits(module, params, digits, batch_size)
  return np.argmax(logits, axis=1).reshape(len(x), 3)


def stacked_mnist_coverage(module: classifier.Classifier, params, samples) -> dict[str, float]:
  """The Stacked MNIST collapse metrics of `samples` (see `stacked_coverage_of_labels`), each
  channel labelled by the MNIST classifier `module` with `params`."""
  return stacked_coverage_of_labels(label_channels(module, params, samples))
