"""The layers and initialisers the networks of `gan_jax.models` are built of.

Each reproduces a pylearn2 building block of Goodfellow et al.'s code (goodfeli/adversarial), so
the networks match the paper's configs:

* Initialisers: `uniform_range` (pylearn2's `irange`), `sparse_normal` (`sparse_init`), and
  `make_init`, which parses the config's spec strings ('uniform:0.05', 'sparse:100').
* `ACTIVATIONS` and `dense_stack`: fully connected layers named f'{prefix}{i}', each a Dense then
  its activation; `COMPUTE_DTYPES` are the dtypes their matmuls may run in.
* `example_dropout`: pylearn2's inverted dropout, with one mask per example drawn from that
  example's key, so an example's masks do not depend on how a global batch is split across
  devices and 1 device and N devices compute the same update.
* `maxout`: the max over a maxout unit's pieces, with Theano's gradient at ties rather than JAX's.
* `conv_output_size`, `pool_output_size`, `cuda_convnet_max_pool`: convolution and max-pooling
  shapes as cuda-convnet (pylearn2's MaxoutConvC01B) computes them, which keeps a window that
  runs past the edge instead of dropping it.
* `Deconv`: the transposed convolution of adversarial/deconv.py, with its output size and an
  optionally untied bias.

They live apart from the networks so that each network reads as its architecture alone.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


def uniform_range(scale: float) -> Callable:
  """pylearn2's `irange`: weights drawn from U(-scale, scale)."""

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)

  return init


def sparse_normal(num_nonzero: int) -> Callable:
  """pylearn2's `sparse_init`: each output unit gets `num_nonzero` N(0, 1) input weights."""

  def init(key, shape, dtype=jnp.float32):
    fan_in, fan_out = shape
    k_idx, k_val = jax.random.split(key)
    # A random subset of inputs per column: argsort of uniforms picks them without replacement.
    order = jnp.argsort(jax.random.uniform(k_idx, (fan_out, fan_in)), axis=1)
    chosen = order[:, :min(num_nonzero, fan_in)]
    values = jax.random.normal(k_val, chosen.shape, dtype)
    w = jnp.zeros((fan_out, fan_in), dtype)
    w = w.at[jnp.arange(fan_out)[:, None], chosen].set(values)
    return w.T

  return init


def make_init(spec: str) -> Callable:
  """Parses an initialiser spec: 'uniform:0.05' or 'sparse:100'."""
  kind, _, arg = spec.partition(':')
  if kind == 'uniform':
    return uniform_range(float(arg))
  if kind == 'sparse':
    return sparse_normal(int(arg))
  raise ValueError(f"Unknown initialiser '{spec}': use 'uniform:<scale>' or 'sparse:<count>'.")


ACTIVATIONS = {'relu': nn.relu, 'sigmoid': nn.sigmoid, 'linear': lambda x: x, 'tanh': jnp.tanh}


def example_dropout(x: Array, keep: float, example_keys: Array | None, salt: int) -> Array:
  """Inverted dropout with one mask per example, drawn from that example's key.

  Args:
    x: activations, [batch, ...].
    keep: probability of keeping a unit; kept units are scaled by 1 / keep (pylearn2's
      `input_include_prob` with `input_scale = 1 / include_prob`).
    example_keys: [batch] PRNG keys, or None for evaluation (no dropout).
    salt: distinguishes the layers, so each layer's mask is independent.

  Returns:
    x with dropout applied.
  """
  if example_keys is None or keep >= 1.0:
    return x
  masks = jax.vmap(
      lambda k: jax.random.bernoulli(jax.random.fold_in(k, salt), keep, x.shape[1:]))(example_keys)
  return jnp.where(masks, x * (1.0 / keep), jnp.zeros_like(x))


COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def dense_stack(h: Array, widths: Sequence[int], activations: Sequence[str],
                inits: Sequence[str], biases: Sequence[float], prefix: str,
                dtype=jnp.float32) -> Array:
  """Fully connected layers named f'{prefix}{i}', each Dense then its activation."""
  for i, (width, act, init, bias) in enumerate(zip(widths, activations, inits, biases)):
    h = nn.Dense(width, kernel_init=make_init(init), dtype=dtype,
                 bias_init=nn.initializers.constant(bias), name=f'{prefix}{i}')(h)
    h = ACTIVATIONS[act](h)
  return h


@jax.custom_vjp
def maxout(h: Array) -> Array:
  """Max over the last axis (a maxout unit's pieces), with Theano's gradient.

  The gradient goes to the winning piece, in full to every piece of an exact tie, as Theano's
  `maximum` (and so pylearn2's Maxout) gave it. JAX's own max gradient splits ties evenly, at the
  cost of a count and a division per unit; this one is a single select, which is cheaper.
  """
  return h.max(axis=-1)


def _maxout_fwd(h):
  out = h.max(axis=-1)
  return out, h == out[..., None]


def _maxout_bwd(is_max, g):
  return (jnp.where(is_max, g[..., None], 0.0),)


maxout.defvjp(_maxout_fwd, _maxout_bwd)


def conv_output_size(size: int, kernel: int, pad: int) -> int:
  """Spatial size after a stride-1 convolution with zero padding `pad` on each side."""
  return size + 2 * pad - kernel + 1


def pool_output_size(size: int, pool: int, stride: int) -> int:
  """cuda-convnet's max-pooling size: ceil((size - pool) / stride) + 1.

  The last window may run past the edge; cuda-convnet (hence pylearn2's max_pool_c01b) clips it
  to the image rather than dropping it, so 33 -> 16 with pool 4, stride 2 (a VALID pool gives 15).
  """
  if size < pool:
    raise ValueError(f'Max pooling of {pool}x{pool} does not fit a {size}x{size} feature map: '
                     'use a smaller pool or less downsampling before it.')
  return -(-(size - pool) // stride) + 1


def cuda_convnet_max_pool(x: Array, pool: int, stride: int) -> Array:
  """Max pooling over the spatial axes of NHWC `x` with cuda-convnet's output size."""
  pads = [(0, 0)]
  for size in x.shape[1:3]:
    out = pool_output_size(size, pool, stride)
    pads.append((0, (out - 1) * stride + pool - size))  # -inf padding never wins the max.
  pads.append((0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, pool, pool, 1),
                               (1, stride, stride, 1), pads)


class Deconv(nn.Module):
  """Transposed convolution with pylearn2's output size and an optionally untied bias.

  Output size per spatial axis: stride * (in - 1) - 2 * pad + kernel (adversarial/deconv.py).

  Attributes:
    features: output channels.
    kernel: (kh, kw).
    stride: (sh, sw).
    pad: rows/columns cropped from each side (pylearn2's `pad_out`).
    tied_bias: one bias per channel if True, else one per channel and position.
    kernel_init: initialiser of the [kh, kw, in, out] kernel.
  """
  features: int
  kernel: Sequence[int]
  stride: Sequence[int]
  pad: int = 0
  tied_bias: bool = False
  kernel_init: Callable = uniform_range(0.05)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    w = self.param('kernel', self.kernel_init, (*self.kernel, x.shape[-1], self.features))
    # The transpose of a strided cross-correlation (pylearn2's lmul_T): input pixel (i, j) adds
    # x[i, j] @ w[a, b] to output pixel (stride * i + a, stride * j + b). lax.conv_transpose
    # applies its kernel mirrored, hence the flip.
    y = jax.lax.conv_transpose(x, w[::-1, ::-1], tuple(self.stride), 'VALID',
                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    if self.pad:
      y = y[:, self.pad:-self.pad, self.pad:-self.pad]
    bias_shape = (self.features,) if self.tied_bias else y.shape[1:]
    return y + self.param('bias', nn.initializers.zeros, bias_shape)
