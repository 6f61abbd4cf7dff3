r"""Training speed on an accelerator: the compiled step in float32, TF32 and bfloat16 matmuls.

For the paper's MNIST architecture (both update rules) and the CIFAR-10 fully connected sizes,
batch 100: the step scanned `--steps` times per call (as training runs it, `steps_per_call`),
steps/s (best of `--repeats`), the compile time of the first call, and the achieved TFLOP/s
(FLOPs counted from the layer shapes, as benchmarks/train_step.py) against two ceilings measured
in the same run: a large square matmul (the chip's practical peak for that precision) and a
matmul of the step's own commonest shape, [100, width] x [width, width], scanned likewise.

  python benchmarks/gpu.py                 # on the GPU machine
  python benchmarks/gpu.py --quick         # smoke test (any backend)

Precisions: 'f32' is float32 with matmul precision HIGHEST (true float32, the default of the
configs' numerics), 'tf32' lets XLA use TF32 tensor cores for float32 matmuls (precision DEFAULT),
'bf16' is `config.model.compute_dtype='bfloat16'` (bf16 operands, float32 accumulation and
parameters).
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks.common import dense_shapes, make_config, step_flops
from gan_jax import data
from gan_jax import experiment
from gan_jax import train_step

_STEPS = flags.DEFINE_integer('steps', 500, 'Steps per timed call (a lax.scan).')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls; the best is reported.')
_QUICK = flags.DEFINE_bool('quick', False, 'Tiny sizes, for a smoke test.')

PRECISIONS = {'f32': ('float32', 'highest'), 'tf32': ('float32', 'default'),
              'bf16': ('bfloat16', 'default')}


def timed(fn, *args) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def bench_step(name: str, rule: str, precision: str, steps: int, repeats: int) -> dict:
  dtype, matmul_precision = PRECISIONS[precision]
  config = make_config(name, rule, dtype)
  shape = (28, 28, 1) if name == 'mnist' else (32, 32, 3)
  images = data.preprocess(np.random.default_rng(0).integers(
      0, 256, (2 * config.train.batch_size, *shape), dtype=np.uint8), config.data.preprocessing)
  with jax.default_matmul_precision(matmul_precision):
    exp = experiment.build(config, shape, len(images))
    state = exp.initial_state(images)
    step = exp.single_step(axis_name=None)
    per_step = exp.spec.minibatches_per_step
    batch = jnp.asarray(images[:per_step * config.train.batch_size].reshape(
        per_step, config.train.batch_size, *shape))

    @jax.jit
    def chunk(state, rng):
      return jax.lax.scan(lambda s, _: step(s, batch, rng), state, None, length=steps)

    rng = jax.random.key(1)
    compile_s = timed(chunk, state, rng)
    best = min(timed(chunk, state, rng) for _ in range(repeats))
    state, metrics = chunk(state, rng)
    finite = bool(np.all(np.asarray(metrics['finite'])))
  flops = step_flops(dense_shapes(state.g_params), dense_shapes(state.d_params),
                     config.train.batch_size, rule)
  width = config.model.g_hidden[1]
  return dict(config=name, rule=rule, precision=precision, steps_per_s=steps / best,
              tflops=steps * flops / best / 1e12, compile_s=compile_s, finite=finite,
              flops=flops, width=width, batch=config.train.batch_size)


def bench_matmul(precision: str, m: int, k: int, n: int, count: int, repeats: int) -> float:
  """TFLOP/s of `count` scanned [m, k] x [k, n] products in the precision's operand dtype."""
  dtype, matmul_precision = PRECISIONS[precision]
  dt = jnp.bfloat16 if dtype == 'bfloat16' else jnp.float32
  a = jax.random.normal(jax.random.key(0), (m, k), dt)
  b = jax.random.normal(jax.random.key(1), (k, n), dt) / np.sqrt(k)

  with jax.default_matmul_precision(matmul_precision):
    @jax.jit
    def many(a, b):
      # A chain, so no product can be skipped; the result feeds the next as a.
      def body(x, _):
        y = jnp.dot(x, b, preferred_element_type=jnp.float32)
        return y[:, :k].astype(dt) if n >= k else x, None
      return jax.lax.scan(body, a, None, length=count)[0]
    timed(many, a, b)
    best = min(timed(many, a, b) for _ in range(repeats))
  return count * 2.0 * m * k * n / best / 1e12


def main(argv):
  del argv
  quick = _QUICK.value
  steps, repeats = (3, 1) if quick else (_STEPS.value, _REPEATS.value)
  dev = jax.devices()[0]
  print(f'jax {jax.__version__}, {dev.platform} {getattr(dev, "device_kind", "")}, '
        f'{jax.device_count()} device(s); {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}',
        flush=True)
  big = 1024 if quick else 8192
  peaks = {p: bench_matmul(p, big, big, big, 2 if quick else 10, repeats) for p in PRECISIONS}
  print('large matmul TFLOP/s:', {p: round(v, 1) for p, v in peaks.items()}, flush=True)
  rows = []
  cases = [('mnist', 'simultaneous'), ('mnist', 'alternating'), ('cifar10', 'simultaneous')]
  for name, rule in cases[:1] if quick else cases:
    for precision in PRECISIONS:
      r = bench_step(name, rule, precision, steps if name == 'mnist' else max(1, steps // 5),
                     repeats)
      r['shape_tflops'] = bench_matmul(precision, r['batch'], r['width'], r['width'],
                                       20 if quick else 2000, repeats)
      r['peak_tflops'] = peaks[precision]
      rows.append(r)
      print(r, flush=True)
  print('\n| config | rule | matmuls | steps/s | TFLOP/s | of its-shape matmul | of large '
        'matmul | first call s | finite |')
  print('|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['config']} | {r['rule']} | {r['precision']} | {r['steps_per_s']:,.0f} | "
          f"{r['tflops']:.2f} | {r['tflops'] / r['shape_tflops']:.0%} of "
          f"{r['shape_tflops']:.1f} | {r['tflops'] / r['peak_tflops']:.1%} of "
          f"{r['peak_tflops']:.0f} | {r['compile_s']:.1f} | {r['finite']} |")


if __name__ == '__main__':
  app.run(main)
