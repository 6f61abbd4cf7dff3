"""GANState: everything that changes during training, as one pytree."""

from __future__ import annotations

import dataclasses
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

  `g_ema_params` is an exponential moving average of `g_params` (config.train.g_ema_decay > 0),
  or None: a None field has no leaves, so without the EMA the pytree (and what a checkpoint
  holds, see `to_tree`) is exactly that of the state before the field existed.
  """
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState
  g_ema_params: Any = None


def create_state(key: jax.Array, g_model, d_model, g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, z_dim: int, image_shape,
                 train_images: np.ndarray | None = None, g_ema: bool = False) -> GANState:
  """Initialises both networks and optimisers.

  Args:
    key: PRNG key for the weights.
    g_model, d_model: the Flax modules.
    g_tx, d_tx: their optimisers.
    z_dim: size of G's input.
    image_shape: (H, W, C) of the data.
    train_images: if given, G's output bias is set from the pixel marginals of these images.
    g_ema: whether the state carries an EMA of G, starting at G's initial parameters.

  Returns:
    The initial GANState (step 0).
  """
  g_key, d_key = jax.random.split(key)
  g_params = g_model.init(g_key, jnp.zeros((1, z_dim), jnp.float32))
  d_params = d_model.init(d_key, jnp.zeros((1, *image_shape), jnp.float32))
  if train_images is not None:
    g_params = models.output_bias_from_marginals(g_params, train_images)
  state = GANState(
      step=jnp.zeros([], jnp.int32),
      g_params=g_params,
      d_params=d_params,
      g_opt_state=g_tx.init(g_params),
      d_opt_state=d_tx.init(d_params))
  return with_g_ema(state, g_ema)


def with_g_ema(state: GANState, on: bool) -> GANState:
  """`state` with an EMA of G started at G's current parameters (on), or with none (off).

  A state that already has (or lacks) the EMA is returned as it is.
  """
  if on == (state.g_ema_params is not None):
    return state
  # A copy, not the same buffers: the training loop donates the state, leaf by leaf.
  return state.replace(g_ema_params=jax.tree.map(jnp.copy, state.g_params) if on else None)


def to_tree(state: GANState) -> dict:
  """The fields a checkpoint holds: all but those that are None.

  Leaving out the absent EMA keeps checkpoints without one in the layout written before the
  field existed, so old and new ones restore alike.
  """
  return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
          if getattr(state, f.name) is not None}


def from_tree(tree: dict) -> GANState:
  """The inverse of `to_tree`: fields missing from `tree` are None."""
  return GANState(**tree)


def stack(trees: list):
  """Pytrees of one structure stacked leaf by leaf along a new leading (seed) axis."""
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def seed_slice(tree, index: int):
  """Seed `index`'s pytree out of a stacked one (see `stack`)."""
  return jax.tree.map(lambda leaf: leaf[index], tree)


def param_count(params) -> int:
  """Number of scalar parameters in a pytree."""
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
