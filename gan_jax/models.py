"""Generator and discriminator networks of Goodfellow et al. (2014), as Flax linen modules.

The modules follow the original pylearn2 configs (goodfeli/adversarial):

* `MLPGenerator`: fully connected G with ReLU/sigmoid hidden layers and a sigmoid (images in
  [0, 1]) or linear output, reshaped to the image shape.
* `MaxoutDiscriminator`: fully connected D of maxout layers with inverted dropout on the input of
  every layer, returning one logit per example.

Dropout masks are drawn from *per-example* keys (`example_keys`, one key per example of the
global batch) rather than one key for the whole batch. The masks an example sees therefore do not
depend on how a global batch is split across devices, so 1 device and N devices compute the same
update.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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


ACTIVATIONS = {'relu': nn.relu, 'sigmoid': nn.sigmoid, 'linear': lambda x: x}


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


class MLPGenerator(nn.Module):
  """G: z -> fully connected hidden layers -> output activation, reshaped to `image_shape`.

  Attributes:
    hidden: widths of the hidden layers.
    activations: one of ACTIVATIONS per hidden layer.
    hidden_inits: initialiser spec per hidden layer (see `make_init`).
    hidden_bias: initial bias per hidden layer (pylearn2's `init_bias`).
    image_shape: (H, W, C) of the output.
    output_activation: 'sigmoid' for images in [0, 1], 'linear' for normalised data.
    output_init: initialiser spec of the output layer.
  """
  hidden: Sequence[int]
  activations: Sequence[str]
  hidden_inits: Sequence[str]
  hidden_bias: Sequence[float]
  image_shape: Sequence[int]
  output_activation: str = 'sigmoid'
  output_init: str = 'uniform:0.05'

  @nn.compact
  def __call__(self, z: Array) -> Array:
    h = z
    for i, (width, act, init, bias) in enumerate(
        zip(self.hidden, self.activations, self.hidden_inits, self.hidden_bias)):
      h = nn.Dense(width, kernel_init=make_init(init),
                   bias_init=nn.initializers.constant(bias), name=f'h{i}')(h)
      h = ACTIVATIONS[act](h)
    out = nn.Dense(int(np.prod(self.image_shape)), kernel_init=make_init(self.output_init),
                   name='out')(h)
    return ACTIVATIONS[self.output_activation](out).reshape((z.shape[0], *self.image_shape))


class MaxoutDiscriminator(nn.Module):
  """D: maxout layers with dropout on every layer's input, then one sigmoid unit (as a logit).

  Attributes:
    units: maxout units per hidden layer.
    pieces: linear pieces per maxout unit.
    init_range: weights U(-init_range, init_range); biases 0.
    input_keep: keep probability for the pixels (input of the first layer).
    hidden_keep: keep probability for the inputs of the later layers.
  """
  units: Sequence[int]
  pieces: int
  init_range: float = 0.005
  input_keep: float = 0.8
  hidden_keep: float = 0.5

  @nn.compact
  def __call__(self, x: Array, example_keys: Array | None = None) -> Array:
    """Returns D's logits, shape [batch]; `example_keys=None` evaluates without dropout."""
    init = uniform_range(self.init_range)
    h = x.reshape((x.shape[0], -1))
    for i, units in enumerate(self.units):
      h = example_dropout(h, self.input_keep if i == 0 else self.hidden_keep, example_keys, i)
      h = nn.Dense(units * self.pieces, kernel_init=init, name=f'h{i}')(h)
      # pylearn2 orders a unit's pieces contiguously: column = unit * pieces + piece.
      h = h.reshape((h.shape[0], units, self.pieces)).max(axis=-1)
    h = example_dropout(h, self.hidden_keep, example_keys, len(self.units))
    return nn.Dense(1, kernel_init=init, name='y')(h)[:, 0]


def build_generator(model_config, image_shape: Sequence[int]) -> nn.Module:
  """Builds G from `config.model` by name."""
  name = model_config.generator
  if name == 'mlp':
    return MLPGenerator(
        hidden=tuple(model_config.g_hidden),
        activations=tuple(model_config.g_activations),
        hidden_inits=tuple(model_config.g_inits),
        hidden_bias=tuple(model_config.g_bias),
        image_shape=tuple(image_shape),
        output_activation=model_config.g_output_activation,
        output_init=model_config.g_output_init)
  raise ValueError(f"Unknown generator '{name}': choose one of {sorted(GENERATORS)}.")


def build_discriminator(model_config) -> nn.Module:
  """Builds D from `config.model` by name."""
  name = model_config.discriminator
  if name == 'maxout_mlp':
    return MaxoutDiscriminator(
        units=tuple(model_config.d_units),
        pieces=model_config.d_pieces,
        init_range=model_config.d_init_range,
        input_keep=model_config.d_input_keep,
        hidden_keep=model_config.d_hidden_keep)
  raise ValueError(f"Unknown discriminator '{name}': choose one of {sorted(DISCRIMINATORS)}.")


GENERATORS = ('mlp',)
DISCRIMINATORS = ('maxout_mlp',)


def sample_prior(key: Array, shape: Sequence[int], prior: str) -> Array:
  """Draws G's input noise: 'uniform' is U(-sqrt 3, sqrt 3) (unit variance), as mnist.yaml."""
  if prior == 'uniform':
    return jax.random.uniform(key, shape, minval=-np.sqrt(3.0), maxval=np.sqrt(3.0))
  if prior == 'gaussian':
    return jax.random.normal(key, shape)
  raise ValueError(f"Unknown prior '{prior}': choose 'uniform' or 'gaussian'.")


PRIORS = ('uniform', 'gaussian')


def output_bias_from_marginals(g_params, train_images: np.ndarray):
  """Sets G's output bias to logit(mean pixel), as pylearn2's init_sigmoid_bias_from_marginals."""
  mean = np.asarray(train_images, np.float64).reshape(len(train_images), -1).mean(axis=0)
  p = np.clip(mean, 1e-7, 1 - 1e-7)
  bias = np.log(p / (1 - p)).astype(np.float32)
  params = jax.tree.map(lambda x: x, g_params)  # shallow copy of the nested dicts
  params['params']['out']['bias'] = jnp.asarray(bias)
  return params
