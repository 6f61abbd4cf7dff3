"""Models: shapes, parameter counts, initialisation, maxout and dropout semantics."""

import chex
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_mnist_config
from experiments import mnist
from gan_jax import layers
from gan_jax import models


def _full_models():
  config = mnist.get_config()
  return (models.build_generator(config.model, (28, 28, 1)),
          models.build_discriminator(config.model))


def test_mnist_shapes_and_parameter_counts():
  g, d = _full_models()
  z = jnp.zeros((3, 100))
  g_params = g.init(jax.random.key(0), z)
  d_params = d.init(jax.random.key(1), jnp.zeros((3, 28, 28, 1)))
  chex.assert_shape(g.apply(g_params, z), (3, 28, 28, 1))
  chex.assert_shape(d.apply(d_params, jnp.zeros((3, 28, 28, 1))), (3,))
  count = lambda p: sum(x.size for x in jax.tree.leaves(p))
  # G: 100->1200->1200->784; D: 784->240x5, 240->240x5, 240->1.
  assert count(g_params) == 100 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 784 + 784
  assert count(d_params) == 784 * 1200 + 1200 + 240 * 1200 + 1200 + 240 + 1


def test_initialisation_ranges():
  g, d = _full_models()
  g_params = g.init(jax.random.key(0), jnp.zeros((1, 100)))['params']
  d_params = d.init(jax.random.key(1), jnp.zeros((1, 28, 28, 1)))['params']
  for layer in ('h0', 'h1', 'out'):
    w = np.asarray(g_params[layer]['kernel'])
    assert np.abs(w).max() <= 0.05 and np.abs(w).max() > 0.049
    assert np.all(np.asarray(g_params[layer]['bias']) == 0)
  for layer in ('h0', 'h1', 'y'):
    w = np.asarray(d_params[layer]['kernel'])
    assert np.abs(w).max() <= 0.005 and np.abs(w).max() > 0.0049
    assert np.all(np.asarray(d_params[layer]['bias']) == 0)


def test_output_bias_from_marginals():
  g, _ = _full_models()
  params = g.init(jax.random.key(0), jnp.zeros((1, 100)))
  images = np.zeros((4, 28, 28, 1), np.float32)
  images[:2, 0, 0, 0] = 1.0  # pixel 0 has mean 0.5; all others 0 (clipped to 1e-7).
  new = models.output_bias_from_marginals(params, images)
  bias = np.asarray(new['params']['out']['bias'])
  np.testing.assert_allclose(bias[0], 0.0, atol=1e-6)
  np.testing.assert_allclose(bias[1], np.log(1e-7 / (1 - 1e-7)), rtol=1e-5)
  # The original tree is untouched.
  assert np.all(np.asarray(params['params']['out']['bias']) == 0)


def test_sparse_init_has_k_nonzeros_per_unit():
  w = layers.sparse_normal(5)(jax.random.key(0), (40, 7))
  nonzero = np.count_nonzero(np.asarray(w), axis=0)
  np.testing.assert_array_equal(nonzero, 5)


def test_maxout_takes_max_over_contiguous_pieces():
  d = models.MaxoutDiscriminator(units=(2,), pieces=3, input_keep=1.0, hidden_keep=1.0)
  x = jnp.ones((1, 1))
  params = d.init(jax.random.key(0), x)
  w = np.zeros((1, 6), np.float32)
  w[0] = [1, 5, 2, -1, -3, -2]  # unit 0: pieces 1,5,2 -> 5; unit 1: -1,-3,-2 -> -1.
  params['params']['h0']['kernel'] = jnp.asarray(w)
  params['params']['y']['kernel'] = jnp.asarray([[1.0], [10.0]])
  np.testing.assert_allclose(d.apply(params, x), [5.0 + 10.0 * -1.0])


def test_example_dropout_keep_rate_scaling_and_independence():
  x = jnp.ones((64, 2000))
  keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(0), jnp.arange(64))
  y = np.asarray(layers.example_dropout(x, 0.8, keys, salt=0))
  assert set(np.unique(y)) == {0.0, 1.25}
  assert abs((y > 0).mean() - 0.8) < 0.01
  y2 = np.asarray(layers.example_dropout(x, 0.5, keys, salt=1))
  assert set(np.unique(y2)) == {0.0, 2.0}
  assert abs((y2 > 0).mean() - 0.5) < 0.01
  # Another salt gives another mask; the same key and salt the same one.
  assert not np.array_equal(y > 0, np.asarray(layers.example_dropout(x, 0.8, keys, 5)) > 0)
  np.testing.assert_array_equal(y, layers.example_dropout(x, 0.8, keys, 0))
  # A sub-batch with the same per-example keys sees the same masks (device-count invariance).
  np.testing.assert_array_equal(y[10:20], layers.example_dropout(x[10:20], 0.8, keys[10:20], 0))
  # No keys: evaluation, no dropout.
  np.testing.assert_array_equal(layers.example_dropout(x, 0.8, None, 0), x)


def test_discriminator_dropout_only_with_keys():
  config = tiny_mnist_config()
  d = models.build_discriminator(config.model)
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
  params = d.init(jax.random.key(1), x)
  keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(2), jnp.arange(4))
  eval_out = d.apply(params, x)
  np.testing.assert_array_equal(eval_out, d.apply(params, x))
  assert not np.allclose(eval_out, d.apply(params, x, keys))


def test_priors():
  u = np.asarray(models.sample_prior(jax.random.key(0), (20000,), 'uniform'))
  assert u.min() >= -np.sqrt(3) and u.max() <= np.sqrt(3)
  assert abs(u.var() - 1.0) < 0.03
  n = np.asarray(models.sample_prior(jax.random.key(0), (20000,), 'gaussian'))
  assert abs(n.std() - 1.0) < 0.03
  with pytest.raises(ValueError, match='Unknown prior'):
    models.sample_prior(jax.random.key(0), (2,), 'cauchy')


def test_maxout_gradient_is_theanos():
  h = jnp.array([[[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]])
  np.testing.assert_array_equal(layers.maxout(h), [[3.0, 2.0]])
  g = jax.grad(lambda h: jnp.sum(layers.maxout(h) * jnp.array([[10.0, 1.0]])))(h)
  # The winner gets the whole gradient, each piece of a tie in full (not split).
  np.testing.assert_array_equal(g, [[[0.0, 10.0, 10.0], [1.0, 0.0, 0.0]]])


def test_bfloat16_compute_matches_float32():
  """compute_dtype='bfloat16': float32 parameters and outputs, values within bf16 rounding."""
  config = mnist.get_config()
  key = jax.random.PRNGKey(0)
  z = models.sample_prior(key, (16, 100), 'uniform')
  x = jax.random.uniform(key, (16, 28, 28, 1))
  out = {}
  for dtype in ('float32', 'bfloat16'):
    config.model.compute_dtype = dtype
    g = models.build_generator(config.model, (28, 28, 1))
    d = models.build_discriminator(config.model)
    g_params = g.init(key, z)  # Parameters do not depend on the compute dtype.
    d_params = d.init(key, x)
    chex.assert_trees_all_equal_dtypes(g_params, jax.tree.map(jnp.float32, g_params))
    images, logits = g.apply(g_params, z), d.apply(d_params, x)
    assert images.dtype == jnp.float32 and logits.dtype == jnp.float32
    out[dtype] = images, logits, jax.grad(lambda p: d.apply(p, x).sum())(d_params)
  np.testing.assert_allclose(out['bfloat16'][0], out['float32'][0], atol=2e-2)
  np.testing.assert_allclose(out['bfloat16'][1], out['float32'][1], atol=2e-2)
  assert not np.array_equal(out['bfloat16'][1], out['float32'][1])  # bf16 really ran.
  g32 = jax.flatten_util.ravel_pytree(out['float32'][2])[0]
  g16 = jax.flatten_util.ravel_pytree(out['bfloat16'][2])[0]
  assert g16.dtype == jnp.float32
  assert float(jnp.dot(g32, g16) / jnp.linalg.norm(g32) / jnp.linalg.norm(g16)) > 0.99
