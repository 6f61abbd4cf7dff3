"""Optimisers: pylearn2's momentum rule and schedules, max-norm projection."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments import mnist
from gan_jax import optim


def test_schedules_match_mnist_yaml():
  c = mnist.get_config().optim
  lr = optim.learning_rate_schedule(optim.hypers(c))
  np.testing.assert_allclose(lr(0), 0.1, rtol=1e-6)
  np.testing.assert_allclose(lr(1000), 0.1 / 1.000004 ** 1000, rtol=1e-5)
  np.testing.assert_allclose(lr(10_000_000), 1e-6, rtol=1e-6)  # the floor
  mom = optim.momentum_schedule(optim.hypers(c), c, examples_per_update=100, epoch_size=50_000)
  np.testing.assert_allclose(mom(0), 0.5)        # epoch 1
  np.testing.assert_allclose(mom(499), 0.5)      # still epoch 1
  np.testing.assert_allclose(mom(500), 0.5 + 0.2 / 249, rtol=1e-5)  # epoch 2
  np.testing.assert_allclose(mom(249 * 500), 0.7, rtol=1e-6)  # epoch 250
  np.testing.assert_allclose(mom(10**7), 0.7, rtol=1e-6)


def test_pylearn2_momentum_update():
  tx = optim.pylearn2_momentum(lambda t: 0.1 / (t + 1.0), lambda t: 0.5 + 0.1 * t)
  p = {'w': jnp.array([1.0, 2.0])}
  state = tx.init(p)
  g1, g2 = jnp.array([1.0, -1.0]), jnp.array([0.5, 0.5])
  u1, state = tx.update({'w': g1}, state)
  u2, state = tx.update({'w': g2}, state)
  v1 = -0.1 * g1
  v2 = 0.6 * v1 - 0.05 * g2  # v <- m_t v - lr_t g, with lr and m of the second step.
  np.testing.assert_allclose(u1['w'], v1, rtol=1e-6)
  np.testing.assert_allclose(u2['w'], v2, rtol=1e-6)
  assert int(state.count) == 2


def test_max_col_norm():
  w = np.array([[3.0, 0.1], [4.0, 0.1]], np.float32)  # column norms 5 and ~0.14
  params = {'layer': {'kernel': jnp.asarray(w), 'bias': jnp.array([100.0, 100.0])}}
  out = optim.max_col_norm(params, 1.0)
  k = np.asarray(out['layer']['kernel'])
  np.testing.assert_allclose(np.linalg.norm(k[:, 0]), 1.0, rtol=1e-5)
  np.testing.assert_allclose(k[:, 1], w[:, 1], rtol=1e-5)
  np.testing.assert_array_equal(out['layer']['bias'], params['layer']['bias'])
  assert optim.max_col_norm(params, 0.0) is params


def test_adam_builds_and_steps():
  c = mnist.get_config().optim
  c.name = 'adam'
  tx = optim.build_optimizer(c, 100, 50_000)
  p = {'w': jnp.ones(3)}
  u, _ = tx.update({'w': jnp.ones(3)}, tx.init(p), p)
  assert np.all(np.asarray(u['w']) < 0)
