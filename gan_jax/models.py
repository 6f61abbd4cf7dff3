"""Generator and discriminator networks of Goodfellow et al. (2014), as Flax linen modules.

The modules follow the original pylearn2 configs (goodfeli/adversarial) and are built of the
layers in `gan_jax.layers`:

* `MLPGenerator`: fully connected G with ReLU/sigmoid hidden layers and a sigmoid (images in
  [0, 1]) or linear output, reshaped to the image shape.
* `MaxoutDiscriminator`: fully connected D of maxout layers with inverted dropout on the input of
  every layer, returning one logit per example.
* `MLPDiscriminator`: a plain fully connected D on a standardised input, without dropout (the
  1-D toy of Figure 1).
* `DeconvGenerator`: the CIFAR-10 convolutional G: fully connected layers, a reshape to a feature
  map and one transposed convolution ("deconvolution") with an untied bias.
* `MaxoutConvDiscriminator`: the CIFAR-10 convolutional D: maxout convolution layers with
  cuda-convnet max pooling (pylearn2's MaxoutConvC01B), then maxout and sigmoid layers.

`MLPGenerator` can also put extra layers (`prefix_*`, named pre0, pre1, ...) in front of its
hidden layers; their names differ from those of the layers after them, so a G trained without
them (TFD's pretraining stage) transfers into one with them by copying parameters by name.

The discriminators take *per-example* dropout keys (`example_keys`, one key per example of the
global batch; see `layers.example_dropout`), so 1 device and N devices compute the same update.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import layers
from gan_jax.errors import ConfigError

Array = jax.Array


class MLPGenerator(nn.Module):
  """G: z -> fully connected hidden layers -> output activation, reshaped to `image_shape`.

  Attributes:
    hidden: widths of the hidden layers.
    activations: one of layers.ACTIVATIONS per hidden layer.
    hidden_inits: initialiser spec per hidden layer (see `layers.make_init`).
    hidden_bias: initial bias per hidden layer (pylearn2's `init_bias`).
    image_shape: (H, W, C) of the output.
    output_activation: 'sigmoid' for images in [0, 1], 'linear' for normalised data.
    output_init: initialiser spec of the output layer.
    prefix_hidden, prefix_activations, prefix_inits, prefix_bias: optional layers before the
      hidden ones, named pre0, pre1, ... (TFD's second stage: z -> pre* -> pretrained h*, out).
    dtype: the matmuls' compute dtype (layers.COMPUTE_DTYPES); parameters stay float32.
    output_center, output_scale: G writes output_center + output_scale * (the output layer's
      activation): data standardised for the networks (config.model.x_center, x_scale).
  """
  hidden: Sequence[int]
  activations: Sequence[str]
  hidden_inits: Sequence[str]
  hidden_bias: Sequence[float]
  image_shape: Sequence[int]
  output_activation: str = 'sigmoid'
  output_init: str = 'uniform:0.05'
  prefix_hidden: Sequence[int] = ()
  prefix_activations: Sequence[str] = ()
  prefix_inits: Sequence[str] = ()
  prefix_bias: Sequence[float] = ()
  dtype: jnp.dtype = jnp.float32
  output_center: float = 0.0
  output_scale: float = 1.0

  @nn.compact
  def __call__(self, z: Array) -> Array:
    h = layers.dense_stack(z, self.prefix_hidden, self.prefix_activations, self.prefix_inits,
                           self.prefix_bias, 'pre', self.dtype)
    h = layers.dense_stack(h, self.hidden, self.activations, self.hidden_inits, self.hidden_bias,
                           'h', self.dtype)
    out = nn.Dense(int(np.prod(self.image_shape)),
                   kernel_init=layers.make_init(self.output_init), dtype=self.dtype, name='out')(h)
    # The output layer's activation in float32: images are float32 whatever the matmuls ran in.
    out = layers.ACTIVATIONS[self.output_activation](out.astype(jnp.float32))
    if (self.output_center, self.output_scale) != (0.0, 1.0):
      out = self.output_center + self.output_scale * out
    return out.reshape((z.shape[0], *self.image_shape))


class MaxoutDiscriminator(nn.Module):
  """D: maxout layers with dropout on every layer's input, then one sigmoid unit (as a logit).

  Attributes:
    units: maxout units per hidden layer.
    pieces: linear pieces per maxout unit.
    init_range: weights U(-init_range, init_range); biases 0.
    input_keep: keep probability for the pixels (input of the first layer).
    hidden_keep: keep probability for the inputs of the later layers.
    dtype: the matmuls' compute dtype (layers.COMPUTE_DTYPES); parameters and logits stay float32.
  """
  units: Sequence[int]
  pieces: int
  init_range: float = 0.005
  input_keep: float = 0.8
  hidden_keep: float = 0.5
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, example_keys: Array | None = None) -> Array:
    """Returns D's logits, shape [batch]; `example_keys=None` evaluates without dropout."""
    init = layers.uniform_range(self.init_range)
    h = x.reshape((x.shape[0], -1))
    for i, units in enumerate(self.units):
      h = layers.example_dropout(h, self.input_keep if i == 0 else self.hidden_keep, example_keys,
                                 i)
      h = nn.Dense(units * self.pieces, kernel_init=init, dtype=self.dtype, name=f'h{i}')(h)
      # pylearn2 orders a unit's pieces contiguously: column = unit * pieces + piece.
      h = layers.maxout(h.reshape((h.shape[0], units, self.pieces)))
    h = layers.example_dropout(h, self.hidden_keep, example_keys, len(self.units))
    return nn.Dense(1, kernel_init=init, dtype=self.dtype, name='y')(h)[:, 0].astype(jnp.float32)


class MLPDiscriminator(nn.Module):
  """D: fully connected layers of one activation, then one sigmoid unit (as a logit); no dropout.

  A plain D for low-dimensional data (Figure 1's toy), where a maxout D with dropout is more than
  the problem needs. The input is standardised first, (x - input_center) / input_scale, so that
  the first layer's units (LeCun-normal weights, zero biases, as Flax's Dense) bend where the data
  are: with zero biases a ReLU net is linear on x > 0 until its biases have grown.

  Attributes:
    units: widths of the hidden layers.
    activation: one of layers.ACTIVATIONS.
    input_center, input_scale: the standardisation of the input.
  """
  units: Sequence[int]
  activation: str = 'relu'
  input_center: float = 0.0
  input_scale: float = 1.0

  @nn.compact
  def __call__(self, x: Array, example_keys: Array | None = None) -> Array:
    """Returns D's logits, shape [batch]; `example_keys` is accepted and unused (no dropout)."""
    del example_keys
    h = (x.reshape((x.shape[0], -1)) - self.input_center) / self.input_scale
    for i, units in enumerate(self.units):
      h = layers.ACTIVATIONS[self.activation](nn.Dense(units, name=f'h{i}')(h))
    return nn.Dense(1, name='y')(h)[:, 0].astype(jnp.float32)


class DeconvGenerator(nn.Module):
  """G: z -> fully connected layers -> a reshape to a feature map -> `layers.Deconv` -> activation.

  The CIFAR-10 convolutional G of cifar10_convolutional.yaml: ReLU 8000, sigmoid 8000, reshape
  to 10 x 10 x 80, transposed convolution 5x5 stride 3 to 32 x 32 x 3, linear, untied bias. The
  8000 units are reshaped in NHWC order rather than pylearn2's c01b: a fixed permutation of the
  units of a layer whose weights are i.i.d., so the two models are the same distribution.

  Attributes:
    hidden, activations, hidden_inits, hidden_bias: the fully connected layers (h0, h1, ...).
    feature_shape: (H, W, C) the last hidden layer is reshaped to.
    image_shape: (H, W, C) of the output.
    kernel, stride, pad, tied_bias: of the transposed convolution ('out').
    output_activation: one of layers.ACTIVATIONS.
    output_init: initialiser spec of the transposed convolution's kernel ('uniform:<scale>').
  """
  hidden: Sequence[int]
  activations: Sequence[str]
  hidden_inits: Sequence[str]
  hidden_bias: Sequence[float]
  feature_shape: Sequence[int]
  image_shape: Sequence[int]
  kernel: Sequence[int] = (5, 5)
  stride: Sequence[int] = (3, 3)
  pad: int = 0
  tied_bias: bool = False
  output_activation: str = 'linear'
  output_init: str = 'uniform:0.05'

  @nn.compact
  def __call__(self, z: Array) -> Array:
    h = layers.dense_stack(z, self.hidden, self.activations, self.hidden_inits, self.hidden_bias,
                           'h')
    h = h.reshape((z.shape[0], *self.feature_shape))
    out = layers.Deconv(self.image_shape[-1], tuple(self.kernel), tuple(self.stride), self.pad,
                        self.tied_bias, layers.make_init(self.output_init), name='out')(h)
    return layers.ACTIVATIONS[self.output_activation](out)


class MaxoutConvDiscriminator(nn.Module):
  """D: maxout convolution layers, then fully connected maxout layers, then one sigmoid unit.

  Each convolution layer is pylearn2's MaxoutConvC01B: dropout on its input, a convolution with
  `channels * pieces` output channels, zero padding `pad` and a tied bias, the max over each
  group of `pieces` consecutive channels, then cuda-convnet max pooling (`pool`, `pool_stride`).

  Attributes:
    conv_channels: maxout channels per convolution layer.
    conv_pieces: pieces per maxout channel.
    conv_kernels: square kernel size per layer.
    conv_pads: zero padding per layer (each side).
    conv_pools: square pool size per layer.
    conv_pool_strides: pool stride per layer.
    units: maxout units per fully connected layer.
    pieces: pieces per fully connected maxout unit.
    init_range: all weights U(-init_range, init_range); biases 0.
    input_keep: keep probability for the pixels.
    hidden_keep: keep probability for the inputs of every later layer.
  """
  conv_channels: Sequence[int]
  conv_pieces: int
  conv_kernels: Sequence[int]
  conv_pads: Sequence[int]
  conv_pools: Sequence[int]
  conv_pool_strides: Sequence[int]
  units: Sequence[int]
  pieces: int
  init_range: float = 0.005
  input_keep: float = 0.8
  hidden_keep: float = 0.5

  @nn.compact
  def __call__(self, x: Array, example_keys: Array | None = None) -> Array:
    """Returns D's logits, shape [batch]; `example_keys=None` evaluates without dropout."""
    init = layers.uniform_range(self.init_range)
    h, layer = x, 0
    for i, (ch, k, pad, pool, stride) in enumerate(zip(
        self.conv_channels, self.conv_kernels, self.conv_pads, self.conv_pools,
        self.conv_pool_strides)):
      h = layers.example_dropout(h, self.input_keep if layer == 0 else self.hidden_keep,
                                 example_keys, layer)
      h = nn.Conv(ch * self.conv_pieces, (k, k), padding=[(pad, pad), (pad, pad)],
                  kernel_init=init, name=f'conv{i}')(h)
      # pylearn2 takes channel c's pieces from channels c * pieces ... c * pieces + pieces - 1.
      h = layers.maxout(h.reshape((*h.shape[:-1], ch, self.conv_pieces)))
      h = layers.cuda_convnet_max_pool(h, pool, stride)
      layer += 1
    h = h.reshape((h.shape[0], -1))
    for i, units in enumerate(self.units):
      h = layers.example_dropout(h, self.input_keep if layer == 0 else self.hidden_keep,
                                 example_keys, layer)
      h = nn.Dense(units * self.pieces, kernel_init=init, name=f'h{i}')(h)
      h = layers.maxout(h.reshape((h.shape[0], units, self.pieces)))
      layer += 1
    h = layers.example_dropout(h, self.hidden_keep, example_keys, layer)
    return nn.Dense(1, kernel_init=init, name='y')(h)[:, 0]


def compute_dtype(model_config):
  """`config.model.compute_dtype` as a dtype; bfloat16 only for the fully connected models."""
  name = model_config.compute_dtype
  if name not in layers.COMPUTE_DTYPES:
    raise ConfigError(f"config.model.compute_dtype='{name}' is unknown: choose one of "
                        f"{sorted(layers.COMPUTE_DTYPES)}.")
  if name != 'float32' and (model_config.generator, model_config.discriminator) != (
      'mlp', 'maxout_mlp'):
    raise ConfigError(f"config.model.compute_dtype='{name}' is implemented for the fully "
                        "connected models (generator='mlp', discriminator='maxout_mlp') only: "
                        "use float32 for the convolutional ones.")
  return layers.COMPUTE_DTYPES[name]


def _x_scale(model_config) -> float:
  if not model_config.x_scale > 0:
    raise ConfigError(f'config.model.x_scale is the data\'s unit for the networks and must be '
                      f'positive, got {model_config.x_scale}.')
  return float(model_config.x_scale)


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
        output_init=model_config.g_output_init,
        prefix_hidden=tuple(model_config.g_pre_hidden),
        prefix_activations=tuple(model_config.g_pre_activations),
        prefix_inits=tuple(model_config.g_pre_inits),
        prefix_bias=tuple(model_config.g_pre_bias),
        dtype=compute_dtype(model_config),
        output_center=float(model_config.x_center),
        output_scale=_x_scale(model_config))
  if name == 'deconv':
    m = model_config
    feature_shape, kernel, stride = tuple(m.g_reshape), tuple(m.g_deconv_kernel), tuple(
        m.g_deconv_stride)
    out = tuple(s * (n - 1) - 2 * m.g_deconv_pad + k
                for n, k, s in zip(feature_shape[:2], kernel, stride))
    if out != tuple(image_shape[:2]):
      raise ConfigError(
          f'The transposed convolution maps config.model.g_reshape={feature_shape} to {out}, '
          f'not the data\'s {tuple(image_shape[:2])}: output = stride * (input - 1) - 2 * pad + '
          'kernel; change g_reshape, g_deconv_kernel, g_deconv_stride or g_deconv_pad.')
    if int(np.prod(feature_shape)) != m.g_hidden[-1]:
      raise ConfigError(
          f'config.model.g_reshape={feature_shape} holds {int(np.prod(feature_shape))} units but '
          f'the last of config.model.g_hidden has {m.g_hidden[-1]}: make them equal.')
    return DeconvGenerator(
        hidden=tuple(m.g_hidden),
        activations=tuple(m.g_activations),
        hidden_inits=tuple(m.g_inits),
        hidden_bias=tuple(m.g_bias),
        feature_shape=feature_shape,
        image_shape=tuple(image_shape),
        kernel=kernel,
        stride=stride,
        pad=m.g_deconv_pad,
        tied_bias=m.g_deconv_tied_bias,
        output_activation=m.g_output_activation,
        output_init=m.g_output_init)
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
        hidden_keep=model_config.d_hidden_keep,
        dtype=compute_dtype(model_config))
  if name == 'mlp':
    m = model_config
    if m.d_activation not in layers.ACTIVATIONS:
      raise ConfigError(f"Unknown model.d_activation '{m.d_activation}': choose one of "
                        f"{sorted(layers.ACTIVATIONS)} (--config.model.d_activation=...).")
    return MLPDiscriminator(units=tuple(m.d_units), activation=m.d_activation,
                            input_center=float(m.x_center), input_scale=_x_scale(m))
  if name == 'maxout_conv':
    m = model_config
    return MaxoutConvDiscriminator(
        conv_channels=tuple(m.d_conv_channels),
        conv_pieces=m.d_conv_pieces,
        conv_kernels=tuple(m.d_conv_kernels),
        conv_pads=tuple(m.d_conv_pads),
        conv_pools=tuple(m.d_conv_pools),
        conv_pool_strides=tuple(m.d_conv_pool_strides),
        units=tuple(m.d_units),
        pieces=m.d_pieces,
        init_range=m.d_init_range,
        input_keep=m.d_input_keep,
        hidden_keep=m.d_hidden_keep)
  raise ValueError(f"Unknown discriminator '{name}': choose one of {sorted(DISCRIMINATORS)}.")


GENERATORS = ('mlp', 'deconv')
DISCRIMINATORS = ('maxout_mlp', 'maxout_conv', 'mlp')


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
  # A flat bias for MLPGenerator; [H, W, C] for DeconvGenerator's untied bias (images are NHWC).
  params['params']['out']['bias'] = jnp.asarray(bias).reshape(
      np.shape(params['params']['out']['bias']))
  return params
