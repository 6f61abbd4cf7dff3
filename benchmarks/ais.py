"""Benchmark of gan_jax.ais on the paper's MNIST G (a benchmark, not a test).

G is experiments/mnist.py's 100 -> 1200 -> 1200 -> 784 MLP with randomly initialised parameters
(the cost does not depend on training). Each HMC leapfrog step is one forward pass of G and one
backward pass to z (input gradients only), counted as 2 x 2 x (100*1200 + 1200*1200 + 1200*784)
FLOPs per chain; a chain makes leapfrog_steps * (num_temps - 1) + 1 of them (gan_jax.hmc.anneal
moves at every intermediate temperature). Side by side in one run, interleaved, best of
--repeats:
  * the AIS kernel (gan_jax.ais.log_likelihood on one batch of images, after compiling):
    GFLOP/s and its fraction of a plain jitted float32 matmul [rows, 1200] x [1200, 1200]
    (rows = images x chains, the shape of G's widest layer) timed in the same run, and of a bare
    jitted loop of G's forward + backward on the same rows (what the kernel adds around G);
  * seconds per test image at Wu et al.'s setting (16 chains, 10 leapfrog steps) for 1,000
    (this project's config default) and 10,000 (eval_gen's --num_steps default) temperatures,
    extrapolated linearly in the number of G evaluations from the short timed run (--temps).
Images: MNIST test images when TFDS_DATA_DIR is set, else uniform random images (the cost is
the same; acceptance rates differ).

  python benchmarks/ais.py [--temps 10] [--batches 100,16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import common
from experiments import mnist
from gan_jax import ais
from gan_jax import data
from gan_jax import models

Z_DIM = 100


def build_generator():
  """The paper's MNIST G with random parameters, as ais.log_likelihood takes it."""
  config = mnist.get_config()
  model = models.build_generator(config.model, (28, 28, 1))
  params = model.init(jax.random.key(0), jnp.zeros((1, Z_DIM)))
  apply = lambda p, z: model.apply(p, z).reshape(len(z), -1)
  return Partial(apply, params), common.dense_shapes(params), config


def load_images(config, n: int) -> tuple[np.ndarray, str]:
  if os.environ.get('TFDS_DATA_DIR'):
    x = data.load_split(config.data, f'test[:{n}]')
    return x.reshape(n, -1), 'MNIST test images'
  return np.random.default_rng(0).random((n, 784), dtype=np.float32), 'uniform random images'


def grad_loop(generator, rows: int, count: int):
  """A jitted loop of `count` forward + backward-to-z passes of G on [rows, 100]: `run()`."""
  x = jnp.full((rows, 784), 0.5)

  @jax.jit
  def loop(z):
    def body(z, _):
      g = jax.grad(lambda z: -0.5 * jnp.sum((x - generator(z))**2))(z)
      return z + 1e-3 * g, None
    return jax.lax.scan(body, z, None, length=count)[0]

  z = jax.random.normal(jax.random.key(1), (rows, Z_DIM))
  loop(z).block_until_ready()
  return lambda: loop(z).block_until_ready()


def best_time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def bench_batch(generator, x, macs: int, args) -> dict:
  """One batch of len(x) images: the kernel, the matmul and G's bare gradient loop, interleaved."""
  rows = len(x) * args.chains
  evals = args.leapfrog * (args.temps - 1) + 1  # G evaluations per chain.
  flops = 4.0 * macs * rows * evals
  settings = dict(z_dim=Z_DIM, prior=args.prior, obs_std=args.obs_std, num_chains=args.chains,
                  num_temps=args.temps, leapfrog_steps=args.leapfrog, batch_size=len(x))
  run_ais = lambda: ais.log_likelihood(generator, x, jax.random.key(2), **settings)
  start = time.perf_counter()
  ll = run_ais()
  first = time.perf_counter() - start
  matmul, mm_flops = common.f32_matmul(rows, 1200)
  mm_count = max(1, int(flops / mm_flops / 4))  # About a quarter of the kernel's work.
  bare = grad_loop(generator, rows, evals)
  t_ais, t_mm, t_bare = [], [], []
  for _ in range(args.repeats):
    t_ais.append(best_time(run_ais, 1))
    t_mm.append(best_time(lambda: matmul(mm_count), 1))
    t_bare.append(best_time(bare, 1))
  t_ais, t_mm, t_bare = min(t_ais), min(t_mm), min(t_bare)
  rate, mm_rate = flops / t_ais / 1e9, mm_count * mm_flops / t_mm / 1e9
  bare_rate = flops / t_bare / 1e9
  per_image = lambda temps: t_ais / len(x) * (args.leapfrog * (temps - 1) + 1) / evals
  return dict(images=len(x), rows=rows, t=t_ais, first=first, rate=rate, mm_rate=mm_rate,
              bare_rate=bare_rate, per_1k=per_image(1000), per_10k=per_image(10_000),
              ll=float(np.mean(ll)), finite=bool(np.all(np.isfinite(ll))))


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--temps', type=int, default=10, help='temperatures of the timed run')
  ap.add_argument('--batches', default='100,16', help='images per batch, comma-separated')
  ap.add_argument('--chains', type=int, default=16)
  ap.add_argument('--leapfrog', type=int, default=10)
  ap.add_argument('--prior', default='uniform', choices=ais.PRIORS)
  ap.add_argument('--obs_std', type=float, default=0.1)
  ap.add_argument('--repeats', type=int, default=2)
  args = ap.parse_args()
  generator, shapes, config = build_generator()
  macs = sum(i * o for i, o in shapes)
  batches = [int(b) for b in args.batches.split(',')]
  x, source = load_images(config, max(batches))
  print(f'MNIST G {shapes} ({macs:,} multiply-adds per example), {args.prior} prior; {source}; '
        f'{args.chains} chains, {args.leapfrog} leapfrog steps, timed with {args.temps} '
        f'temperatures; devices: {jax.local_devices()}; load avg {os.getloadavg()[0]:.1f}')
  print('\n| images/batch | rows | AIS s | first call s | AIS GFLOP/s | f32 matmul GFLOP/s | '
        'AIS / matmul | bare G grad GFLOP/s | AIS / bare | s/image @1k temps | '
        's/image @10k temps |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for b in batches:
    r = bench_batch(generator, x[:b], macs, args)
    assert r['finite'], 'non-finite log-likelihood'
    print(f"| {r['images']} | {r['rows']} | {r['t']:.2f} | {r['first']:.1f} | {r['rate']:.1f} | "
          f"{r['mm_rate']:.1f} | {r['rate'] / r['mm_rate']:.0%} | {r['bare_rate']:.1f} | "
          f"{r['rate'] / r['bare_rate']:.0%} | {r['per_1k']:.1f} | {r['per_10k']:.0f} |")
  print(f'\nPer-image seconds are extrapolated from {args.temps} temperatures (linear in G '
        f'evaluations); best of {args.repeats}; load avg now {os.getloadavg()[0]:.1f}.')


if __name__ == '__main__':
  main()
