"""What a config builds: G and D, their optimisers, the step's settings and G's sampler.

Training, evaluation and figures all start from `build(config, ...)`, so the three can never
disagree about the models a config describes.
"""

from __future__ import annotations

import dataclasses

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

from gan_jax import models
from gan_jax import optim
from gan_jax import parallel
from gan_jax import state as state_lib
from gan_jax import train_step


@dataclasses.dataclass
class Experiment:
  """Everything built from a config, shared by training, evaluation and figures.

  Attributes:
    config: the run's config.
    g_model, d_model: the Flax modules.
    g_tx, d_tx: their optimisers (None when built for sampling only).
    spec: the train step's static settings.
    image_shape: (H, W, C) of the data.
    replicated: the sharding that puts an array whole on every device.
  """
  config: object
  g_model: object
  d_model: object
  g_tx: object
  d_tx: object
  spec: train_step.StepSpec
  image_shape: tuple
  replicated: NamedSharding

  def __post_init__(self):
    self.g_apply = jax.jit(self.g_model.apply)  # G in evaluation mode (it has no dropout).

  @property
  def seeds(self) -> list[int]:
    """The seeds this run trains: config.seed, ..., config.seed + config.num_seeds - 1."""
    return [self.config.seed + i for i in range(self.config.num_seeds)]

  @property
  def stacked(self) -> bool:
    """Whether the state has a leading seed axis (config.num_seeds > 1)."""
    return self.config.num_seeds > 1

  def initial_state(self, train_images: np.ndarray | None) -> state_lib.GANState:
    """The freshly initialised state, on every device: each seed's as a run of that seed alone
    initialises it, stacked along a leading axis when there are several.

    `train_images` set G's output bias from the pixel marginals where the config asks for it.
    """
    bias_images = train_images if self.config.model.g_output_bias_from_marginals else None
    states = [state_lib.create_state(jax.random.key(seed), self.g_model, self.d_model, self.g_tx,
                                     self.d_tx, self.spec.z_dim, self.image_shape, bias_images,
                                     self.spec.g_ema_decay) for seed in self.seeds]
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
      g_ema_decay=float(config.train.g_ema_decay))


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
  g_tx = d_tx = None
  if train_size is not None:
    g_tx = optim.build_optimizer(config.optim, batch, train_size)
    d_tx = optim.build_optimizer(config.optim, batch, train_size)
  return Experiment(
      config=config,
      g_model=models.build_generator(config.model, image_shape),
      d_model=models.build_discriminator(config.model),
      g_tx=g_tx,
      d_tx=d_tx,
      spec=step_spec(config),
      image_shape=tuple(image_shape),
      replicated=NamedSharding(mesh, PartitionSpec()))
