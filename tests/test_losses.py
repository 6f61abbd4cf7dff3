"""Losses against hand-computed values."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses


def _sig(x):
  return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


REAL = np.array([2.0, -1.0, 0.5], np.float32)
FAKE = np.array([-3.0, 0.0, 1.5], np.float32)


def test_discriminator_loss():
  expected = 0.5 * (-np.mean(np.log(_sig(REAL))) - np.mean(np.log(1 - _sig(FAKE))))
  np.testing.assert_allclose(losses.discriminator_loss(REAL, FAKE), expected, rtol=1e-6)


def test_generator_losses():
  np.testing.assert_allclose(losses.generator_loss(FAKE, 'non_saturating'),
                             -np.mean(np.log(_sig(FAKE))), rtol=1e-6)
  np.testing.assert_allclose(losses.generator_loss(FAKE, 'minimax'),
                             np.mean(np.log(1 - _sig(FAKE))), rtol=1e-6)
  with pytest.raises(ValueError, match='Unknown generator loss'):
    losses.generator_loss(FAKE, 'wasserstein')


def test_value_and_metrics():
  v = np.mean(np.log(_sig(REAL))) + np.mean(np.log(1 - _sig(FAKE)))
  m = losses.discriminator_metrics(REAL, FAKE)
  np.testing.assert_allclose(m['value'], v, rtol=1e-6)
  np.testing.assert_allclose(m['value'], -2 * losses.discriminator_loss(REAL, FAKE), rtol=1e-6)
  np.testing.assert_allclose(m['d_real'], _sig(REAL).mean(), rtol=1e-6)
  np.testing.assert_allclose(m['d_fake'], _sig(FAKE).mean(), rtol=1e-6)


def test_stable_for_saturated_logits():
  big = jnp.array([200.0, -200.0])
  for value in (losses.discriminator_loss(big, big), losses.generator_loss(big, 'minimax'),
                losses.generator_loss(big, 'non_saturating'), losses.value(big, -big)):
    assert np.isfinite(value)
  np.testing.assert_allclose(losses.generator_loss(jnp.array([-200.0]), 'non_saturating'), 200.0)
