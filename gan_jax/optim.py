"""Optimisers: pylearn2's SGD with momentum and its schedules, Adam, and max-norm projection.

pylearn2's `Momentum` learning rule keeps the velocity in parameter units,
    v <- m_t * v - lr_t * g;   theta <- theta + v,
which differs from optax.sgd's `v <- m v + g; theta <- theta - lr v` whenever lr or m change over
time (and here both do, every step and every epoch), so it is written out exactly.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ('sgd_momentum', 'adam')


class Hypers(NamedTuple):
  """The optimiser's numbers that keep every shape, as the schedules and updates read them.

  Python floats for a run of one; a run of several members (config.sweep) passes each member's
  own as traced scalars, so one compiled program trains them all. Built by `hypers`.
  """
  learning_rate: chex.Numeric
  min_lr: chex.Numeric
  log_lr_decay: chex.Numeric  # log(lr_decay_factor), taken in float64 (see `hypers`).
  init_momentum: chex.Numeric
  final_momentum: chex.Numeric
  adam_b1: chex.Numeric
  adam_b2: chex.Numeric


def hypers(optim_config) -> Hypers:
  """`config.optim`'s shape-keeping numbers, as Python floats."""
  c = optim_config
  # log(1.000004) in float64: float32 cannot hold 1.000004 to better than ~1e-2 relative in the log.
  return Hypers(float(c.learning_rate), float(c.min_lr), math.log(c.lr_decay_factor),
                float(c.init_momentum), float(c.final_momentum), float(c.adam_b1),
                float(c.adam_b2))


def learning_rate_schedule(h: Hypers) -> Callable[[chex.Numeric], chex.Numeric]:
  """lr_t = max(lr / decay_factor**t, min_lr): pylearn2's ExponentialDecay, one decay per update."""

  def schedule(count):
    lr = h.learning_rate * jnp.exp(-jnp.asarray(count, jnp.float32) * h.log_lr_decay)
    return jnp.maximum(lr, h.min_lr)

  return schedule


def momentum_schedule(h: Hypers, optim_config, examples_per_update: int,
                      epoch_size: int) -> Callable[[chex.Numeric], chex.Numeric]:
  """pylearn2's MomentumAdjustor: linear in the epoch from `start` to `saturate`, then constant.

  The epoch is 1-based and counted in examples: update t belongs to epoch
  floor(t * examples_per_update / epoch_size) + 1. The epochs come from `optim_config`, the
  momenta from `h`.
  """
  c = optim_config
  span = max(c.momentum_saturate_epoch - c.momentum_start_epoch, 1)

  def schedule(count):
    epoch = jnp.floor(jnp.asarray(count, jnp.float32) * examples_per_update / epoch_size) + 1
    alpha = jnp.clip((epoch - c.momentum_start_epoch) / span, 0.0, 1.0)
    return h.init_momentum + alpha * (h.final_momentum - h.init_momentum)

  return schedule


class MomentumState(NamedTuple):
  count: chex.Array
  velocity: optax.Updates


def pylearn2_momentum(lr_fn, momentum_fn) -> optax.GradientTransformation:
  """SGD with classical momentum exactly as pylearn2: v <- m v - lr g, update = v."""

  def init(params):
    return MomentumState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params))

  def update(grads, state, params=None):
    del params
    lr, m = lr_fn(state.count), momentum_fn(state.count)
    velocity = jax.tree.map(lambda v, g: m * v - lr * g, state.velocity, grads)
    return velocity, MomentumState(state.count + 1, velocity)

  return optax.GradientTransformation(init, update)


def build_optimizer(optim_config, examples_per_update: int, epoch_size: int,
                    h: Hypers | None = None) -> optax.GradientTransformation:
  """Builds one network's optimiser from `config.optim` (G and D each get their own).

  `h` overrides the config's shape-keeping numbers (`hypers(optim_config)` when None): the train
  step builds each member's optimiser from its own, traced when it trains several.
  """
  h = hypers(optim_config) if h is None else h
  lr_fn = learning_rate_schedule(h)
  if optim_config.name == 'sgd_momentum':
    return pylearn2_momentum(lr_fn, momentum_schedule(h, optim_config, examples_per_update,
                                                      epoch_size))
  if optim_config.name == 'adam':
    return optax.adam(lr_fn, b1=h.adam_b1, b2=h.adam_b2)
  raise ValueError(f"Unknown optimiser '{optim_config.name}': choose one of {OPTIMIZERS}.")


def max_col_norm(params, max_norm: float):
  """pylearn2's `max_col_norm`: rescales each weight matrix column whose L2 norm exceeds max_norm.

  Applied to every Dense kernel (2-D, columns = output units) and conv kernel (norm over all
  input axes of each output channel) after each update; biases are left alone.
  """
  if not max_norm:
    return params

  def project(path, w):
    if getattr(path[-1], 'key', None) != 'kernel' or w.ndim < 2:
      return w
    norms = jnp.sqrt(jnp.sum(jnp.square(w), axis=tuple(range(w.ndim - 1)), keepdims=True))
    # pylearn2's exact form: w * clip(norm, 0, max) / (1e-7 + norm).
    return w * (jnp.minimum(norms, max_norm) / (1e-7 + norms))

  return jax.tree_util.tree_map_with_path(project, params)
