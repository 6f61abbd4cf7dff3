"""Hamiltonian Monte Carlo moves for AIS (gan_jax.ais): leapfrog, Metropolis test, step adaptation.

The target of a move is the tempered posterior in the unbounded latent u (see gan_jax.ais):

  log f_beta(u) = log N(u; 0, I) + beta * ll(u),   ll(u) = log p(x | z(u)) up to a constant,

so the potential energy is U(u) = |u|^2 / 2 - beta * ll(u) and its gradient u - beta * dll/du.
A chain carries ll and dll/du at its current position: a new temperature then needs no new
evaluation of G, and a move of L leapfrog steps costs exactly L forward + backward passes.

`anneal` runs one image's chains through a schedule of betas (the AIS loop, one lax.scan).

Written here rather than taken from blackjax (a new dependency): velocity Verlet and the
Metropolis test are ~30 lines; blackjax's HMCState caches the log-density and gradient of one
fixed target, so every new temperature would cost a fresh init (one more G forward + backward
per move) or a state rebuilt by hand, and AIS needs the likelihood term alone for its weights;
the step size control is eval_gen's, not blackjax's window adaptation.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
# u [C, z] -> (ll [C], dll/du [C, z]).
LogLikAndGrad = Callable[[Array], tuple[Array, Array]]


@dataclasses.dataclass(frozen=True)
class Adaptation:
  """eval_gen's step size control (sampling/samplers.py, AISPath.build), one step size per image.

  After every move: step *= increase if the running acceptance rate is above target, else
  step *= decrease, clipped to [min_step, max_step]; then running = decay * running +
  (1 - decay) * (this move's acceptance rate over the image's chains). eval_gen shares one step
  size among all chains of all images; per image, an image's estimate does not depend on the
  other images of its batch (nor on the batch size or the device count).

  Unlike eval_gen (which has jitter = 0), every move draws each chain's step uniformly in
  step * [1 - jitter, 1 + jitter]: a fixed trajectory length that is close to a multiple of a
  posterior direction's period barely moves the chain along it (Neal 2011, "MCMC using
  Hamiltonian dynamics", sec. 5.4.2.2), and a lagging chain inflates the spread of the weights.
  """
  initial_step: float = 0.01
  target_accept: float = 0.65
  increase: float = 1.02
  decrease: float = 0.98
  min_step: float = 1e-4
  max_step: float = 0.5
  decay: float = 0.9
  jitter: float = 0.5


def sigmoid_schedule(num_temps: int, radius: float = 4.0) -> np.ndarray:
  """num_temps + 1 betas from 0 to 1, dense near both ends (eval_gen's sigmoid_schedule).

  beta_t = (s(r (2t/T - 1)) - s(-r)) / (s(r) - s(-r)), s the logistic sigmoid, r = radius.
  """
  t = np.linspace(-radius, radius, num_temps + 1)
  s = 1.0 / (1.0 + np.exp(-t))
  return (s - s[0]) / (s[-1] - s[0])


def log_mean_exp(a) -> np.ndarray:
  """log mean exp over axis 1, in float64 (on the host)."""
  a = np.asarray(a, np.float64)
  m = a.max(axis=1, keepdims=True)
  return (m + np.log(np.mean(np.exp(a - m), axis=1, keepdims=True)))[:, 0]


class Chains(NamedTuple):
  """The chains of one image: positions and the cached log-likelihood and its gradient."""
  u: Array  # [C, z]
  ll: Array  # [C]
  grad: Array  # [C, z]


def start(ll_and_grad: LogLikAndGrad, u: Array) -> Chains:
  ll, grad = ll_and_grad(u)
  return Chains(u, ll, grad)


def _energy_grad(chains: Chains, beta) -> Array:
  return chains.u - beta * chains.grad


def _hamiltonian(chains: Chains, p: Array, beta) -> Array:
  return 0.5 * jnp.sum(chains.u**2 + p**2, axis=1) - beta * chains.ll


def leapfrog(ll_and_grad: LogLikAndGrad, chains: Chains, p: Array, beta, step,
             num_steps: int) -> tuple[Chains, Array]:
  """`num_steps` velocity Verlet steps of size `step` (one G evaluation each)."""
  p = p - 0.5 * step * _energy_grad(chains, beta)

  def full_step(carry, _):
    c, p = carry
    c = start(ll_and_grad, c.u + step * p)
    return (c, p - step * _energy_grad(c, beta)), None

  (chains, p), _ = jax.lax.scan(full_step, (chains, p), None, length=num_steps)
  return chains, p + 0.5 * step * _energy_grad(chains, beta)  # The last kick was a half one.


def move(ll_and_grad: LogLikAndGrad, chains: Chains, beta, step, key: Array, num_steps: int,
         jitter: float = 0.0) -> tuple[Chains, Array]:
  """One HMC move of every chain, leaving f_beta invariant.

  `jitter` > 0: each chain's step is step * U(1 - jitter, 1 + jitter) (see Adaptation).

  Returns:
    (the chains after the Metropolis test, [C] bool: which proposals were accepted).
  """
  key_p, key_a, key_j = jax.random.split(key, 3)
  p = jax.random.normal(key_p, chains.u.shape, chains.u.dtype)
  if jitter:  # Per chain, independent of the state: each chain's move stays reversible.
    step = step * jax.random.uniform(key_j, (len(p), 1), minval=1 - jitter, maxval=1 + jitter)
  proposal, p_end = leapfrog(ll_and_grad, chains, p, beta, step, num_steps)
  log_ratio = _hamiltonian(chains, p, beta) - _hamiltonian(proposal, p_end, beta)
  log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)  # Diverged: reject.
  accept = jnp.log(jax.random.uniform(key_a, log_ratio.shape)) < log_ratio
  keep = lambda new, old: jnp.where(accept.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
  return jax.tree.map(keep, proposal, chains), accept


def adapt(step, running_accept, accept: Array, adaptation: Adaptation):
  """eval_gen's update (see Adaptation) from one move's [C] accept flags."""
  a = adaptation
  factor = jnp.where(running_accept > a.target_accept, a.increase, a.decrease)
  step = jnp.clip(step * factor, a.min_step, a.max_step)
  running_accept = a.decay * running_accept + (1.0 - a.decay) * jnp.mean(accept)
  return step, running_accept


def anneal(ll_and_grad: LogLikAndGrad, u0: Array, betas: Array, deltas: Array, key: Array, *,
           leapfrog_steps: int, adaptation: Adaptation) -> tuple[Array, Array]:
  """AIS of one image's chains u0 [C, z] along f_beta, beta = betas[0] -> betas[-1].

  Weights accumulate sum_t deltas[t-1] * ll(u_{t-1}) (deltas = diff(betas), computed in float64
  by the caller); one HMC move at each intermediate beta, none at the last one (it would not
  change the weights). With two betas this is importance sampling from f_betas[0].

  Returns:
    ([C] log weights, the final running acceptance rate (see Adaptation)).
  """

  def kahan_add(total, comp, value):  # Compensated sum: a far-off x makes |ll| large.
    y = value - comp
    new = total + y
    return new, (new - total) - y

  def transition(carry, xs):
    chains, step, running, log_w, comp = carry
    beta, delta, t = xs
    log_w, comp = kahan_add(log_w, comp, delta * chains.ll)
    chains, accept = move(ll_and_grad, chains, beta, step, jax.random.fold_in(key, t),
                          leapfrog_steps, adaptation.jitter)
    step, running = adapt(step, running, accept, adaptation)
    return (chains, step, running, log_w, comp), None

  zeros = jnp.zeros(u0.shape[:1], jnp.float32)
  init = (start(ll_and_grad, u0), jnp.float32(adaptation.initial_step),
          jnp.float32(adaptation.target_accept), zeros, zeros)
  num_moves = deltas.shape[0] - 1
  xs = (betas[1:-1], deltas[:-1], jnp.arange(1, num_moves + 1))
  (chains, _, running, log_w, comp), _ = jax.lax.scan(transition, init, xs)
  log_w, comp = kahan_add(log_w, comp, deltas[-1] * chains.ll)
  return log_w - comp, running
