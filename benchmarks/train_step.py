r"""Training speed: gan_jax's compiled step against a plain PyTorch CPU loop, side by side.

For the paper's MNIST architecture (and the CIFAR-10 fully connected sizes), both update rules,
batch 100, one process, everything interleaved and best of `--repeats`:

  * gan_jax's jitted step (constant on-device batch): steps/s after warm-up, the wall time of the
    first call (trace + compile + run), recompilations after it (must be 0), and achieved GFLOP/s
    as a fraction of a plain jitted f32 matmul timed in the same run;
  * the same model, losses and optimiser as a PyTorch CPU loop (benchmarks/torch_reference.py)
    with the same number of threads as XLA, started from the same initial parameters;
  * MNIST only: end to end through the project's input path (experiment.build, the
    data-parallel chunk fed on-device images and host-side EpochSampler indices, as
    gan_jax/train.py) against the same step scanned over a constant on-device batch.

FLOPs are counted from the layer shapes (the dots the step must do); XLA's cost analysis is
printed next to them as a check. Real MNIST is read through TFDS when TFDS_DATA_DIR is set,
otherwise random uint8-derived images of MNIST's shape are used (and the table says so).

  pip install torch==2.13.0   # benchmark-only extra (CPU wheel)
  python benchmarks/train_step.py --which=all
  python benchmarks/train_step.py --quick   # smoke test, well under a minute
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import torch_reference
from benchmarks import common
from benchmarks.common import best_rate, dense_shapes, load_images, make_config, step_flops
from experiments import mnist
from gan_jax import data
from gan_jax import experiment
from gan_jax import parallel
from gan_jax import state as state_lib
from gan_jax import train_step
import torch

_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed repeats; the best is reported.')
_STEPS = flags.DEFINE_integer('steps', 30, 'Timed MNIST steps per repeat (CIFAR-10: steps // 10).')
_WHICH = flags.DEFINE_enum('which', 'mnist', ['mnist', 'cifar10', 'all'], 'Configs to time.')
_QUICK = flags.DEFINE_bool('quick', False, 'A tiny run for a smoke test.')
_PAIRS = flags.DEFINE_integer('pairs', 15, 'Back-to-back step/matmul pairs for the paired fraction.')
_THREADS = flags.DEFINE_integer('threads', 0, 'PyTorch threads; 0 = the cores XLA uses.')
_TORCH_1 = flags.DEFINE_bool('torch_single_thread', True,
                             'Also time PyTorch on 1 thread (a column for context).')

RULES = ('simultaneous', 'alternating')
class JaxStep:
  """gan_jax's step, jitted with the state donated, fed a constant on-device batch."""

  def __init__(self, exp, images, seed: int = 1):
    self.exp = exp
    per_step, batch = exp.spec.minibatches_per_step, exp.config.train.batch_size
    self.batch = jnp.asarray(images[:per_step * batch].reshape(per_step, batch, *images.shape[1:]))
    self.rng = jax.random.key(seed)
    self.init_state = exp.initial_state(images)
    step = exp.single_step(axis_name=None)
    self.fn = jax.jit(step, donate_argnums=0)
    # Copy: the first call donates (deletes) its input state.
    self.state = jax.tree.map(jnp.copy, self.init_state)
    start = time.perf_counter()
    self.state, self.metrics = self.fn(self.state, self.batch, self.rng)
    jax.block_until_ready(self.state)
    self.first_step_s = time.perf_counter() - start
    compiled = self.fn.lower(self.state, self.batch, self.rng).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    self.xla_flops = float(cost.get('flops', float('nan')))
    self.recompiles = 0  # XLA compilations during the timed calls (after the first step).

  def run(self, count: int) -> None:
    before = len(common.compiles)
    for _ in range(count):
      self.state, self.metrics = self.fn(self.state, self.batch, self.rng)
    jax.block_until_ready(self.state)
    self.recompiles += len(common.compiles) - before


class TorchStep:
  """The PyTorch port, started from gan_jax's initial parameters, on the same constant batch."""

  def __init__(self, config, images, init_state):
    self.trainer = torch_reference.GanTrainer(config, images.shape[1:], len(images))
    torch_reference.load_flax_params(self.trainer.g, init_state.g_params)
    torch_reference.load_flax_params(self.trainer.d, init_state.d_params)
    self.x = torch.from_numpy(np.array(images[:config.train.batch_size]))
    self.out = self.trainer.step(self.x)  # warm-up

  def run(self, count: int) -> None:
    for _ in range(count):
      self.out = self.trainer.step(self.x)


def check_port(jax_step: JaxStep, torch_step: TorchStep, images) -> dict:
  """Parameter counts and eval-mode logits of the two ports from the same parameters."""
  exp, state = jax_step.exp, jax_step.init_state
  trainer = torch_step.trainer
  counts = {'G': (state_lib.param_count(state.g_params), torch_reference.param_count(trainer.g)),
            'D': (state_lib.param_count(state.d_params), torch_reference.param_count(trainer.d))}
  for net, (a, b) in counts.items():
    if a != b:
      raise ValueError(f'{net} has {a} parameters in gan_jax but {b} in the PyTorch port.')
  g = torch_reference.build_generator(exp.config.model, images.shape[1:])
  d = torch_reference.build_discriminator(exp.config.model, images.shape[1:])
  torch_reference.load_flax_params(g, state.g_params)
  torch_reference.load_flax_params(d, state.d_params)
  g.eval()
  d.eval()
  z = np.random.default_rng(1).uniform(-np.sqrt(3), np.sqrt(3), (16, exp.spec.z_dim))
  z = z.astype(np.float32)
  x = np.asarray(images[:16])
  jax_logits = np.concatenate([np.asarray(exp.d_model.apply(state.d_params, x)), np.asarray(
      exp.d_model.apply(state.d_params, exp.g_model.apply(state.g_params, z)))])
  with torch.no_grad():
    torch_logits = torch.cat([d(torch.from_numpy(x)), d(g(torch.from_numpy(z)))])[:, 0].numpy()
  return {'counts': counts, 'max_logit_diff': float(np.abs(jax_logits - torch_logits).max())}


def bench_step(name: str, rule: str, images, steps: int, repeats: int, threads: int) -> dict:
  """Times gan_jax's step, the PyTorch port and a jitted matmul, interleaved."""
  config = make_config(name, rule)
  exp = experiment.build(config, images.shape[1:], len(images))
  jax_step = JaxStep(exp, images)
  torch_step = TorchStep(config, images, jax_step.init_state)
  # Its own copy for the 1-thread timing, so every trainer has made as many updates as gan_jax.
  one_thread = _TORCH_1.value and threads != 1
  torch_step1 = TorchStep(config, images, jax_step.init_state) if one_thread else None
  port = check_port(jax_step, torch_step, images)
  batch = config.train.batch_size
  g_shapes, d_shapes = dense_shapes(jax_step.init_state.g_params), dense_shapes(
      jax_step.init_state.d_params)
  flops = step_flops(g_shapes, d_shapes, batch, rule)
  # The matmul: the step's most common shape, G's widest hidden layer at the batch size.
  width = g_shapes[1][0]
  jax_mm, mm_flops = common.f32_matmul(batch, width)
  ta, tb = torch.randn(batch, width), torch.randn(width, width)
  mm_calls = max(2, int(steps * flops / (2 * batch * width * width) // 4))

  def torch_mm(count):
    for _ in range(count):
      torch.mm(ta, tb)

  rates = {k: 0.0 for k in ('jax', 'torch', 'torch1', 'mm', 'torch_mm')}
  for _ in range(repeats):
    rates['jax'] = max(rates['jax'], best_rate(jax_step.run, steps))
    torch.set_num_threads(threads)
    rates['torch'] = max(rates['torch'], best_rate(torch_step.run, steps))
    rates['torch_mm'] = max(rates['torch_mm'], best_rate(torch_mm, mm_calls))
    rates['mm'] = max(rates['mm'], best_rate(jax_mm, mm_calls))
    if one_thread:  # OpenMP's fork-join suffers most from a loaded machine.
      torch.set_num_threads(1)
      rates['torch1'] = max(rates['torch1'], best_rate(torch_step1.run, steps))
  torch.set_num_threads(threads)
  # The port check compares both after the same updates: read the losses before the pairs below
  # give gan_jax more.
  jax_losses = {k: float(jax_step.metrics[k]) for k in ('d_loss', 'g_loss')}
  # Each pair times the step and then the matmul back to back, so both see the same load; the
  # median of the pairs' ratios is far steadier on a shared machine than a ratio of two bests.
  paired = [best_rate(jax_step.run, steps) * flops / (best_rate(jax_mm, mm_calls) * mm_flops)
            for _ in range(1 if _QUICK.value else _PAIRS.value)]
  return dict(paired_fraction=float(np.median(paired)),
      config=name, rule=rule, jax_steps=rates['jax'], torch_steps=rates['torch'],
      torch1_steps=rates['torch1'],
      flops=flops, xla_flops=jax_step.xla_flops, jax_gflops=rates['jax'] * flops / 1e9,
      torch_gflops=rates['torch'] * flops / 1e9, mm_gflops=rates['mm'] * mm_flops / 1e9,
      torch_mm_gflops=rates['torch_mm'] * mm_flops / 1e9,
      mm_shape=f'[{batch},{width}]x[{width},{width}]', first_step_s=jax_step.first_step_s,
      recompiles=jax_step.recompiles, port=port,
      updates=1 + repeats * steps,
      jax_losses=jax_losses,
      torch_losses={k: float(v) for k, v in torch_step.out.items()})


def bench_input_path(rule: str, images, chunks: int, steps_per_call: int, repeats: int) -> dict:
  """train.py's chunked data-parallel loop (on-device images, EpochSampler indices) vs a
  constant batch."""
  config = make_config('mnist', rule)
  config.train.steps_per_call = steps_per_call
  exp = experiment.build(config, images.shape[1:], len(images))
  n_dev, per_step = jax.device_count(), exp.spec.minibatches_per_step
  batch = config.train.batch_size
  local = batch // n_dev
  step = exp.single_step()
  p_chunk = exp.parallel_chunk()

  def const_chunk(state, fixed, rng):
    return jax.lax.scan(lambda s, _: step(s, fixed, rng), state, None, length=steps_per_call)

  p_const = parallel.over_devices(const_chunk, in_axes=(None, 0, None), out_axes=(None, None),
                                  donate_argnums=(0,))
  on_device = jax.device_put(images, exp.replicated)
  fixed = images[:per_step * batch].reshape(per_step, n_dev, local, *images.shape[1:])
  fixed = jnp.asarray(np.moveaxis(fixed, 1, 0))
  sampler = data.EpochSampler(len(images), batch, config.seed)
  rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  states = {'input': exp.initial_state(images), 'const': exp.initial_state(images)}
  first = {'input': 0}

  def input_path(count):  # As train.Trainer: host indices per chunk, metrics read at the end.
    pending = []
    for _ in range(count // steps_per_call):
      idx = sampler.indices(first['input'] * per_step, steps_per_call * per_step)
      idx = idx.reshape(steps_per_call, per_step, n_dev, local).transpose(2, 0, 1, 3)
      states['input'], metrics = p_chunk(states['input'], on_device, idx, rng)
      pending.append(metrics)
      first['input'] += steps_per_call
    np.asarray([np.asarray(m['finite']) for m in pending])

  def constant(count):
    pending = []
    for _ in range(count // steps_per_call):
      states['const'], metrics = p_const(states['const'], fixed, rng)
      pending.append(metrics)
    np.asarray([np.asarray(m['finite']) for m in pending])

  count = chunks * steps_per_call
  input_path(steps_per_call)  # compile both
  constant(steps_per_call)
  compiles = len(common.compiles)
  rates = {'input': 0.0, 'const': 0.0}
  for _ in range(repeats):
    rates['input'] = max(rates['input'], best_rate(input_path, count))
    rates['const'] = max(rates['const'], best_rate(constant, count))
  return dict(rule=rule, input_steps=rates['input'], const_steps=rates['const'],
              epochs_per_s=rates['input'] * batch * per_step / len(images),
              overhead=1.0 - rates['input'] / rates['const'],
              recompiles=len(common.compiles) - compiles)


def print_report(step_rows, input_rows, sources, threads, loads, timing) -> None:
  print(f'\njax {jax.__version__} ({jax.devices()[0].platform}, {os.cpu_count()} cores), '
        f'torch {torch.__version__} with {threads} threads; {timing}; '
        f'1-minute load average {loads[0]:.1f} at start, {loads[1]:.1f} at end')
  for name, source in sources.items():
    print(f'{name}: {source}')
  print(f'\n| config | rule | gan_jax steps/s | PyTorch steps/s ({threads} threads) | ratio | '
        'PyTorch 1 thread (ratio) | gan_jax GFLOP/s | matmul GFLOP/s (shape) | of matmul | '
        'of matmul, paired median | PyTorch GFLOP/s (of its matmul) | first step s | recompiles |')
  print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  # The matmul rate is the same measurement in every row of a config: pool it (best of all).
  mm, torch_mm = {}, {}
  for r in step_rows:
    mm[r['config']] = max(mm.get(r['config'], 0.0), r['mm_gflops'])
    torch_mm[r['config']] = max(torch_mm.get(r['config'], 0.0), r['torch_mm_gflops'])
  for r in step_rows:
    one = (f"{r['torch1_steps']:.2f} ({r['jax_steps'] / r['torch1_steps']:.2f}x)"
           if r['torch1_steps'] else '-')
    c = r['config']
    print(f"| {c} | {r['rule']} | {r['jax_steps']:.2f} | {r['torch_steps']:.2f} | "
          f"{r['jax_steps'] / r['torch_steps']:.2f}x | {one} | {r['jax_gflops']:.0f} | "
          f"{mm[c]:.0f} {r['mm_shape']} | {r['jax_gflops'] / mm[c]:.0%} | "
          f"{r['paired_fraction']:.0%} | "
          f"{r['torch_gflops']:.0f} ({r['torch_gflops'] / torch_mm[c]:.0%} of "
          f"{torch_mm[c]:.0f}) | {r['first_step_s']:.1f} | {r['recompiles']} |")
  if input_rows:
    print('\n| config | rule | end to end steps/s (epochs/s) | constant batch steps/s | '
          'input path cost | recompiles |')
    print('|---|---|---|---|---|---|')
    for r in input_rows:
      print(f"| mnist | {r['rule']} | {r['input_steps']:.2f} ({r['epochs_per_s']:.3f}) | "
            f"{r['const_steps']:.2f} | {r['overhead']:+.1%} | {r['recompiles']} |")
  print('\nChecks:')
  for r in step_rows:
    p = r['port']
    print(f"  {r['config']}/{r['rule']}: params G {p['counts']['G'][0]:,} = "
          f"{p['counts']['G'][1]:,}, D {p['counts']['D'][0]:,} = {p['counts']['D'][1]:,}; "
          f"eval logits max |diff| {p['max_logit_diff']:.1e}; FLOPs/step {r['flops'] / 1e9:.3f} G "
          f"(XLA cost analysis {r['xla_flops'] / 1e9:.3f} G); losses after {r['updates']} updates "
          f"from the same parameters on the same batch: gan_jax "
          f"d {r['jax_losses']['d_loss']:.4f} g {r['jax_losses']['g_loss']:.4f}, PyTorch "
          f"d {r['torch_losses']['d_loss']:.4f} g {r['torch_losses']['g_loss']:.4f}")


def main(argv):
  del argv
  common.count_compiles()
  threads = _THREADS.value or len(os.sched_getaffinity(0))
  torch.set_num_threads(threads)
  quick = _QUICK.value
  repeats = 1 if quick else _REPEATS.value
  steps = 3 if quick else _STEPS.value
  e2e_chunks, steps_per_call = (1, 3) if quick else (2, mnist.get_config().train.steps_per_call)
  names = ['mnist', 'cifar10'] if _WHICH.value == 'all' else [_WHICH.value]
  loads = [os.getloadavg()[0]]
  step_rows, input_rows, sources = [], [], {}
  for name in names:
    images, sources[name] = load_images(name, quick)
    for rule in RULES:
      name_steps = steps if name == 'mnist' else max(1, steps // 10)
      step_rows.append(bench_step(name, rule, images, name_steps, repeats, threads))
      print(step_rows[-1], flush=True)
      if name == 'mnist':
        input_rows.append(bench_input_path(rule, images, e2e_chunks, steps_per_call, repeats))
        print(input_rows[-1], flush=True)
  loads.append(os.getloadavg()[0])
  timing = (f'best of {repeats} interleaved repeats of {steps} steps (CIFAR-10: '
            f'{max(1, steps // 10)}; end to end: {e2e_chunks} chunks of {steps_per_call})')
  print_report(step_rows, input_rows, sources, threads, loads, timing)


if __name__ == '__main__':
  app.run(main)
