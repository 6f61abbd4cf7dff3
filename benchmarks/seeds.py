r"""Many seeds in one program: S seeds in one compiled chunk against S single-seed runs.

`config.num_seeds=S` trains seeds seed, ..., seed + S - 1 as independent GANs in one compiled
program (gan_jax/train_step.py's data-parallel seeds chunk over a leading seed axis of the
state, its steps laid out as `config.train.member_axis`: 'vmap', batched into one computation,
or 'map', one seed after another inside the call). This times that program for each S in
`--seeds` and each layout in `--member_axes` against the same S
seeds trained one after another in the same process, each with the single-seed program
(config.num_seeds=1), both fed exactly as gan_jax/train.py's Trainer feeds them (the images on
the device, each seed's EpochSampler indices and its own key, `--steps_per_call` steps per call).
The MNIST config (the paper's architecture, batch 100), `--rule` simultaneous, alternating
(k=1) or both; real MNIST when TFDS_DATA_DIR is set, random images of its shape otherwise
(the speed does not depend on the pixels).

  python benchmarks/seeds.py --seeds=1,2,4,8                       # CPU
  python benchmarks/seeds.py --rule=both --seeds=1,2,4,8           # both update rules
  python benchmarks/seeds.py --seeds=1,2,4,8,16,32 --dtype=bfloat16  # GPU (also float32)
  python benchmarks/seeds.py --quick                               # smoke test, well under a minute
  python benchmarks/seeds.py --seeds=1,4 --member_axes=map         # one layout only
  python benchmarks/seeds.py --rule=both --seeds=2,3 --identity_steps=200  # seeds vs alone, bitwise

With `--identity_steps=N` it times nothing: it trains every seed of each S > 1 program (each
layout) and each seed alone for N steps and says whether their states are bit-identical.

Every repeat times, for every S in turn, one call of the S-seed program and S calls of the
single-seed program (alternating which goes first), then the reference matmul; nothing is timed
in a different phase from what it is compared with. Columns:

  * S: seeds in the program. S = 1 is the single-seed program against itself: the ratio's
    noise floor.
  * members as: config.train.member_axis of the S-seed program ('auto' picks 'map' on a CPU,
    'vmap' elsewhere).
  * one program, S programs in turn: seed-steps/s (S * steps / seconds), best of the repeats.
  * ratio: the throughput of the one program over the sequential runs, the median over the
    repeats of each repeat's (sequential seconds / one-program seconds) for the same
    seed-steps; (min-max) over the repeats. Above 1.0x the one program is faster.
  * GFLOP/s (of matmul): seed-steps/s times the step's FLOPs (counted from the layer shapes,
    benchmarks/common.py's step_flops), and that as a fraction of a jitted float32
    [100, 1200] x [1200, 1200] matmul (the step's commonest shape) timed in the same repeats
    (float32 whatever --dtype).
  * first call s: the S-seed program's first call (trace, compile, run one chunk).
  * warm-up compiles: XLA compilations during the S-seed program's first two calls (the
    first compiles it; the second, fed the `active` flags the first returned, as the Trainer
    feeds them, should not).
  * recompiles: XLA compilations during the timed calls, after the warm-up (must be 0).
  * state, temp MiB/seed: the state's bytes (parameters, optimiser state, step), and the
    temporary buffers XLA allocates for the compiled S-seed program (its memory_analysis():
    activations, gradients, the gathered batch, the scan's copies), each divided by S.
    Neither counts the training images, which all seeds share (once per device).
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import common
from benchmarks.common import best_rate, dense_shapes, load_images, make_config, step_flops
from gan_jax import data
from gan_jax import experiment
from gan_jax import state as state_lib
from gan_jax import train_step
from gan_jax import workdir

RULES = ('simultaneous', 'alternating')


def define_flags() -> None:
  """The command line's flags (defined only when run as a script: tests import this module
  next to benchmarks/gpu.py, which has flags of the same names)."""
  flags.DEFINE_enum('rule', 'simultaneous', [*RULES, 'both'], 'Update rule(s) to time.')
  flags.DEFINE_list('seeds', ['1', '2', '4', '8'], 'Seeds per program, S.')
  flags.DEFINE_list('member_axes', list(train_step.MEMBER_AXES),
                    "config.train.member_axis values to time for S > 1: 'vmap', 'map'.")
  flags.DEFINE_integer('steps_per_call', 50, 'Steps per compiled call (timed: one call).')
  flags.DEFINE_integer('repeats', 3, 'Interleaved repeats; best and median reported.')
  flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                    'config.model.compute_dtype (bfloat16 is meant for a GPU).')
  flags.DEFINE_bool('quick', False, 'Tiny networks and a few steps, for a smoke test.')
  flags.DEFINE_integer('identity_steps', 0,
                       'If > 0, no timing: train every seed of each S > 1 program (each layout) '
                       'and each seed alone for this many steps, and compare their states.')


def seeds_config(rule: str, dtype: str, num_seeds: int, steps_per_call: int, quick: bool,
                 member_axis: str = 'auto'):
  """The MNIST config with `num_seeds` seeds laid out as `member_axis`; with `quick`, tiny
  networks and batch."""
  config = make_config('mnist', rule, dtype)
  config.num_seeds, config.train.steps_per_call = num_seeds, steps_per_call
  config.train.member_axis = member_axis
  if quick:
    m = config.model
    m.g_hidden, m.d_units, m.d_pieces = (32, 32), (16, 16), 3
    config.train.batch_size = 8
  return config


class Program:
  """One compiled chunk and the seeds it trains, called as train.Trainer._steps calls it."""

  def __init__(self, exp, chunk, images, on_device):
    self.exp, self.chunk, self.images = exp, chunk, on_device
    self.state = exp.initial_state(images)
    self.samplers = [data.EpochSampler(len(images), exp.config.train.batch_size, seed)
                     for seed in exp.seeds]
    rngs = [jax.random.fold_in(jax.random.key(seed), 1) for seed in exp.seeds]
    self.rng = jax.numpy.stack(rngs) if exp.stacked else rngs[0]
    self.own_hypers = exp.hypers()[1]
    self.active = np.ones(len(exp.seeds), bool)
    self.step = 0
    self.finite = True

  def args(self, count: int) -> tuple:
    """The chunk's arguments for `count` steps from self.step, as Trainer._steps gives them."""
    idx = train_step.chunk_indices(self.samplers, self.step, count,
                                   self.exp.spec.minibatches_per_step,
                                   self.exp.config.train.batch_size)
    if self.exp.stacked:
      return self.state, self.images, idx, (self.rng, self.own_hypers), self.active
    return self.state, self.images, idx, self.rng

  def call(self, count: int) -> None:
    """`count` steps in one call (not waited for)."""
    if self.exp.stacked:
      (self.state, self.active), self.metrics = self.chunk(*self.args(count))
    else:
      self.state, self.metrics = self.chunk(*self.args(count))
    self.step += count

  def wait(self) -> None:
    jax.block_until_ready(self.state)
    self.finite = self.finite and bool(np.all(np.asarray(self.metrics['finite'])))


def timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def memory(program: Program, count: int) -> dict:
  """The compiled program's state and temporary bytes, per seed."""
  compiled = program.chunk.lower(*program.args(count)).compile()
  analysis = compiled.memory_analysis()
  seeds = len(program.exp.seeds)
  state_bytes = sum(x.nbytes for x in jax.tree.leaves(program.state))
  temp = getattr(analysis, 'temp_size_in_bytes', None) if analysis is not None else None
  return dict(state_per_seed=state_bytes / seeds,
              temp_per_seed=float('nan') if temp is None else temp / seeds)


def bench_rule(rule: str, seeds: list[int], axes: list[str], steps: int, repeats: int,
               dtype: str, quick: bool, images) -> dict:
  """Times every S in `seeds` (S > 1 laid out as each of `axes`) against S single-seed calls,
  and the matmul, interleaved."""
  config = seeds_config(rule, dtype, 1, steps, quick)
  shape, n = images.shape[1:], len(images)
  # The single-seed program, compiled once, run for seeds seed, seed + 1, ... in turn.
  singles = [experiment.build(workdir.member_config(config, config.seed + i), shape, n)
             for i in range(max(seeds))]
  single_chunk = singles[0].parallel_chunk()
  on_device = jax.device_put(images, singles[0].replicated)
  sequential = [Program(exp, single_chunk, images, on_device) for exp in singles]
  one = sequential[0].state
  batch = config.train.batch_size
  g_shapes, d_shapes = dense_shapes(one.g_params), dense_shapes(one.d_params)
  flops = step_flops(g_shapes, d_shapes, batch, rule)
  run_mm, mm_flops = common.f32_matmul(batch, g_shapes[1][0])
  mm_calls = max(2, int(steps * flops / mm_flops / 4))

  rows = []
  for s, axis in [(s, a) for s in seeds for a in (['-'] if s == 1 else axes)]:
    many = seeds_config(rule, dtype, s, steps, quick, 'auto' if s == 1 else axis)
    exp = experiment.build(many, shape, n)
    chunk = single_chunk if s == 1 else exp.parallel_chunk()
    program = Program(exp, chunk, images, on_device)
    row = dict(rule=rule, seeds=s, axis=axis, program=program, multi=[], seq=[], recompiles=0)
    before = len(common.compiles)
    row['first_call_s'] = timed(lambda p=program: (p.call(steps), p.wait()))
    program.call(steps)  # The second call as the Trainer makes it (`active` now on the device).
    program.wait()
    row['warmup_compiles'] = len(common.compiles) - before
    row.update(memory(program, steps))
    rows.append(row)
  for p in sequential:  # Warm-up (the single-seed program compiled with the S = 1 row).
    p.call(steps)
    p.wait()

  def run_sequential(s):
    for p in sequential[:s]:
      p.call(steps)
    for p in sequential[:s]:
      p.wait()

  mm_rates = []
  for r in range(repeats):
    for row in rows:
      s, program = row['seeds'], row['program']
      before = len(common.compiles)
      multi = lambda: (program.call(steps), program.wait())
      seq = lambda: run_sequential(s)
      if (r + row['seeds']) % 2:
        t_multi, t_seq = timed(multi), timed(seq)
      else:
        t_seq, t_multi = timed(seq), timed(multi)
      row['recompiles'] += len(common.compiles) - before
      row['multi'].append(t_multi)
      row['seq'].append(t_seq)
    mm_rates.append(best_rate(run_mm, mm_calls) * mm_flops / 1e9)
  mm_gflops = max(mm_rates)
  for row in rows:
    s = row['seeds']
    ratios = np.array(row['seq']) / np.array(row['multi'])
    row.update(
        multi_rate=s * steps / min(row['multi']), seq_rate=s * steps / min(row['seq']),
        ratio=float(np.median(ratios)), ratio_min=float(ratios.min()),
        ratio_max=float(ratios.max()),
        finite=row['program'].finite and all(p.finite for p in sequential[:s]))
    row['gflops'] = row['multi_rate'] * flops / 1e9
    row['seq_gflops'] = row['seq_rate'] * flops / 1e9
    del row['program']
  return dict(rule=rule, rows=rows, mm_gflops=mm_gflops, flops=flops,
              mm_shape=f'[{batch},{g_shapes[1][0]}]x[{g_shapes[1][0]},{g_shapes[1][0]}]')


def identity(rule: str, num_seeds: int, axis: str, steps: int, quick: bool, images) -> dict:
  """Each seed of an S-seed program (laid out as `axis`) against that seed trained alone, after
  `steps` steps fed as the Trainer feeds them: whether every leaf of every seed's state is
  bit-identical, and the largest absolute difference."""
  shape, n = images.shape[1:], len(images)
  many = experiment.build(seeds_config(rule, 'float32', num_seeds, 50, quick, axis), shape, n)
  on_device = jax.device_put(images, many.replicated)
  programs = [Program(many, many.parallel_chunk(), images, on_device)]
  for seed in many.seeds:
    alone = experiment.build(workdir.member_config(
        seeds_config(rule, 'float32', 1, 50, quick), seed), shape, n)
    programs.append(Program(alone, alone.parallel_chunk(), images, on_device))
  for program in programs:
    for first in range(0, steps, 50):
      program.call(min(50, steps - first))
    program.wait()
  pairs = [(state_lib.seed_slice(programs[0].state, i), p.state)
           for i, p in enumerate(programs[1:])]
  leaves = [(np.asarray(a), np.asarray(b)) for x, y in pairs
            for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y))]
  diff = max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in leaves)
  return dict(rule=rule, seeds=num_seeds, axis=axis, steps=steps, max_abs_diff=diff,
              identical=all(np.array_equal(a, b) for a, b in leaves),
              finite=all(p.finite for p in programs))


def print_report(results: list[dict], source: str, dtype: str, steps: int, repeats: int,
                 loads) -> None:
  dev = jax.devices()[0]
  print(f'\njax {jax.__version__} ({dev.platform} {getattr(dev, "device_kind", "")}, '
        f'{jax.device_count()} device(s), {os.cpu_count()} cores); {source}; compute dtype '
        f'{dtype}; {steps} steps per call, {repeats} interleaved repeats; 1-minute load average '
        f'{loads[0]:.1f} at start, {loads[1]:.1f} at end')
  for res in results:
    print(f"\n{res['rule']}: {res['flops'] / 1e9:.3f} GFLOP per seed-step; f32 matmul "
          f"{res['mm_shape']} {res['mm_gflops']:.0f} GFLOP/s (best of the repeats)")
    print('\n| rule | S | members as | one program seed-steps/s | S programs in turn '
          'seed-steps/s | ratio (min-max) | GFLOP/s (of matmul) | in turn GFLOP/s (of matmul) | '
          'first call s | '
          'warm-up compiles | recompiles | state MiB/seed | temp MiB/seed | finite |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    mm = res['mm_gflops']
    for r in res['rows']:
      print(f"| {r['rule']} | {r['seeds']} | {r['axis']} | {r['multi_rate']:.2f} | "
            f"{r['seq_rate']:.2f} | {r['ratio']:.2f}x ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) | "
            f"{r['gflops']:.1f} ({r['gflops'] / mm:.0%}) | "
            f"{r['seq_gflops']:.1f} ({r['seq_gflops'] / mm:.0%}) | {r['first_call_s']:.1f} | "
            f"{r['warmup_compiles']} | {r['recompiles']} | {r['state_per_seed'] / 2**20:.1f} | "
            f"{r['temp_per_seed'] / 2**20:.1f} | {r['finite']} |")


def run(rules, seeds, steps: int, repeats: int, dtype: str = 'float32', quick: bool = False,
        axes=train_step.MEMBER_AXES) -> tuple[list[dict], str]:
  """Every rule's rows (see bench_rule) and where the images came from."""
  common.count_compiles()
  if quick:
    raw = np.random.default_rng(0).integers(0, 256, (256, 28, 28, 1), dtype=np.uint8)
    images = data.preprocess(raw, make_config('mnist', 'simultaneous').data.preprocessing)
    source = f'random uint8 images {raw.shape}'
  else:
    images, source = load_images('mnist', quick)
  results = []
  for rule in rules:
    results.append(bench_rule(rule, seeds, list(axes), steps, repeats, dtype, quick, images))
    for row in results[-1]['rows']:  # Progress, in case a time limit cuts the run short.
      print(f"{rule} S={row['seeds']} ({row['axis']}): {row['multi_rate']:.2f} vs "
            f"{row['seq_rate']:.2f} seed-steps/s, ratio {row['ratio']:.2f}x", flush=True)
  return results, source


def main(argv):
  del argv
  f = flags.FLAGS
  rules = RULES if f.rule == 'both' else (f.rule,)
  seeds = [1, 2] if f.quick else [int(s) for s in f.seeds]
  steps, repeats = (2, 1) if f.quick else (f.steps_per_call, f.repeats)
  if f.identity_steps:
    images = load_images('mnist', f.quick)[0]
    for rule in rules:
      for s in (s for s in seeds if s > 1):
        for axis in f.member_axes:
          r = identity(rule, s, axis, f.identity_steps, f.quick, images)
          print(f"{rule} S={s} ({axis}), {r['steps']} steps: every seed bit-identical to its run "
                f"alone: {r['identical']} (largest difference {r['max_abs_diff']:.3g}; finite "
                f"{r['finite']})", flush=True)
    return
  loads = [os.getloadavg()[0]]
  results, source = run(rules, seeds, steps, repeats, f.dtype, f.quick, f.member_axes)
  loads.append(os.getloadavg()[0])
  print_report(results, source, f.dtype, steps, repeats, loads)


if __name__ == '__main__':
  define_flags()
  app.run(main)
