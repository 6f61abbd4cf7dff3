"""What a config builds: G and D, their optimisers, the step's settings and G's sampler.

Training, evaluation and figures all start from `build(config, ...)`, so the three can never
disagree about the models a config describes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

from gan_jax import models
from gan_jax import optim
from gan_jax import parallel
from gan_jax import state as state_lib
from gan_jax import train_step
from gan_jax import workdir as workdir_lib


@dataclasses.dataclass
class Experiment:
  """Everything built from a config, shared by training, evaluation and figures.

  Attributes:
    config: the run's config.
    g_model, d_model: the Flax modules.
    optimizer: builds G's or D's optimiser from an optim.Hypers (None when built for sampling
      only); each member of a run of several gets its own numbers (`hypers`).
    spec: the train step's static settings.
    image_shape: (H, W, C) of the data.
    replicated: the sharding that puts an array whole on every device.
  """
  config: object
  g_model: object
  d_model: object
  optimizer: Callable | None
  spec: train_step.StepSpec
  image_shape: tuple
  replicated: NamedSharding

  def __post_init__(self):
    self.g_apply = jax.jit(self.g_model.apply)  # G in evaluation mode (it has no dropout).

  @property
  def members(self) -> list[workdir_lib.Member]:
    """The GANs this run trains (workdir.members): its seeds, for each swept value."""
    return workdir_lib.members(self.config)

  @property
  def seeds(self) -> list[int]:
    """Each member's seed: config.seed, ..., config.seed + config.num_seeds - 1 (per value)."""
    return [m.seed for m in self.members]

  @property
  def stacked(self) -> bool:
    """Whether the state has a leading member axis (several seeds, or a sweep)."""
    return len(self.members) > 1

  @property
  def tx(self):
    """The config's optimiser, for initialising optimiser states (their layout is the same
    whatever the numbers)."""
    return self.optimizer(optim.hypers(self.config.optim))

  def hypers(self) -> tuple[train_step.Hypers, train_step.Hypers]:
    """The step's Hypers as train_step.split_hypers gives them, (shared, own): a run of one's
    own config's (Python floats) and all None; for several members, what they share and each
    one's own numbers (its config, workdir.member_config) where they differ (a sweep's field)."""
    each = [step_hypers(workdir_lib.member_config(self.config, m.seed, m.value))
            for m in self.members]
    return train_step.split_hypers(each)

  def single_step(self, axis_name: str | None = parallel.AXIS):
    """The train step of a run of one, `step(state, batch, rng)`, its Hypers constants."""
    step = train_step.make_train_step(self.g_model, self.d_model, self.optimizer, self.spec,
                                      axis_name)
    return train_step.fixed(step, self.hypers()[0])

  @property
  def member_axis(self) -> str | None:
    """How the members' steps are laid out (config.train.member_axis, 'auto' resolved for this
    backend), or None for a run of one."""
    if not self.stacked:
      return None
    axis = self.config.train.member_axis
    if axis == 'auto':
      return 'map' if jax.default_backend() == 'cpu' else 'vmap'
    return axis

  def parallel_chunk(self):
    """The compiled training chunk over all local devices (train_step.data_parallel_chunk): a
    run of one's, or the members' (given their keys and own Hypers with each call)."""
    step = train_step.make_train_step(self.g_model, self.d_model, self.optimizer, self.spec)
    return train_step.data_parallel_chunk(step, self.hypers()[0], self.member_axis)

  def initial_state(self, train_images: np.ndarray | None) -> state_lib.GANState:
    """The freshly initialised state, on every device: each seed's as a run of that seed alone
    initialises it, stacked along a leading axis when there are several.

    `train_images` set G's output bias from the pixel marginals where the config asks for it.
    """
    bias_images = train_images if self.config.model.g_output_bias_from_marginals else None
    tx = self.tx
    states = [state_lib.create_state(jax.random.key(seed), self.g_model, self.d_model, tx, tx,
                                     self.spec.z_dim, self.image_shape, bias_images,
                                     self.spec.g_ema) for seed in self.seeds]
    state = state_lib.stack(states) if self.stacked else states[0]
    return jax.device_put(state, self.replicated)

  def g_shapes(self):
    """The shapes and dtypes of G's parameters as a checkpoint holds them (with the seed axis
    when stacked): jax.ShapeDtypeStruct leaves, nothing computed."""
    z = jax.ShapeDtypeStruct((1, self.spec.z_dim), jax.numpy.float32)
    shapes = jax.eval_shape(self.g_model.init, jax.random.key(0), z)
    if not self.stacked:
      return shapes
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct((len(self.seeds), *s.shape), s.dtype),
                        shapes)

  def generate(self, g_params, num: int, key, batch_size: int = 1000) -> np.ndarray:
    """Draws `num` samples from G in evaluation mode, as float32 [num, H, W, C] on the host."""
    out = []
    for i, start in enumerate(range(0, num, batch_size)):
      n = min(batch_size, num - start)
      z = models.sample_prior(jax.random.fold_in(key, i), (n, self.spec.z_dim), self.spec.prior)
      out.append(np.asarray(self.g_apply(g_params, z)))
    return np.concatenate(out)


def step_spec(config) -> train_step.StepSpec:
  """The train step's static settings from `config.train` and `config.model`."""
  return train_step.StepSpec(
      update=config.train.update_rule, k_steps=config.train.k_steps,
      generator_loss=config.train.generator_loss, z_dim=config.model.z_dim,
      prior=config.model.prior, max_col_norm=config.optim.max_col_norm,
      g_ema=config.train.g_ema_decay > 0 or (config.sweep.field == 'train.g_ema_decay'))


def step_hypers(config) -> train_step.Hypers:
  """The step's Hypers of a run of one, from its config (Python floats)."""
  return train_step.Hypers(optim.hypers(config.optim), float(config.train.g_ema_decay))


def build(config, image_shape, train_size: int | None = None) -> Experiment:
  """Builds the models, optimisers and step settings for `config`.

  Args:
    config: the experiment's config.
    image_shape: (H, W, C) of the data.
    train_size: examples in the training split (the momentum schedule counts epochs); None
      builds no optimisers, for work that only samples from a restored G.
  """
  batch = config.train.batch_size
  mesh = Mesh(np.array(jax.devices()), (parallel.AXIS,))
  optimizer = None
  if train_size is not None:
    optimizer = functools.partial(optim.build_optimizer, config.optim, batch, train_size)
  return Experiment(
      config=config,
      g_model=models.build_generator(config.model, image_shape),
      d_model=models.build_discriminator(config.model),
      optimizer=optimizer,
      spec=step_spec(config),
      image_shape=tuple(image_shape),
      replicated=NamedSharding(mesh, PartitionSpec()))
