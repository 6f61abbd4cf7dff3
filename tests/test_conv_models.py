"""Tests for the convolutional G and D of cifar10_convolutional.yaml, and a short run of them."""

import importlib.util
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gan_jax
from gan_jax import layers
from gan_jax import models
from gan_jax import state as state_lib
from gan_jax import validation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(name='cifar10_conv'):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'experiments',
                                                                   f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.lock()  # As launch.py does: overrides may change fields, never add them.
  return config


def _pool_reference(x, pool, stride):
  """cuda-convnet pooling written out: windows start at 0, stride, ...; clipped at the edge."""
  n = x.shape[1]
  out = -(-(n - pool) // stride) + 1
  y = np.empty((x.shape[0], out, out, x.shape[3]), x.dtype)
  for i in range(out):
    for j in range(out):
      y[:, i, j] = x[:, i * stride:i * stride + pool, j * stride:j * stride + pool].max(axis=(1, 2))
  return y


def test_spatial_sizes_are_those_of_the_original():
  # (input, kernel, pad, pool, stride, detector, pooled) per layer: 32 -> 16 -> 7 -> 5.
  sizes = [(32, 8, 4, 4, 2, 33, 16), (16, 8, 3, 4, 2, 15, 7), (7, 5, 3, 2, 2, 9, 5)]
  for size, k, pad, pool, stride, detector, pooled in sizes:
    assert layers.conv_output_size(size, k, pad) == detector
    assert layers.pool_output_size(detector, pool, stride) == pooled
  # A VALID pool would drop the partial last window: 33 -> 15, and the next layers would differ.
  assert (33 - 4) // 2 + 1 == 15
  d = models.build_discriminator(_config().model)
  params = jax.eval_shape(d.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))['params']
  # Maxout 500x5 reads the last pooled map: 5 * 5 positions of 192 channels.
  assert params['h0']['kernel'].shape == (5 * 5 * 192, 500 * 5)


@pytest.mark.parametrize('size, pool, stride', [(33, 4, 2), (15, 4, 2), (9, 2, 2), (8, 3, 3)])
def test_max_pool_clips_windows_at_the_edge(size, pool, stride):
  x = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype(np.float32)
  got = np.asarray(layers.cuda_convnet_max_pool(jnp.asarray(x), pool, stride))
  np.testing.assert_array_equal(got, _pool_reference(x, pool, stride))


def test_pool_larger_than_map_is_an_error():
  with pytest.raises(ValueError, match='does not fit a 3x3 feature map'):
    layers.pool_output_size(3, 4, 2)


@pytest.mark.parametrize('tied, pad', [(False, 0), (True, 0), (False, 1)])
def test_deconv_is_the_transpose_of_a_strided_convolution(tied, pad):
  """out[s*i + a, s*j + b] += x[i, j] @ w[a, b], cropped by pad, plus the bias."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 4, 4, 6)).astype(np.float32)
  layer = layers.Deconv(3, (5, 5), (3, 3), pad=pad, tied_bias=tied)
  params = layer.init(jax.random.key(0), x)
  size = 3 * (4 - 1) - 2 * pad + 5
  bias_shape = (3,) if tied else (size, size, 3)
  chex.assert_shape(params['params']['bias'], bias_shape)
  w = rng.normal(size=(5, 5, 6, 3)).astype(np.float32)
  b = rng.normal(size=bias_shape).astype(np.float32)
  got = layer.apply({'params': {'kernel': w, 'bias': b}}, x)
  full = np.zeros((2, 3 * 3 + 5, 3 * 3 + 5, 3), np.float32)
  for i in range(4):
    for j in range(4):
      full[:, 3 * i:3 * i + 5, 3 * j:3 * j + 5] += np.einsum('nc,abco->nabo', x[:, i, j], w)
  want = full[:, pad:full.shape[1] - pad, pad:full.shape[2] - pad] + b
  chex.assert_shape(got, (2, size, size, 3))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_generator_outputs_32x32_with_one_bias_per_channel_and_position():
  g = models.DeconvGenerator(hidden=(16, 400), activations=('relu', 'sigmoid'),
                             hidden_inits=('uniform:0.05',) * 2, hidden_bias=(0.0, 0.0),
                             feature_shape=(10, 10, 4), image_shape=(32, 32, 3))
  z = jax.random.normal(jax.random.key(1), (5, 100))
  params = jax.jit(g.init)(jax.random.key(0), z)
  chex.assert_shape(g.apply(params, z), (5, 32, 32, 3))
  out = params['params']['out']
  chex.assert_shape([out['kernel'], out['bias']], [(5, 5, 4, 3), (32, 32, 3)])
  # With a zero kernel every sample is exactly the bias image: each position has its own bias.
  bias = jax.random.normal(jax.random.key(2), (32, 32, 3))
  params['params']['out'] = {'kernel': jnp.zeros_like(out['kernel']), 'bias': bias}
  samples = g.apply(params, z)
  np.testing.assert_array_equal(samples, jnp.broadcast_to(bias, samples.shape))


def test_bias_from_marginals_fills_the_untied_bias_per_position():
  g = models.DeconvGenerator(hidden=(8, 400), activations=('relu', 'sigmoid'),
                             hidden_inits=('uniform:0.05',) * 2, hidden_bias=(0.0, 0.0),
                             feature_shape=(10, 10, 4), image_shape=(32, 32, 3),
                             output_activation='sigmoid')
  params = jax.jit(g.init)(jax.random.key(0), jnp.zeros((1, 100)))
  images = np.random.default_rng(0).uniform(0.05, 0.95, (6, 32, 32, 3)).astype(np.float32)
  bias = models.output_bias_from_marginals(params, images)['params']['out']['bias']
  mean = images.mean(axis=0)
  np.testing.assert_allclose(bias, np.log(mean / (1 - mean)), rtol=1e-4, atol=1e-5)


def test_full_size_models_shapes_and_parameter_counts():
  config = _config()
  g = models.build_generator(config.model, (32, 32, 3))
  d = models.build_discriminator(config.model)
  g_params = jax.eval_shape(g.init, jax.random.key(0), jnp.zeros((1, 100)))
  d_params = jax.eval_shape(d.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  shapes = jax.tree.map(lambda a: a.shape, g_params['params'])
  assert shapes == {'h0': {'kernel': (100, 8000), 'bias': (8000,)},
                    'h1': {'kernel': (8000, 8000), 'bias': (8000,)},
                    'out': {'kernel': (5, 5, 80, 3), 'bias': (32, 32, 3)}}
  shapes = jax.tree.map(lambda a: a.shape, d_params['params'])
  assert shapes == {'conv0': {'kernel': (8, 8, 3, 64), 'bias': (64,)},
                    'conv1': {'kernel': (8, 8, 32, 64), 'bias': (64,)},
                    'conv2': {'kernel': (5, 5, 32, 384), 'bias': (384,)},
                    'h0': {'kernel': (4800, 2500), 'bias': (2500,)},
                    'y': {'kernel': (500, 1), 'bias': (1,)}}
  assert state_lib.param_count(g_params) == 808_000 + 64_008_000 + 6_000 + 3_072
  assert state_lib.param_count(d_params) == 12_352 + 131_136 + 307_584 + 12_002_500 + 501
  out = jax.eval_shape(g.apply, g_params, jnp.zeros((7, 100)))
  assert out.shape == (7, 32, 32, 3)


def _tiny_d(**kw):
  args = dict(conv_channels=(2,), conv_pieces=2, conv_kernels=(1,), conv_pads=(0,),
              conv_pools=(1,), conv_pool_strides=(1,), units=(), pieces=5)
  args.update(kw)
  return models.MaxoutConvDiscriminator(**args)


def test_maxout_takes_consecutive_channels_as_pieces():
  d = _tiny_d()
  x = jnp.zeros((1, 1, 1, 3))
  params = {'params': {
      'conv0': {'kernel': jnp.zeros((1, 1, 3, 4)), 'bias': jnp.array([1.0, 5.0, 3.0, 2.0])},
      'y': {'kernel': jnp.array([[1.0], [10.0]]), 'bias': jnp.zeros((1,))}}}
  # Channel c is the max of channels 2c and 2c + 1: (max(1, 5), max(3, 2)) = (5, 3).
  np.testing.assert_allclose(d.apply(params, x), [5.0 + 30.0])


def test_dropout_masks_depend_only_on_the_example():
  d = _tiny_d(conv_channels=(4,), conv_kernels=(3,), conv_pads=(1,), conv_pools=(2,),
              conv_pool_strides=(2,))
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
  keys = jax.random.split(jax.random.key(1), 4)
  params = jax.jit(d.init)(jax.random.key(2), x)
  apply = jax.jit(d.apply)
  full = apply(params, x, keys)
  # Each example on its own (a batch of one), mapped over the examples.
  alone = jax.jit(jax.vmap(lambda xi, ki: d.apply(params, xi[None], ki[None])[0]))(x, keys)
  np.testing.assert_allclose(full, alone, rtol=1e-5, atol=1e-6)
  clean = apply(params, x)
  assert not np.allclose(full, clean)  # Dropout is on with keys ...
  no_drop = jax.jit(d.clone(input_keep=1.0, hidden_keep=1.0).apply)(params, x, keys)
  np.testing.assert_allclose(no_drop, clean, rtol=1e-6)  # ... and only dropout differs.


def test_bad_conv_configs_are_rejected():
  config = _config()
  validation.validate(config, 1)
  config.model.d_conv_pads = (4, 3)
  with pytest.raises(validation.ConfigError, match='same length'):
    validation.validate(config, 1)
  config = _config()
  config.model.g_reshape = (9, 9, 80)
  with pytest.raises(validation.ConfigError, match=r'maps config.model.g_reshape=\(9, 9, 80\) '
                     r'to \(29, 29\)'):
    models.build_generator(config.model, (32, 32, 3))
  config = _config()
  config.model.g_reshape = (10, 10, 40)
  with pytest.raises(validation.ConfigError, match='holds 4000 units'):
    models.build_generator(config.model, (32, 32, 3))
  config = _config()
  config.model.g_output_bias_from_marginals = True
  with pytest.raises(validation.ConfigError, match="needs g_output_activation='sigmoid'"):
    validation.validate(config, 1)


def test_trains_and_writes_samples_under_mock_data(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  config = _config()
  m = config.model
  m.g_hidden, m.g_reshape = (16, 400), (10, 10, 4)
  m.d_conv_channels, m.d_units = (4, 4, 8), (8,)
  t = config.train
  t.batch_size, t.num_steps, t.steps_per_call = 8, 2, 1
  t.log_every = t.sample_every = t.checkpoint_every = 2
  with tfds.testing.mock_data(num_examples=16):
    result = gan_jax.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(result['d_loss']) and np.isfinite(result['g_loss'])
  assert os.path.exists(tmp_path / 'samples' / 'step_00000002.png')
