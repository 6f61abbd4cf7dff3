"""The GAN objectives, all computed from D's logits for numerical stability.

With D(x) = sigmoid(l): log D = -softplus(-l) and log(1 - D) = -softplus(l), so no log of a
saturated sigmoid is ever taken.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

GENERATOR_LOSSES = ('non_saturating', 'minimax')


def discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
  """0.5 * (BCE(D(x), 1) + BCE(D(G(z)), 0)); minimising it ascends V(D, G)."""
  return 0.5 * (jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits)))


def generator_loss(fake_logits: Array, kind: str) -> Array:
  """G's loss on D's logits of generated samples.

  Args:
    fake_logits: D's logits on G(z).
    kind: 'non_saturating' minimises -log D(G(z)) (what the original code ran, strong gradients
      early in training); 'minimax' minimises log(1 - D(G(z))) (the paper's equation 1).

  Returns:
    The scalar loss.
  """
  if kind == 'non_saturating':
    return jnp.mean(jax.nn.softplus(-fake_logits))
  if kind == 'minimax':
    return -jnp.mean(jax.nn.softplus(fake_logits))
  raise ValueError(f"Unknown generator loss '{kind}': choose one of {GENERATOR_LOSSES}.")


def value(real_logits: Array, fake_logits: Array) -> Array:
  """V(D, G) = E log D(x) + E log(1 - D(G(z))) on this minibatch."""
  return -jnp.mean(jax.nn.softplus(-real_logits)) - jnp.mean(jax.nn.softplus(fake_logits))


def discriminator_metrics(real_logits: Array, fake_logits: Array) -> dict[str, Array]:
  """The quantities logged for D: V(D, G), mean D(x) and mean D(G(z))."""
  return {
      'value': value(real_logits, fake_logits),
      'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
      'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),
  }
