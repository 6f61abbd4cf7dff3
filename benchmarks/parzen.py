"""Benchmark of gan_jax.parzen on the MNIST protocol shape (a benchmark, not a test).

10,000 samples; sigma chosen on 1,000 validation points out of 10 sigmas; 10,000 test points;
d = 784. Real MNIST when TFDS_DATA_DIR is set (test images as x, train[:10000] as samples,
train[-1000:] as validation), else uniform random data of the same shape. Side by side on
the same inputs:
  * our kernel (time, GFLOP/s counting 2 n m d for the distance matmul, fraction of a plain
    jitted float32 matmul's rate of the same shape measured in this run);
  * a NumPy port of goodfeli/adversarial's parzen_ll.py (difference tensor per batch of 10
    points, recomputed per sigma), timed on a subset and extrapolated;
  * scikit-learn's KernelDensity(kernel='gaussian').score_samples, subset, extrapolated;
each with its largest error against a float64 reference on the same points; and the cost
of the 10-sigma sweep relative to a single sigma.

  python benchmarks/parzen.py [--repeats 3] [--subset 40]

scikit-learn is a benchmark-only extra (pip install scikit-learn); skipped if missing.
"""

import argparse
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan_jax import parzen  # pylint: disable=g-import-not-at-top


def load(n_samples=10_000, n_valid=1_000, n_test=10_000):
  if os.environ.get('TFDS_DATA_DIR'):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    get = lambda split: tfds.as_numpy(tfds.load(
        'mnist', split=split, batch_size=-1, data_dir=os.environ['TFDS_DATA_DIR']))['image']
    train, test = get('train'), get('test')
    flat = lambda a: (a.reshape(len(a), -1) / np.float32(255)).astype(np.float32)
    return ('real MNIST', flat(test[:n_test]), flat(train[-n_valid:]),
            flat(train[:n_samples]))
  rng = np.random.default_rng(0)
  u = lambda n: rng.random((n, 784), dtype=np.float32)
  return 'uniform random', u(n_test), u(n_valid), u(n_samples)


def reference(x, mu, sigmas):
  """float64 [S, n], chunked float64 expansion (error ~1e-12 nats)."""
  mu = mu.astype(np.float64)
  mn = np.square(mu).sum(1)
  out = []
  for lo in range(0, len(x), 1000):
    xc = x[lo:lo + 1000].astype(np.float64)
    d2 = np.maximum(np.square(xc).sum(1)[:, None] + mn[None] - 2 * xc @ mu.T, 0)
    out.append(np.stack([logsumexp(-d2 / (2 * s * s), axis=1) for s in sigmas]))
  const = -math.log(len(mu)) - mu.shape[1] * np.log(np.asarray(sigmas) * math.sqrt(2 * math.pi))
  return np.concatenate(out, axis=1) + const[:, None]


def numpy_port(x, mu, sigma, batch_size=10):
  """goodfeli/adversarial parzen_ll.py (theano_parzen + get_nll) in NumPy, one sigma."""
  out = []
  for lo in range(0, len(x), batch_size):
    a = (x[lo:lo + batch_size, None, :] - mu[None, :, :]) / sigma
    e = -0.5 * (a ** 2).sum(2)
    m = e.max(1)
    out.append(m + np.log(np.exp(e - m[:, None]).mean(1))
               - mu.shape[1] * np.log(sigma * np.sqrt(np.pi * 2)))
  return np.concatenate(out)


def best_of(fn, repeats):
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return min(times)


def rel_err(got, want):
  """Largest |error| / max(1e-3, 1e-6 |LL|): <= 1 meets the accuracy bound."""
  return float(np.max(np.abs(got - want) / np.maximum(1e-3, 1e-6 * np.abs(want))))


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--subset', type=int, default=40, help='points for the slow baselines')
  args = ap.parse_args()
  name, test_x, valid_x, samples = load()
  sigmas = parzen.default_sigmas()
  n_s, d = samples.shape
  print(f'{name}: {len(samples)} samples, {len(valid_x)} valid x {len(sigmas)} sigmas, '
        f'{len(test_x)} test, d={d}; devices: {jax.local_devices()}; '
        f'load avg {os.getloadavg()[0]:.1f}')
  # Work of the protocol in point-sigma evaluations and in distance-matmul flops.
  point_sigmas = len(valid_x) * len(sigmas) + len(test_x)
  flops = 2.0 * (len(valid_x) + len(test_x)) * n_s * d

  # Plain jitted float32 matmul of the same shape (test set x samples).
  mm = jax.jit(lambda a, b: jnp.dot(a, b.T, precision=jax.lax.Precision.HIGHEST))
  a, b = jnp.asarray(test_x), jnp.asarray(samples)
  mm(a, b).block_until_ready()
  # The same matmul in 1,000-row blocks reduced at once (no 400 MB output to write): the
  # GEMM's compute-bound rate, a stricter yardstick.
  mm_blocked = jax.jit(lambda a, b: jax.lax.map(
      lambda xb: jnp.dot(xb, b.T, precision=jax.lax.Precision.HIGHEST).min(1),
      a.reshape(-1, 1000, a.shape[1])))
  mm_blocked(a, b).block_until_ready()

  def protocol():
    return parzen.evaluate(test_x, valid_x, samples, sigmas)

  result = protocol()  # Compiles.
  one = lambda: parzen.log_likelihood(valid_x, samples, [result.sigma])
  sweep = lambda: parzen.log_likelihood(valid_x, samples, sigmas)
  test_pass = lambda: parzen.log_likelihood(test_x, samples, [result.sigma])
  test_sweep = lambda: parzen.log_likelihood(test_x, samples, sigmas)
  one(), sweep(), test_sweep()
  # Interleave the repeats so that load changes hit all candidates alike.
  times = {k: [] for k in ('mm', 'mmb', 'ours', 'test', 'one', 'sweep', 'test_sweep')}
  for _ in range(args.repeats):
    times['mm'].append(best_of(lambda: mm(a, b).block_until_ready(), 1))
    times['mmb'].append(best_of(lambda: mm_blocked(a, b).block_until_ready(), 1))
    times['ours'].append(best_of(protocol, 1))
    times['test'].append(best_of(test_pass, 1))
    times['one'].append(best_of(one, 1))
    times['sweep'].append(best_of(sweep, 1))
    times['test_sweep'].append(best_of(test_sweep, 1))
  t_mm, t_mmb, t_ours, t_test, t_one, t_sweep, t_test_sweep = (min(times[k]) for k in times)
  rate_mm = 2.0 * len(test_x) * n_s * d / t_mm / 1e9
  rate_mmb = 2.0 * len(test_x) * n_s * d / t_mmb / 1e9
  rate_test = 2.0 * len(test_x) * n_s * d / t_test / 1e9
  rate_ours = flops / t_ours / 1e9

  # Accuracy of ours on every point of the protocol.
  ref_valid = reference(valid_x, samples, sigmas)
  ref_test = reference(test_x, samples, [result.sigma])[0]
  ours_valid = parzen.log_likelihood(valid_x, samples, sigmas)
  ours_test = parzen.log_likelihood(test_x, samples, result.sigma)[0]
  err_ours = max(np.abs(ours_valid - ref_valid).max(), np.abs(ours_test - ref_test).max())
  rel_ours = max(rel_err(ours_valid, ref_valid), rel_err(ours_test, ref_test))

  # Baselines on a subset of the test points, one sigma each, extrapolated per point-sigma.
  sub = test_x[:args.subset]
  ref_sub = ref_test[:args.subset]
  t_np = best_of(lambda: numpy_port(sub, samples, result.sigma), max(1, args.repeats - 1))
  np_out = numpy_port(sub, samples, result.sigma)
  rows = [('gan_jax.parzen (ours)', t_ours, f'{rate_ours:.0f} GFLOP/s = '
           f'{rate_ours / rate_mm:.0%} of matmul, {rate_ours / rate_mmb:.0%} of blocked',
           err_ours, rel_ours)]
  rows.append(('NumPy port of parzen_ll.py', t_np / len(sub) * point_sigmas,
               f'{args.subset} points, extrapolated', np.abs(np_out - ref_sub).max(),
               rel_err(np_out, ref_sub)))
  try:
    from sklearn.neighbors import KernelDensity  # pylint: disable=g-import-not-at-top
    kde = KernelDensity(kernel='gaussian', bandwidth=result.sigma).fit(samples)
    t_sk = best_of(lambda: kde.score_samples(sub), max(1, args.repeats - 1))
    sk_out = kde.score_samples(sub)
    rows.append(('scikit-learn KernelDensity', t_sk / len(sub) * point_sigmas,
                 f'{args.subset} points, extrapolated', np.abs(sk_out - ref_sub).max(),
                 rel_err(sk_out, ref_sub)))
  except ImportError:
    print('scikit-learn not installed: skipping its row')

  print(f'\nplain jitted f32 matmul [{len(test_x)},{d}]x[{d},{n_s}]: {t_mm:.3f} s, '
        f'{rate_mm:.0f} GFLOP/s')
  print(f'same matmul in 1000-row blocks, reduced (no output): {t_mmb:.3f} s, '
        f'{rate_mmb:.0f} GFLOP/s')
  print(f'our test pass alone (same shape, one sigma): {t_test:.3f} s, {rate_test:.0f} GFLOP/s = '
        f'{rate_test / rate_mm:.0%} of the matmul, {rate_test / rate_mmb:.0%} of the blocked one')
  print(f'chosen sigma {result.sigma:.4f}; test LL {result.mean_ll:.2f} +- {result.std_err:.2f}\n')
  print('| method | protocol time (s) | speed | vs ours | max abs error (nats) | error / bound |')
  print('| --- | --- | --- | --- | --- | --- |')
  for label, t, note, err, rel in rows:
    print(f'| {label} | {t:.2f} | {note} | {t / t_ours:.0f}x | {err:.1e} | {rel:.3f} |')
  print(f'\n10-sigma sweep / one sigma: on the {len(valid_x)} validation points {t_sweep:.3f} / '
        f'{t_one:.3f} s = {t_sweep / t_one:.2f}; on the {len(test_x)} test points '
        f'{t_test_sweep:.3f} / {t_test:.3f} s = {t_test_sweep / t_test:.2f}')
  print(f'best of {args.repeats}; load avg now {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
  main()
