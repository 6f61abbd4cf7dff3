r"""Annealed importance sampling (AIS) estimate of a generator's log-likelihood, with BDMC bounds.

Wu et al. 2017 ("On the Quantitative Analysis of Decoder-Based Generative Models"; their code is
github.com/tonywu95/eval_gen) give G a Gaussian observation model and estimate

  log p(x) = log \int p(z) N(x; G(z), obs_std^2 I) dz

by AIS from the prior (beta = 0) to the posterior (beta = 1) along f_beta = p(z) p(x|z)^beta, on
a sigmoid schedule of betas, with HMC moves (gan_jax.hmc) whose step size tracks a 0.65
acceptance rate. Chains x images run in one jitted lax.scan over the schedule; images are split
over the local devices (gan_jax.parallel) and processed in batches.

Latent parametrisation: the chains move in u ~ N(0, I), with z = latent(u). For the Gaussian
prior z = u. For the uniform prior U(-sqrt 3, sqrt 3)^d (gan_jax.models.sample_prior) z =
sqrt 3 (2 Phi(u) - 1) = sqrt 3 erf(u / sqrt 2) per coordinate, so no move can leave the support.
The change of variables is exact: dz/du = 2 sqrt 3 phi(u), hence

  p_z(z(u)) |dz/du| = (2 sqrt 3)^-1 * 2 sqrt 3 phi(u) = phi(u) = N(u; 0, 1),

i.e. the uniform density times the Jacobian is exactly the standard normal density, and the
target in u is N(u; 0, I) p(x | z(u))^beta with the same normalisers Z_beta as in z (in particular
Z_1 = p(x)). u ~ N(0, I) gives z exactly uniform; tests/test_ais.py checks both numerically.

BDMC (Grosse et al. 2015; Wu et al. sec. 3): on data simulated from the model, x = G(z*) + noise
with z* from the prior, z* is an exact posterior sample of x. Forward AIS gives a stochastic
lower bound of log p(x) (E log Z_hat <= log Z by Jensen), and AIS run from z* with beta 1 -> 0
an unbiased estimate of 1 / p(x), hence a stochastic upper bound; the gap bounds the error of
forward AIS on data like the simulated ones.

Matmuls run at HIGHEST precision (jax.default_matmul_precision) so that accelerators do not
use TF32 / bf16 passes; a G built with a bf16 compute dtype still computes in bf16.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from gan_jax import hmc
from gan_jax import parallel

PRIORS = ('gaussian', 'uniform')
_SQRT3 = math.sqrt(3.0)
Progress = Callable[[int, int], None]


def check_prior(prior: str) -> None:
  if prior not in PRIORS:
    raise ValueError(f"Unknown prior '{prior}': choose one of {PRIORS}.")


def latent(u: jax.Array, prior: str) -> jax.Array:
  """z(u): the identity for 'gaussian'; sqrt 3 erf(u / sqrt 2), exactly U(-sqrt 3, sqrt 3)."""
  if prior == 'uniform':
    return _SQRT3 * jax.scipy.special.erf(u * np.float32(1.0 / math.sqrt(2.0)))
  return u


def _check_settings(*, z_dim, prior, obs_std, num_chains, num_temps, leapfrog_steps,
                    batch_size=1):
  check_prior(prior)
  for name, value in (('z_dim', z_dim), ('num_chains', num_chains), ('num_temps', num_temps),
                      ('leapfrog_steps', leapfrog_steps), ('batch_size', batch_size)):
    if int(value) != value or value < 1:
      raise ValueError(f'{name} must be an integer >= 1, got {value}.')
  if not (math.isfinite(obs_std) and obs_std > 0):
    raise ValueError(f'obs_std must be a finite float > 0 (the std of p(x|z)), got {obs_std}.')


@dataclasses.dataclass(frozen=True)
class _Kernel:
  """What a compiled kernel is specialised to (with the shapes)."""
  z_dim: int
  prior: str
  num_chains: int
  leapfrog_steps: int
  adaptation: hmc.Adaptation


def _anneal_image(generator, x, key, u_star, betas, deltas, obs_std, kernel: _Kernel):
  """AIS for one image x [D] from betas[0] to betas[-1] (see hmc.anneal).

  The chains start from the prior when betas[0] == 0, else (BDMC's reverse AIS) all from the
  exact posterior sample u_star [z_dim]; a traced choice, so both directions share one program.

  ll(u) = -|x - G(z(u))|^2 / (2 obs_std^2): log p(x|z) without its normaliser, which the host
  adds in float64.
  """
  half_precision = 0.5 / (obs_std * obs_std)

  def ll_and_grad(u):
    def total(u):
      r = x - generator(latent(u, kernel.prior)).reshape(u.shape[0], -1)
      ll = -half_precision * jnp.sum(r * r, axis=1)
      return jnp.sum(ll), ll
    (_, ll), grad = jax.value_and_grad(total, has_aux=True)(u)
    return ll, grad

  shape = (kernel.num_chains, kernel.z_dim)
  u0 = jnp.where(betas[0] == 0, jax.random.normal(jax.random.fold_in(key, 0), shape),
                 jnp.broadcast_to(u_star, shape))
  return hmc.anneal(ll_and_grad, u0, betas, deltas, key, leapfrog_steps=kernel.leapfrog_steps,
                    adaptation=kernel.adaptation)


@functools.lru_cache(maxsize=16)
def _compiled(kernel: _Kernel, devices: tuple):
  """Images vmapped, split over devices; compiled once per shape (obs_std, betas and G's params
  are arguments)."""
  per_device = jax.vmap(functools.partial(_anneal_image, kernel=kernel),
                        in_axes=(None, 0, 0, 0, None, None, None))
  return parallel.over_devices(per_device, in_axes=(None, 0, 0, 0, None, None, None),
                               devices=devices)


@functools.partial(jax.jit, static_argnums=2)
def _image_keys(key, first, count: int):
  """Image i's key is fold_in(key, i): its estimate does not depend on batching or devices."""
  return jax.vmap(jax.random.fold_in, (None, 0))(key, first + jnp.arange(count))


def _as_pytree(generator) -> Partial:
  """G as a jit argument: a Partial's array leaves (G's params) are traced, not baked in."""
  return generator if isinstance(generator, Partial) else Partial(generator)


def _apply(generator, z):
  return generator(z)


@functools.lru_cache(maxsize=64)
def _output_shape(treedef, leaf_specs: tuple, z_dim: int) -> tuple[int, ...]:
  spec = jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(*s) for s in leaf_specs])
  return jax.eval_shape(_apply, spec, jax.ShapeDtypeStruct((2, z_dim), jnp.float32)).shape


def output_dim(generator, z_dim: int) -> int:
  """Values per example G makes from z [B, z_dim] (traced abstractly once per G's structure)."""
  leaves, treedef = jax.tree.flatten(_as_pytree(generator))
  shape = _output_shape(treedef, tuple((np.shape(a), jnp.result_type(a)) for a in leaves), z_dim)
  if len(shape) < 1 or shape[0] != 2:
    raise ValueError(f'The generator must map z [B, {z_dim}] to x [B, ...], got {shape} '
                     'for B = 2.')
  return int(np.prod(shape[1:]))


def check_x(name: str, x, generator, z_dim: int) -> np.ndarray:
  """x as float32 [N, D] (trailing axes flattened); one-line ValueError when G cannot make it."""
  x = np.asarray(x)
  if x.ndim < 2 or x.shape[0] == 0 or not np.issubdtype(x.dtype, np.floating):
    raise ValueError(f'{name} must be a non-empty float array [N, ...], got shape {x.shape} and '
                     f'dtype {x.dtype}.')
  x = x.reshape(len(x), -1).astype(np.float32)
  d = output_dim(generator, z_dim)
  if x.shape[1] != d:
    raise ValueError(f'{name} has {x.shape[1]} values per example but the generator makes {d} '
                     f'from z_dim={z_dim}: pass data of G\'s output shape.')
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{name} contains NaN or Inf; remove or fix those rows first.')
  return x


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


def _run(kernel: _Kernel, generator, x: np.ndarray, key, *, betas: np.ndarray, obs_std: float,
         batch_size: int, devices, on_batch: Callable[[int], None], u_star=None):
  """Anneals every image, `batch_size` at a time (padded to a multiple of the device count).

  Returns:
    (log weights [N, C] without the normaliser, final running acceptance rate [N]).
  """
  devices = tuple(jax.local_devices() if devices is None else devices)
  ndev, n = len(devices), len(x)
  fn = _compiled(kernel, devices)
  chunk = _round_up(min(batch_size, n), ndev)
  deltas = np.diff(betas).astype(np.float32)  # Differences in float64, then rounded.
  shared = (jnp.asarray(betas, jnp.float32), jnp.asarray(deltas), jnp.float32(obs_std))
  generator = _as_pytree(generator)
  u_star = np.zeros((n, kernel.z_dim), np.float32) if u_star is None else np.asarray(u_star)
  log_w, accept = [], []
  with jax.default_matmul_precision('highest'):
    for lo in range(0, n, chunk):
      parts = []
      for a in (x, u_star):
        a = a[lo:lo + chunk]
        a = np.concatenate([a, np.zeros((chunk - len(a),) + a.shape[1:], a.dtype)])
        parts.append(a.reshape((ndev, chunk // ndev) + a.shape[1:]))
      keys = _image_keys(key, lo, chunk)
      keys = keys.reshape((ndev, chunk // ndev) + keys.shape[1:])
      w, acc = fn(generator, parts[0], keys, parts[1], *shared)
      log_w.append(np.asarray(w).reshape(chunk, -1))
      accept.append(np.asarray(acc).reshape(chunk))
      on_batch(min(chunk, n - lo))
  return np.concatenate(log_w)[:n], np.concatenate(accept)[:n]


def _normaliser(d: int, obs_std: float) -> float:
  """log N(x; G(z), obs_std^2 I) + |x - G(z)|^2 / (2 obs_std^2), in float64."""
  return -d * math.log(obs_std * math.sqrt(2 * math.pi))


def _counter(progress: Progress | None, total: int) -> Callable[[int], None]:
  done = [0]

  def on_batch(n):
    done[0] += n
    if progress is not None:
      progress(done[0], total)

  return on_batch


def _estimate(generator, x, key, kernel: _Kernel, *, num_temps, obs_std, batch_size, devices,
              on_batch):
  """Forward AIS: (log p(x) per example [N] float64, final acceptance rate per example [N])."""
  log_w, accept = _run(kernel, generator, x, key, betas=hmc.sigmoid_schedule(num_temps),
                       obs_std=obs_std, batch_size=batch_size, devices=devices,
                       on_batch=on_batch)
  return hmc.log_mean_exp(log_w) + _normaliser(x.shape[1], obs_std), accept


def log_likelihood(generator, x, key, *, z_dim: int, prior: str, obs_std: float,
                   num_chains: int = 16, num_temps: int = 1000, leapfrog_steps: int = 10,
                   batch_size: int = 100, adaptation: hmc.Adaptation = hmc.Adaptation(),
                   devices: Sequence[jax.Device] | None = None,
                   progress: Progress | None = None) -> np.ndarray:
  """AIS estimate of log p(x) for every example (log-mean-exp of its chains' weights).

  Args:
    generator: z [B, z_dim] -> x [B, ...], a pure JAX function. Pass
      `jax.tree_util.Partial(apply, g_params)` (apply(params, z), defined once) to compile once
      per shape for any params; a plain function (e.g. a lambda closing over params) compiles
      once per function object, with the params baked in as constants.
    x: [N, ...] data of G's output shape (flattened to [N, D]).
    key: a JAX PRNG key; example i uses fold_in(key, i), so batching and devices do not matter.
    z_dim, prior: G's input size and prior ('gaussian' N(0, I) or 'uniform' U(-sqrt 3, sqrt 3)).
    obs_std: std of the observation model p(x|z) = N(G(z), obs_std^2 I).
    num_chains: AIS chains per example.
    num_temps: transitions of the sigmoid schedule (num_temps + 1 betas; 1 = importance
      sampling from the prior).
    leapfrog_steps: leapfrog steps per HMC move (each one G forward + backward).
    batch_size: examples per compiled call (memory ~ batch_size * num_chains * G's widths).
    adaptation: HMC step size control (eval_gen's, plus a step jitter; see hmc.Adaptation).
    devices: devices to split the examples over (default: all local devices).
    progress: called as progress(examples done, N) after each batch.

  Returns:
    float64 numpy array [N] of log-likelihoods in nats (a stochastic lower bound in expectation).
  """
  _check_settings(z_dim=z_dim, prior=prior, obs_std=obs_std, num_chains=num_chains,
                  num_temps=num_temps, leapfrog_steps=leapfrog_steps, batch_size=batch_size)
  x = check_x('x', x, generator, z_dim)
  kernel = _Kernel(z_dim, prior, num_chains, leapfrog_steps, adaptation)
  return _estimate(generator, x, key, kernel, num_temps=num_temps, obs_std=obs_std,
                   batch_size=batch_size, devices=devices,
                   on_batch=_counter(progress, len(x)))[0]


@dataclasses.dataclass(frozen=True)
class BDMCResult:
  """Bidirectional Monte Carlo on data simulated from the model (means over the examples)."""
  lower: float  # Forward AIS: a stochastic lower bound of the mean log p(x).
  upper: float  # Reverse AIS from the exact posterior sample: a stochastic upper bound.
  gap: float  # upper - lower.
  lower_ll: np.ndarray  # [n] per example.
  upper_ll: np.ndarray  # [n] per example.
  x: np.ndarray  # [n, D] the simulated data.


@functools.partial(jax.jit, static_argnums=3)
def _simulate(generator, u_star, noise, prior: str):
  return generator(latent(u_star, prior)).reshape(noise.shape) + noise


def bdmc(generator, key, *, num_examples: int, z_dim: int, prior: str, obs_std: float,
         num_chains: int = 16, num_temps: int = 1000, leapfrog_steps: int = 10,
         batch_size: int = 100, adaptation: hmc.Adaptation = hmc.Adaptation(),
         devices: Sequence[jax.Device] | None = None,
         progress: Progress | None = None) -> BDMCResult:
  """Sandwiches log p(x) on num_examples x = G(z*) + obs_std * noise, z* from the prior.

  Arguments as log_likelihood's. Reverse AIS runs num_chains chains per example, all started
  from the example's z* (each one an exact posterior sample), and averages their estimates of
  1 / p(x) before the log.
  """
  _check_settings(z_dim=z_dim, prior=prior, obs_std=obs_std, num_chains=num_chains,
                  num_temps=num_temps, leapfrog_steps=leapfrog_steps, batch_size=batch_size)
  if int(num_examples) != num_examples or num_examples < 1:
    raise ValueError(f'num_examples must be an integer >= 1, got {num_examples}.')
  kernel = _Kernel(z_dim, prior, num_chains, leapfrog_steps, adaptation)
  return _bdmc(generator, key, num_examples, kernel, num_temps=num_temps, obs_std=obs_std,
               batch_size=batch_size, devices=devices,
               on_batch=_counter(progress, 2 * num_examples))


def _bdmc(generator, key, num_examples: int, kernel: _Kernel, **common) -> BDMCResult:
  """bdmc's work; common: num_temps, obs_std, batch_size, devices, on_batch."""
  num_temps, obs_std = common.pop('num_temps'), common['obs_std']
  d = output_dim(generator, kernel.z_dim)
  key_u, key_noise, key_forward, key_reverse = jax.random.split(key, 4)
  u_star = jax.random.normal(key_u, (num_examples, kernel.z_dim))
  noise = obs_std * jax.random.normal(key_noise, (num_examples, d))
  with jax.default_matmul_precision('highest'):
    x = np.asarray(_simulate(_as_pytree(generator), u_star, noise, kernel.prior))
  lower, _ = _estimate(generator, x, key_forward, kernel, num_temps=num_temps, **common)
  log_w, _ = _run(kernel, generator, x, key_reverse,
                  betas=hmc.sigmoid_schedule(num_temps)[::-1], u_star=u_star, **common)
  # Reverse weights estimate 1 / p(x): the normaliser enters with the opposite sign.
  upper = -(hmc.log_mean_exp(log_w) - _normaliser(d, obs_std))
  return BDMCResult(lower=float(lower.mean()), upper=float(upper.mean()),
                    gap=float(upper.mean() - lower.mean()), lower_ll=lower, upper_ll=upper,
                    x=x)


@dataclasses.dataclass(frozen=True)
class AISSettings:
  """The AIS protocol's settings (checked on construction). Defaults: Wu et al.'s chains."""
  z_dim: int
  prior: str = 'uniform'
  num_chains: int = 16
  num_temps: int = 1000
  leapfrog_steps: int = 10
  obs_std: float = 0.0  # 0 = chosen from obs_stds on the validation data.
  obs_stds: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2)
  batch_size: int = 100
  bdmc_examples: int = 100  # 0 = no BDMC.

  def __post_init__(self):
    object.__setattr__(self, 'obs_stds', tuple(float(s) for s in self.obs_stds))
    if self.obs_std < 0 or not math.isfinite(self.obs_std):
      raise ValueError(f'obs_std must be > 0, or 0 to choose it from obs_stds; got '
                       f'{self.obs_std}.')
    grid = self.obs_stds if self.obs_std == 0 else (self.obs_std,)
    if not grid or not all(math.isfinite(s) and s > 0 for s in grid):
      raise ValueError(f'obs_stds must be a non-empty list of floats > 0, got {self.obs_stds}.')
    _check_settings(z_dim=self.z_dim, prior=self.prior, obs_std=grid[0],
                    num_chains=self.num_chains, num_temps=self.num_temps,
                    leapfrog_steps=self.leapfrog_steps, batch_size=self.batch_size)
    if int(self.bdmc_examples) != self.bdmc_examples or self.bdmc_examples < 0:
      raise ValueError(f'bdmc_examples must be an integer >= 0, got {self.bdmc_examples}.')


@dataclasses.dataclass(frozen=True)
class AISResult:
  """Outcome of the protocol (obs_std chosen on validation data, then the test estimate)."""
  ll: np.ndarray  # [n_test] log p(x) per test example.
  mean_ll: float
  std_err: float  # std(ddof=0) / sqrt(n_test), as parzen.
  obs_std: float
  obs_stds: np.ndarray  # The grid searched (empty when obs_std was given).
  valid_ll: np.ndarray  # Mean validation log p(x) per grid value (empty when given).
  bdmc: BDMCResult | None  # At the chosen obs_std; None when bdmc_examples == 0.
  accept_rate: float  # Mean over the test examples of the final running acceptance rate.
  n_valid: int
  n_test: int


def evaluate(generator, test_x, valid_x, key, settings: AISSettings, *,
             progress: Progress | None = None,
             devices: Sequence[jax.Device] | None = None) -> AISResult:
  """Wu et al.'s protocol: obs_std with the highest mean validation AIS estimate, then test.

  Args:
    generator: as log_likelihood's.
    test_x: [n_test, ...] examples to score.
    valid_x: [n_valid, ...] examples to choose obs_std on (unused when settings.obs_std > 0).
      Every grid value uses the same key (common random numbers: a fairer comparison).
    key: a JAX PRNG key.
    settings: an AISSettings.
    progress: called as progress(examples done, total) after each batch; examples of the
      validation sweep count once per grid value, BDMC examples twice (forward and reverse).
    devices: devices to split the examples over (default: all local devices).

  Returns:
    An AISResult.
  """
  s = settings
  test_x = check_x('test_x', test_x, generator, s.z_dim)
  choose = s.obs_std == 0
  valid_x = check_x('valid_x', valid_x, generator, s.z_dim) if choose else test_x[:0]
  grid = np.asarray(s.obs_stds if choose else [], np.float64)
  total = len(valid_x) * len(grid) + len(test_x) + 2 * s.bdmc_examples
  on_batch = _counter(progress, total)
  kernel = _Kernel(s.z_dim, s.prior, s.num_chains, s.leapfrog_steps, hmc.Adaptation())
  common = dict(num_temps=s.num_temps, batch_size=s.batch_size, devices=devices,
                on_batch=on_batch)
  key_valid, key_test, key_bdmc = jax.random.split(key, 3)
  valid_ll = np.array([_estimate(generator, valid_x, key_valid, kernel, obs_std=float(o),
                                 **common)[0].mean() for o in grid])
  obs_std = float(grid[int(np.argmax(valid_ll))]) if choose else s.obs_std
  ll, accept = _estimate(generator, test_x, key_test, kernel, obs_std=obs_std, **common)
  sandwich = None
  if s.bdmc_examples:
    sandwich = _bdmc(generator, key_bdmc, s.bdmc_examples, kernel, obs_std=obs_std, **common)
  return AISResult(ll=ll, mean_ll=float(ll.mean()), std_err=float(ll.std() / math.sqrt(len(ll))),
                   obs_std=obs_std, obs_stds=grid, valid_ll=valid_ll, bdmc=sandwich,
                   accept_rate=float(accept.mean()), n_valid=len(valid_x), n_test=len(test_x))
