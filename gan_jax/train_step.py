"""The per-device training step: Algorithm 1 (alternating) and the original code's simultaneous rule.

`make_train_step` returns a pure function `train_step(state, batch, rng, hypers) -> (state,
metrics)` written for one device; gradients are averaged over the named axis `axis_name` so that,
mapped over all devices (`data_parallel_chunk`, through gan_jax.parallel), it is data-parallel
SGD on the global batch.

Randomness: the step key is `fold_in(rng, state.step)`; every example of the *global* batch then
gets its own key, `fold_in(step_key, global_example_index)`, with the global index derived from
`axis_index`. Noise z and dropout masks are drawn per example from those keys, so the update does
not depend on the number of devices the global batch is split over.

`hypers` holds the numbers that keep every shape (learning rate, momenta, EMA decay): constants
of the compiled program for a run of one; when it trains several members (config.num_seeds,
config.sweep), those they share stay constants and each member's own (a sweep's field) come in
as traced scalars, so a hyper-parameter sweep is one compiled program (`split_hypers`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import losses
from gan_jax import models
from gan_jax import optim
from gan_jax import parallel
from gan_jax.state import GANState

UPDATE_RULES = ('alternating', 'simultaneous')

# Salts separating the random streams of one step.
_Z, _REAL_DROPOUT, _FAKE_DROPOUT = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """Static settings of the step (hashable; from `config.train` and `config.model`).

  Attributes:
    update: 'alternating' (Algorithm 1: k D steps, each on a fresh minibatch and fresh z, then one
      G step with fresh z) or 'simultaneous' (the original configs: one minibatch, both gradients at
      the current parameters through the same D pass, both applied at once).
    k_steps: D steps per G step (alternating only).
    generator_loss: 'non_saturating' or 'minimax'.
    z_dim: size of G's input.
    prior: 'uniform' or 'gaussian'.
    max_col_norm: if > 0, pylearn2's column-norm projection after every update.
    g_ema: whether the state carries an EMA of G's parameters, updated after every G step as
      ema = decay * ema + (1 - decay) * g_params with Hypers.g_ema_decay.
  """
  update: str = 'simultaneous'
  k_steps: int = 1
  generator_loss: str = 'non_saturating'
  z_dim: int = 100
  prior: str = 'uniform'
  max_col_norm: float = 0.0
  g_ema: bool = False

  @property
  def minibatches_per_step(self) -> int:
    return self.k_steps if self.update == 'alternating' else 1


class Hypers(NamedTuple):
  """One member's shape-keeping numbers: its optimisers' (G's and D's alike) and its EMA decay."""
  optim: optim.Hypers
  g_ema_decay: chex.Numeric


def _example_keys(key: jax.Array, local_batch: int, axis_name: str | None) -> jax.Array:
  """One key per example, indexed by the example's position in the global batch."""
  offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * local_batch
  return jax.vmap(jax.random.fold_in, (None, 0))(key, offset + jnp.arange(local_batch))


def _pmean(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def make_train_step(g_model, d_model, optimizer: Callable, spec: StepSpec,
                    axis_name: str | None = parallel.AXIS) -> Callable:
  """Builds `train_step(state, batch, rng, hypers) -> (state, metrics)` for one device.

  Args:
    g_model, d_model: generator and discriminator modules.
    optimizer: optim.Hypers -> optax.GradientTransformation; builds G's and D's optimisers
      (each with its own state) from the step's numbers.
    spec: the static step settings.
    axis_name: the device axis to average gradients over, or None when not mapped.

  Returns:
    The step. `batch` holds this device's real images, shape [minibatches_per_step, local_batch,
    H, W, C]; `rng` is the run's base key (the same on every device and step); `hypers` its
    Hypers. Metrics are averaged over devices.
  """
  if spec.update not in UPDATE_RULES:
    raise ValueError(f"Unknown update rule '{spec.update}': choose one of {UPDATE_RULES}.")

  def noise(key, local_batch):
    keys = _example_keys(jax.random.fold_in(key, _Z), local_batch, axis_name)
    return jax.vmap(lambda k: models.sample_prior(k, (spec.z_dim,), spec.prior))(keys)

  def d_logits(d_params, x, key, salt):
    keys = _example_keys(jax.random.fold_in(key, salt), x.shape[0], axis_name)
    return d_model.apply(d_params, x, keys)

  def d_logits_real_fake(d_params, real, fake, key):
    # One D pass over [real; fake]: half as many dots, each twice as tall, run faster (README,
    # Performance). Each half keeps its own per-example keys, so the masks are those of two
    # separate passes (d_logits with _REAL_DROPOUT / _FAKE_DROPOUT).
    n = real.shape[0]
    keys = jnp.concatenate([
        _example_keys(jax.random.fold_in(key, _REAL_DROPOUT), n, axis_name),
        _example_keys(jax.random.fold_in(key, _FAKE_DROPOUT), fake.shape[0], axis_name)])
    logits = d_model.apply(d_params, jnp.concatenate([real, fake]), keys)
    return logits[:n], logits[n:]

  def apply(hypers, grads, opt_state, params):
    updates, opt_state = optimizer(hypers.optim).update(grads, opt_state, params)
    params = optim.max_col_norm(optax.apply_updates(params, updates), spec.max_col_norm)
    return params, opt_state

  def finish(state, new, g_grads, d_grads, metrics, g_ema_decay):
    """The next state from `new` = (g_params, g_opt, d_params, d_opt), and the step's metrics."""
    g_params, g_opt, d_params, d_opt = new
    metrics = dict(metrics)
    metrics['g_grad_norm'] = optax.global_norm(g_grads)
    metrics['d_grad_norm'] = optax.global_norm(d_grads)
    norms = jnp.stack([optax.global_norm(g_params), optax.global_norm(d_params)])
    # One on-device flag for NaN/Inf anywhere (losses, gradients, parameters); the host reads it
    # with the other metrics, so the guard costs no extra device->host transfer.
    scalars = jnp.stack([metrics[k] for k in ('d_loss', 'g_loss', 'g_grad_norm', 'd_grad_norm')])
    metrics['finite'] = jnp.all(jnp.isfinite(scalars)) & jnp.all(jnp.isfinite(norms))
    new_state = state.replace(step=state.step + 1, g_params=g_params, d_params=d_params,
                              g_opt_state=g_opt, d_opt_state=d_opt,
                              g_ema_params=g_ema(state.g_ema_params, g_params, g_ema_decay))
    return new_state, metrics

  def g_ema(ema, g_params, d):
    # Whether the state has an EMA is its structure, fixed when tracing: without one, nothing
    # is traced. The parameters are the same on every device after the pmean, so is the EMA.
    if (ema is None) == spec.g_ema:
      raise ValueError(f'StepSpec.g_ema={spec.g_ema} but the state '
                       f'{"has no" if ema is None else "has an"} EMA of G: build it with '
                       'create_state(..., g_ema) or state.with_g_ema.')
    if ema is None:
      return None
    return jax.tree.map(lambda e, g: d * e + (1.0 - d) * g, ema, g_params)

  def simultaneous(state: GANState, batch, rng, hypers: Hypers):
    x = batch[0]
    key = jax.random.fold_in(rng, state.step)
    z = noise(key, x.shape[0])

    def objectives(g_params, d_params):
      # G's gradient flows through the fake half: the very pass (same masks) that D's fake
      # loss uses.
      real, fake = d_logits_real_fake(d_params, x, g_model.apply(g_params, z), key)
      aux = losses.discriminator_metrics(real, fake)
      return (losses.discriminator_loss(real, fake),
              losses.generator_loss(fake, spec.generator_loss)), aux

    (d_loss, g_loss), pullback, aux = jax.vjp(objectives, state.g_params, state.d_params,
                                              has_aux=True)
    one, zero = jnp.ones_like(d_loss), jnp.zeros_like(d_loss)
    d_grads = pullback((one, zero))[1]  # XLA drops the unused halves of each pullback.
    g_grads = pullback((zero, one))[0]
    g_grads, d_grads = _pmean((g_grads, d_grads), axis_name)
    d_params, d_opt = apply(hypers, d_grads, state.d_opt_state, state.d_params)
    g_params, g_opt = apply(hypers, g_grads, state.g_opt_state, state.g_params)
    metrics = _pmean(dict(aux, d_loss=d_loss, g_loss=g_loss), axis_name)
    return finish(state, (g_params, g_opt, d_params, d_opt), g_grads, d_grads, metrics,
                  hypers.g_ema_decay)

  def alternating(state: GANState, batch, rng, hypers: Hypers):
    key = jax.random.fold_in(rng, state.step)
    local_batch = batch.shape[1]

    def d_step(carry, inputs):
      d_params, d_opt, _ = carry
      x, i = inputs
      sub = jax.random.fold_in(key, i)
      fake = jax.lax.stop_gradient(g_model.apply(state.g_params, noise(sub, local_batch)))

      def d_objective(d_params):
        real, fake_logits = d_logits_real_fake(d_params, x, fake, sub)
        return losses.discriminator_loss(real, fake_logits), losses.discriminator_metrics(
            real, fake_logits)

      (d_loss, aux), grads = jax.value_and_grad(d_objective, has_aux=True)(d_params)
      grads = _pmean(grads, axis_name)
      d_params, d_opt = apply(hypers, grads, d_opt, d_params)
      return (d_params, d_opt, grads), dict(aux, d_loss=d_loss)

    zero_grads = jax.tree.map(jnp.zeros_like, state.d_params)
    (d_params, d_opt, d_grads), d_metrics = jax.lax.scan(
        d_step, (state.d_params, state.d_opt_state, zero_grads),
        (batch, jnp.arange(spec.k_steps)))
    # The G step: fresh z and fresh dropout masks, through the updated D.
    g_key = jax.random.fold_in(key, spec.k_steps)

    def g_objective(g_params):
      fake = g_model.apply(g_params, noise(g_key, local_batch))
      return losses.generator_loss(d_logits(d_params, fake, g_key, _FAKE_DROPOUT),
                                   spec.generator_loss)

    g_loss, g_grads = jax.value_and_grad(g_objective)(state.g_params)
    g_grads = _pmean(g_grads, axis_name)
    g_params, g_opt = apply(hypers, g_grads, state.g_opt_state, state.g_params)
    # D's metrics are those of the last of its k steps.
    metrics = jax.tree.map(lambda m: m[-1], d_metrics)
    metrics = _pmean(dict(metrics, g_loss=g_loss), axis_name)
    return finish(state, (g_params, g_opt, d_params, d_opt), g_grads, d_grads, metrics,
                  hypers.g_ema_decay)

  return simultaneous if spec.update == 'simultaneous' else alternating


def fixed(train_step: Callable, hypers: Hypers) -> Callable:
  """`train_step(state, batch, rng)`: the step of a run of one, its `hypers` (Python floats)
  constants of the compiled program."""
  return lambda state, batch, rng: train_step(state, batch, rng, hypers)


def make_train_chunk(train_step: Callable) -> Callable:
  """Runs several steps of `train_step(state, batch, rng)` (`fixed`) in one compiled call,
  gathering each batch from on-device data.

  Returns:
    `chunk(state, images, indices, rng) -> (state, metrics)`: `images` is the whole training set
    on this device, [N, H, W, C]; `indices` is [steps, minibatches_per_step, local_batch] into it.
    Metrics come back stacked, [steps]. Keeping the data on device and indexing it inside the
    compiled loop means the host only sends a few hundred integers per step.
  """

  def chunk(state, images, indices, rng):
    def body(state, idx):
      return train_step(state, images[idx], rng)

    return jax.lax.scan(body, state, indices)

  return chunk


def split_hypers(each: list[Hypers]) -> tuple[Hypers, Hypers]:
  """Members' Hypers as (shared, own): a program compiles what all members share as constants.

  Args:
    each: every member's Hypers (Python floats), in the order of the leading axis.

  Returns:
    `shared`: the first member's numbers (Python floats); `own`: for each number that differs
    among members, all of theirs as a float32 array along the leading axis, None where they all
    agree. A number all share stays a constant, so a run of several seeds compiles the very
    arithmetic of a run of one (in float32, 1 - 0.999 loses 1e-5 of itself).
  """
  flat = [jax.tree.leaves(h) for h in each]
  own = [None if len(set(v)) == 1 else np.asarray(v, np.float32) for v in zip(*flat)]
  return each[0], jax.tree.unflatten(jax.tree.structure(each[0]), own)


def _merge(shared: Hypers, own: Hypers) -> Hypers:
  """A member's Hypers: its own numbers where it has them, the shared ones elsewhere."""
  return jax.tree.map(lambda s, o: s if o is None else o, shared, own)


MEMBER_AXES = ('vmap', 'map')


def _over_members(fn: Callable, member_axis: str) -> Callable:
  """`fn` over the leading (member) axis of all its arguments.

  'vmap' batches the members into one computation (wider dots: what an accelerator wants);
  'map' runs them one after another inside the compiled call (`jax.lax.map`), each with the
  arithmetic of its run alone and the temporaries of one member (faster on a CPU, whose cores
  one member's dots already fill).
  """
  if member_axis == 'vmap':
    return jax.vmap(fn)
  if member_axis == 'map':
    return lambda *args: jax.lax.map(lambda a: fn(*a), args)
  raise ValueError(f"Unknown member axis '{member_axis}': choose one of {MEMBER_AXES}.")


def _where_members(mask, a, b):
  """Member-wise select between two stacked pytrees: a where `mask` [members], else b."""
  return jax.tree.map(lambda x, y: jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), x, y),
                      a, b)


def make_seeds_chunk(train_step: Callable, shared: Hypers, member_axis: str = 'vmap') -> Callable:
  """`make_train_chunk` for a state with a leading member axis: each member's steps, over members.

  `shared` (Python floats, see `split_hypers`) are constants of the compiled program; each
  member's own numbers come with each call. `member_axis` ('vmap' or 'map', `_over_members`)
  says how the members' steps are laid out; both compute the same update.

  A member whose step is not finite stops there, keeping the state of its last good step, and
  the others go on. The steps run unguarded (a per-step select over the whole state would cost
  a tenth of the step); a chunk in which a member goes non-finite is then replayed for that
  member up to its last good step, from the chunk's input (the same steps: the same state, to
  float32 rounding). That happens once in a member's life; a member stopped before keeps its
  input state.

  Returns:
    `chunk(state, images, indices, members, active) -> ((state, active), metrics)`: `indices`
    is [steps, members, minibatches_per_step, local_batch]; `members` is (rng, own), one base
    key per member and `split_hypers`'s `own`, along the leading axis; `active` [members] bool,
    returned updated (fed to the next call: a stop needs no transfer to the host). Metrics are
    [steps, members]; a stopped member's are meaningless from its first non-finite step on.
  """

  def chunk(state, images, indices, members, active):
    def run(s, steps_indices, member):  # A member's call: the chunk of its run alone.
      rng, own = member
      return make_train_chunk(fixed(train_step, _merge(shared, own)))(s, images, steps_indices,
                                                                       rng)

    def replay(s, steps_indices, member, good_steps):
      rng, own = member
      step = fixed(train_step, _merge(shared, own))
      return jax.lax.fori_loop(
          0, good_steps, lambda t, x: step(x, images[steps_indices[t]], rng)[0], s)

    per_member = jnp.swapaxes(indices, 0, 1)  # [members, steps, ...]
    final, metrics = _over_members(run, member_axis)(state, per_member, members)
    finite = metrics['finite']  # [members, steps]
    # Each member's finite steps before its first non-finite one (all of them if none).
    good_steps = jnp.argmin(jnp.pad(finite, ((0, 0), (0, 1))), axis=1)
    failed = active & (good_steps < finite.shape[1])
    kept = _where_members(active, final, state)

    def with_replay():
      replayed = _over_members(replay, member_axis)(state, per_member, members,
                                                    jnp.where(failed, good_steps, 0))
      return _where_members(failed, replayed, kept)

    state = jax.lax.cond(jnp.any(failed), with_replay, lambda: kept)
    return (state, active & ~failed), jax.tree.map(lambda m: jnp.swapaxes(m, 0, 1), metrics)

  return chunk


def chunk_indices(samplers: list, first: int, count: int, per_step: int,
                  batch_size: int) -> np.ndarray:
  """The `indices` of `data_parallel_chunk`'s call for `count` steps from step `first`, for every
  device: [devices, count, per_step, local_batch] from one data.EpochSampler (a run of one), or
  [devices, count, members, per_step, local_batch] from one per member."""
  devices = jax.device_count()
  idx = [sampler.indices(first * per_step, count * per_step).reshape(
      count, per_step, devices, batch_size // devices) for sampler in samplers]
  if len(samplers) == 1:
    return idx[0].transpose(2, 0, 1, 3)
  return np.stack(idx, axis=1).transpose(3, 0, 1, 2, 4)


def data_parallel_chunk(train_step: Callable, shared: Hypers,
                        member_axis: str | None = None) -> Callable:
  """The training chunk mapped over all local devices: data-parallel SGD on the global batch.

  Args:
    train_step: `make_train_step`'s step (mapped over parallel.AXIS).
    shared: the Hypers compiled in as constants: a run of one's, or what its members share.
    member_axis: None for a run of one; for a state with a leading member axis, how the members'
      steps are laid out, 'vmap' or 'map' (`make_seeds_chunk`).

  Returns:
    `chunk(state, images, indices, rng) -> (state, metrics)` as `make_train_chunk`'s, with
    `indices` given per device, [devices, steps, minibatches_per_step, local_batch]; the
    state, images, key and the returned state and metrics are shared by every device. The
    input state's buffers are donated. With `member_axis`, `make_seeds_chunk`'s `chunk(state,
    images, indices, members, active)`, indices [devices, steps, members, minibatches_per_step,
    local_batch].
  """
  if member_axis is not None:
    return parallel.over_devices(make_seeds_chunk(train_step, shared, member_axis),
                                 in_axes=(None, None, 0, None, None), out_axes=(None, None),
                                 donate_argnums=(0,))
  return parallel.over_devices(make_train_chunk(fixed(train_step, shared)),
                               in_axes=(None, None, 0, None), out_axes=(None, None),
                               donate_argnums=(0,))
