"""What the benchmarks share (no torch): the benchmarked configs and images, the step's FLOP
count, the timing helpers, the reference matmul and the compilation counter."""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import mnist
from gan_jax import data

COMPILE_EVENT = '/jax/core/compile/backend_compile_duration'
compiles: list[str] = []  # The XLA compilations seen since count_compiles(), by function name.
_listening = []


def _on_duration(event: str, duration: float, **kwargs) -> None:
  del duration
  if event == COMPILE_EVENT:
    compiles.append(kwargs.get('fun_name', '?'))


def count_compiles() -> None:
  """From now on every XLA compilation is appended to `compiles` (once, however often called)."""
  if not _listening:
    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    _listening.append(True)


def make_config(name: str, rule: str, dtype: str = 'float32'):
  """MNIST's config, or its copy with the CIFAR-10 fully connected sizes (cifar10.py's)."""
  config = mnist.get_config()
  config.train.update_rule, config.train.k_steps = rule, 1
  config.model.compute_dtype = dtype
  if name == 'cifar10':
    m = config.model
    config.data.name, config.data.preprocessing = 'cifar10', 'gcn'
    m.g_hidden, m.g_activations = (8000, 8000), ('relu', 'sigmoid')
    m.g_inits, m.g_bias = ('uniform:0.05', 'uniform:0.05'), (0.0, 0.0)
    m.g_output_activation, m.g_output_bias_from_marginals = 'linear', False
    m.d_units, m.d_pieces = (1600, 1600), 5
  return config


def flax_layer_order(names) -> list[str]:
  """gan_jax's Dense layer names from input to output: pre*, h*, then out (G) or y (D)."""
  rank = lambda n: (0 if n.startswith('pre') else 2 if n in ('out', 'y') else 1,
                    int(''.join(c for c in n if c.isdigit()) or 0))
  return sorted(names, key=rank)


def dense_shapes(params) -> list[tuple[int, int]]:
  """(fan_in, fan_out) of every Dense layer, from input to output."""
  layers = params['params']
  return [tuple(layers[n]['kernel'].shape) for n in flax_layer_order(layers)]


def step_flops(g_shapes, d_shapes, batch: int, rule: str) -> float:
  """FLOPs of the dots one step needs (2 per multiply-add), counted from the layer shapes.

  Forward: G once, D on real and on fake. D's gradient: every weight gradient of both passes and
  the input gradients of all but D's first layer. G's gradient (through the fake pass): D's input
  gradients of all layers, then G's weight gradients and the input gradients of all but its
  first layer. Alternating (k=1) adds one G forward and one D forward on fresh fakes.
  """
  g_all = sum(i * o for i, o in g_shapes)
  g_inner = sum(i * o for i, o in g_shapes[1:])
  d_all = sum(i * o for i, o in d_shapes)
  d_inner = sum(i * o for i, o in d_shapes[1:])
  d_step = 2 * d_all + 2 * d_all + 2 * d_inner  # forward, weight grads, input grads (2 passes)
  g_step = d_all + g_all + g_inner  # backward through D's fake pass, then through G
  macs = g_all + d_step + g_step
  if rule == 'alternating':
    macs += g_all + d_all  # G's step draws fresh z and a fresh D pass
  return 2.0 * batch * macs


def load_images(name: str, quick: bool) -> tuple[np.ndarray, str]:
  """Training images [N, H, W, C] float32 and where they came from."""
  config = make_config(name, 'simultaneous')
  if name == 'mnist' and os.environ.get('TFDS_DATA_DIR') and not quick:
    return data.load_split(config.data, config.data.train_split), 'real MNIST (TFDS train[:50000])'
  shape = (50_000, 28, 28, 1) if name == 'mnist' else (2_000, 32, 32, 3)
  raw = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
  return data.preprocess(raw, config.data.preprocessing), f'random uint8 images {shape}'


def best_rate(fn, count: int) -> float:
  """Runs `fn(count)` once and returns count / seconds (fn blocks until done)."""
  start = time.perf_counter()
  fn(count)
  return count / (time.perf_counter() - start)


def f32_matmul(batch: int, width: int):
  """A jitted float32 [batch, width] x [width, width] matmul, compiled: `run(count)` makes
  `count` calls and blocks; returns (run, FLOPs of one call)."""
  a = jax.random.normal(jax.random.key(0), (batch, width))
  b = jax.random.normal(jax.random.key(1), (width, width))
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()

  def run(count: int) -> None:
    for _ in range(count):
      out = matmul(a, b)
    out.block_until_ready()

  return run, 2.0 * batch * width * width
