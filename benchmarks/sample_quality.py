"""What `--mode=eval --config.eval.method=sample_quality` costs (a benchmark, not a test).

Times each part of the protocol at its full size, in one process, after compiling: the shipped
classifier's feature pass over 10,000 samples and 10,000 test images, FID, KID (100 subsets of
1,000), precision / recall / density / coverage (k = 5), the classifier score, and memorisation
(10,000 samples and 10,000 test images against the 50,000 training images, in pixels); then the
whole. 10,000 validation images stand in for G's samples (drawing them from the paper's G is
~0.1 s). The feature pass's rate (XLA's FLOP count of one batch) is printed against a plain
jitted float32 matmul [1000, 1024] x [1024, 1024] timed in the same run.

  python benchmarks/sample_quality.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import common
from experiments import mnist
from gan_jax import classifier
from gan_jax import data
from gan_jax import metrics
from gan_jax import neighbours

BATCH = 1000


def load(n_eval: int = 10_000) -> tuple[dict, str]:
  """Test, validation-as-samples and training images (real MNIST when TFDS_DATA_DIR is set)."""
  if os.environ.get('TFDS_DATA_DIR'):
    splits = data.load_splits(mnist.get_config().data, ('train', 'valid', 'test'))
    return {'samples': splits['valid'][:n_eval], 'test': splits['test'][:n_eval],
            'train': splits['train']}, 'real MNIST'
  rng = np.random.default_rng(0)
  draw = lambda n: rng.random((n, 28, 28, 1), dtype=np.float32)
  return {'samples': draw(n_eval), 'test': draw(n_eval), 'train': draw(50_000)}, 'uniform noise'


def timed(fn, repeats: int):
  """(the result, the best wall time over `repeats` calls, after one warm-up call)."""
  out = fn()
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - start)
  return out, best


def feature_flops(module, params) -> float:
  """XLA's FLOP count of the classifier on one batch of BATCH images."""
  x = np.zeros((BATCH, 28, 28, 1), np.float32)
  compiled = jax.jit(lambda p, x: module.apply({'params': p}, x)).lower(params, x).compile()
  analysis = compiled.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return float(analysis['flops'])


def main(repeats: int) -> None:
  images, source = load()
  module, params = classifier.load('mnist')
  print(f'{source}: {len(images["samples"])} samples, {len(images["test"])} test, '
        f'{len(images["train"])} training images; {jax.devices()[0].platform}, '
        f'{os.cpu_count()} CPUs')
  pass_ = lambda x: classifier.features_and_logits(module, params, x, BATCH)
  (sf, sl), t_samples = timed(lambda: pass_(images['samples']), repeats)
  (tf, _), t_test = timed(lambda: pass_(images['test']), repeats)
  flops = feature_flops(module, params) * len(images['samples']) / BATCH
  run, mm_flops = common.f32_matmul(BATCH, 1024)
  mm_rate = max(common.best_rate(run, 20) for _ in range(repeats)) * mm_flops
  key = jax.random.key(0)
  flat = lambda x: x.reshape(len(x), -1)
  parts = {
      'FID': lambda: metrics.fid(sf, tf),
      'KID (100 x 1,000)': lambda: metrics.kid(sf, tf, key),
      'precision/recall/density/coverage': lambda: neighbours.prdc(tf, sf, k=5),
      'classifier score': lambda: metrics.classifier_score(sl),
      'memorisation (vs 50,000 train)': lambda: neighbours.memorisation(
          flat(images['samples']), flat(images['train']), flat(images['test'])),
  }
  rows = [('features, 10,000 samples', t_samples), ('features, 10,000 test images', t_test)]
  rows += [(name, timed(fn, repeats)[1]) for name, fn in parts.items()]
  for name, seconds in rows:
    print(f'  {name:38s} {seconds:7.2f} s')
  print(f'  {"whole evaluation (sum)":38s} {sum(s for _, s in rows):7.2f} s')
  rate = flops / t_samples
  print(f'feature pass: {rate / 1e9:.1f} GFLOP/s ({flops / 1e9:.1f} GFLOP per 10,000 images), '
        f'float32 matmul [1000,1024]x[1024,1024] in the same run {mm_rate / 1e9:.1f} GFLOP/s: '
        f'{rate / mm_rate:.2f}x')


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--repeats', type=int, default=2)
  main(parser.parse_args().repeats)
