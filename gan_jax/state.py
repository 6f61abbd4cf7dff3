"""GANState: everything that changes during training, as one pytree."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import models


@flax.struct.dataclass
class GANState:
  """G's and D's parameters and optimiser states, and one step counter.

  `step` counts generator updates (outer iterations of Algorithm 1); the data order and all
  randomness are derived from (seed, step), so this pytree is all a checkpoint needs for an
  exact resume.
  """
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState


def create_state(key: jax.Array, g_model, d_model, g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, z_dim: int, image_shape,
                 train_images: np.ndarray | None = None) -> GANState:
  """Initialises both networks and optimisers.

  Args:
    key: PRNG key for the weights.
    g_model, d_model: the Flax modules.
    g_tx, d_tx: their optimisers.
    z_dim: size of G's input.
    image_shape: (H, W, C) of the data.
    train_images: if given, G's output bias is set from the pixel marginals of these images.

  Returns:
    The initial GANState (step 0).
  """
  g_key, d_key = jax.random.split(key)
  g_params = g_model.init(g_key, jnp.zeros((1, z_dim), jnp.float32))
  d_params = d_model.init(d_key, jnp.zeros((1, *image_shape), jnp.float32))
  if train_images is not None:
    g_params = models.output_bias_from_marginals(g_params, train_images)
  return GANState(
      step=jnp.zeros([], jnp.int32),
      g_params=g_params,
      d_params=d_params,
      g_opt_state=g_tx.init(g_params),
      d_opt_state=d_tx.init(d_params))


def param_count(params) -> int:
  """Number of scalar parameters in a pytree."""
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
