"""The train step: both update rules against hand-written references, tracing, multi-device."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_mnist_config
from gan_jax import experiment
from gan_jax import losses
from gan_jax import models
from gan_jax import optim
from gan_jax import train_step

B = 8


def _setup(update_rule='simultaneous', k=1, generator_loss='non_saturating', batch=B):
  config = tiny_mnist_config(update_rule=update_rule, k_steps=k, generator_loss=generator_loss,
                             batch_size=batch)
  exp = experiment.build(config, (28, 28, 1), 1000)
  images = np.asarray(jax.random.uniform(jax.random.key(7), (k, batch, 28, 28, 1)))
  state = exp.initial_state(images.reshape(-1, 28, 28, 1))
  return config, exp, state, jnp.asarray(images)


def _keys(key, salt, n):
  sub = jax.random.fold_in(key, salt)
  return jnp.stack([jax.random.fold_in(sub, i) for i in range(n)])


def _noise(exp, key, n):
  return jnp.stack([models.sample_prior(k, (exp.spec.z_dim,), exp.spec.prior)
                    for k in _keys(key, 0, n)])


def _sgd(params, grads, velocity, lr, m):
  velocity = jax.tree.map(lambda v, g: m * v - lr * g, velocity, grads)
  return jax.tree.map(lambda p, v: p + v, params, velocity), velocity


@pytest.mark.parametrize('generator_loss', ['non_saturating', 'minimax'])
def test_simultaneous_matches_reference(generator_loss):
  config, exp, state, batch = _setup(generator_loss=generator_loss)
  rng = jax.random.key(3)
  step = exp.single_step(axis_name=None)
  new_state, metrics = jax.jit(step)(state, batch, rng)

  # Reference: two separate gradients at the current parameters, the same z and masks.
  key = jax.random.fold_in(rng, 0)
  z = _noise(exp, key, B)
  real_keys, fake_keys = _keys(key, 1, B), _keys(key, 2, B)

  def d_loss(d_params):
    fake = exp.g_model.apply(state.g_params, z)
    return losses.discriminator_loss(exp.d_model.apply(d_params, batch[0], real_keys),
                                     exp.d_model.apply(d_params, fake, fake_keys))

  def g_loss(g_params):
    fake_logits = exp.d_model.apply(state.d_params, exp.g_model.apply(g_params, z), fake_keys)
    return losses.generator_loss(fake_logits, generator_loss)

  zeros = lambda p: jax.tree.map(jnp.zeros_like, p)
  d_ref, _ = _sgd(state.d_params, jax.grad(d_loss)(state.d_params), zeros(state.d_params), 0.1,
                  0.5)
  g_ref, _ = _sgd(state.g_params, jax.grad(g_loss)(state.g_params), zeros(state.g_params), 0.1,
                  0.5)
  chex.assert_trees_all_close(new_state.d_params, d_ref, atol=1e-6)
  chex.assert_trees_all_close(new_state.g_params, g_ref, atol=1e-6)
  np.testing.assert_allclose(metrics['d_loss'], d_loss(state.d_params), rtol=1e-5)
  np.testing.assert_allclose(metrics['g_loss'], g_loss(state.g_params), rtol=1e-5)
  assert int(new_state.step) == 1 and bool(metrics['finite'])
  # The update did something.
  assert not np.array_equal(new_state.g_params['params']['out']['kernel'],
                         state.g_params['params']['out']['kernel'])


def test_alternating_matches_reference():
  k = 2
  config, exp, state, batch = _setup('alternating', k=k)
  rng = jax.random.key(5)
  step = exp.single_step(axis_name=None)
  new_state, metrics = jax.jit(step)(state, batch, rng)

  key = jax.random.fold_in(rng, 0)
  lr = optim.learning_rate_schedule(optim.hypers(config.optim))
  d_params, velocity = state.d_params, jax.tree.map(jnp.zeros_like, state.d_params)
  for i in range(k):  # k D steps, each with a fresh minibatch, fresh z and fresh masks.
    sub = jax.random.fold_in(key, i)
    fake = exp.g_model.apply(state.g_params, _noise(exp, sub, B))

    def d_loss(p, x=batch[i], fake=fake, sub=sub):
      return losses.discriminator_loss(exp.d_model.apply(p, x, _keys(sub, 1, B)),
                                       exp.d_model.apply(p, fake, _keys(sub, 2, B)))

    d_params, velocity = _sgd(d_params, jax.grad(d_loss)(d_params), velocity, lr(i), 0.5)
  g_key = jax.random.fold_in(key, k)  # Then one G step through the updated D.

  def g_loss(g_params):
    fake = exp.g_model.apply(g_params, _noise(exp, g_key, B))
    return losses.generator_loss(exp.d_model.apply(d_params, fake, _keys(g_key, 2, B)),
                                 'non_saturating')

  g_ref, _ = _sgd(state.g_params, jax.grad(g_loss)(state.g_params),
                  jax.tree.map(jnp.zeros_like, state.g_params), lr(0), 0.5)
  chex.assert_trees_all_close(new_state.d_params, d_params, atol=1e-6)
  chex.assert_trees_all_close(new_state.g_params, g_ref, atol=1e-6)
  np.testing.assert_allclose(metrics['g_loss'], g_loss(state.g_params), rtol=1e-5)
  assert int(new_state.d_opt_state.count) == k and int(new_state.g_opt_state.count) == 1


@pytest.mark.parametrize('update_rule', ['simultaneous', 'alternating'])
def test_step_traces_once(update_rule):
  _, exp, state, batch = _setup(update_rule)
  step = exp.single_step(axis_name=None)
  chex.clear_trace_counter()  # Each parametrisation wraps the same `train_step.fixed` lambda.
  jitted = jax.jit(chex.assert_max_traces(step, n=1))
  rng = jax.random.key(0)
  for _ in range(3):
    state, _ = jitted(state, batch, rng)
  assert int(state.step) == 3


@pytest.mark.parametrize('update_rule', ['simultaneous', 'alternating'])
def test_four_devices_equal_one(update_rule):
  assert jax.local_device_count() == 4, 'tests/conftest.py forces 4 CPU devices'
  k = 2 if update_rule == 'alternating' else 1
  _, exp, state, batch = _setup(update_rule, k=k)
  rng = jax.random.key(11)
  single = exp.single_step(axis_name=None)
  s1, m1 = jax.jit(single)(state, batch, rng)
  s1, m1 = jax.jit(single)(s1, batch[::-1], rng)

  multi = exp.single_step()
  p_step = jax.pmap(multi, axis_name='batch', in_axes=(None, 0, None), out_axes=(None, None))
  shard = lambda b: b.reshape(k, 4, B // 4, 28, 28, 1).transpose(1, 0, 2, 3, 4, 5)
  s4, m4 = p_step(state, shard(batch), rng)
  s4, m4 = p_step(s4, shard(batch[::-1]), rng)
  chex.assert_trees_all_close(s4.g_params, s1.g_params, atol=2e-6)
  chex.assert_trees_all_close(s4.d_params, s1.d_params, atol=2e-6)
  for name in ('d_loss', 'g_loss', 'value', 'd_real', 'd_fake'):
    np.testing.assert_allclose(m4[name], m1[name], rtol=1e-5, err_msg=name)


def test_chunk_equals_single_steps():
  _, exp, state, _ = _setup()
  images = jax.random.uniform(jax.random.key(1), (40, 28, 28, 1))
  indices = jnp.arange(3 * B).reshape(3, 1, B) % 40
  step = exp.single_step(axis_name=None)
  rng = jax.random.key(2)
  chunked, metrics = jax.jit(train_step.make_train_chunk(step))(state, images, indices, rng)
  s = state
  for i in range(3):
    s, _ = jax.jit(step)(s, images[indices[i]], rng)
  chex.assert_trees_all_close(chunked, s, atol=1e-6)
  chex.assert_shape(metrics['d_loss'], (3,))


def test_non_finite_is_flagged():
  _, exp, state, batch = _setup()
  bad = state.replace(g_params=jax.tree.map(lambda p: p * jnp.nan, state.g_params))
  step = exp.single_step(axis_name=None)
  _, metrics = jax.jit(step)(bad, batch, jax.random.key(0))
  assert not bool(metrics['finite'])


def test_unknown_update_rule():
  _, exp, _, _ = _setup()
  spec = train_step.StepSpec(update='sequential')
  with pytest.raises(ValueError, match="Unknown update rule 'sequential'"):
    train_step.make_train_step(exp.g_model, exp.d_model, exp.optimizer, spec)
