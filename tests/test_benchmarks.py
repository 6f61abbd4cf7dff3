"""benchmarks/gpu.py runs anywhere (here on the CPU) and counts the step's FLOPs as documented;
benchmarks/seeds.py --quick runs."""

import pytest

from benchmarks import gpu
from benchmarks import seeds


@pytest.mark.parametrize('rule, gflops', [('simultaneous', 2.820816), ('alternating', 3.566784)])
def test_step_rates_and_flops(rule, gflops):
  row = gpu.bench_step('mnist', rule, 'bf16', steps=2, repeats=1)
  # 2 FLOPs per multiply-add of the dots a batch-100 step needs (README's 2.82 / 3.57 GFLOP).
  assert row['flops'] == pytest.approx(gflops * 1e9)
  assert row['finite'] and row['steps_per_s'] > 0 and row['precision'] == 'bf16'


def test_matmul_rate_is_positive():
  assert gpu.bench_matmul('f32', 8, 16, 16, count=3, repeats=1) > 0


def test_seeds_quick():
  """benchmarks/seeds.py --quick: every S row (S > 1 as both member axes) timed against the
  sequential runs, no recompiles."""
  results, _ = seeds.run(['simultaneous'], [1, 2], steps=2, repeats=1, quick=True)
  rows = results[0]['rows']
  assert [(r['seeds'], r['axis']) for r in rows] == [(1, '-'), (2, 'vmap'), (2, 'map')]
  for r in rows:
    assert r['recompiles'] == 0 and r['finite']
    assert r['multi_rate'] > 0 and r['seq_rate'] > 0 and r['ratio'] > 0
    assert r['state_per_seed'] > 0 and r['temp_per_seed'] >= 0
  # Per seed, the stacked state is exactly one seed's.
  assert rows[1]['state_per_seed'] == rows[2]['state_per_seed'] == rows[0]['state_per_seed']


def test_seeds_identity_check_runs():
  """benchmarks/seeds.py --identity_steps: every seed of a 2-seed program against its run alone."""
  images = seeds.load_images('mnist', True)[0][:256]
  for axis in ('vmap', 'map'):
    r = seeds.identity('simultaneous', 2, axis, steps=3, quick=True, images=images)
    assert r['finite'] and isinstance(r['identical'], bool)
    assert 0.0 <= r['max_abs_diff'] <= 1e-6  # Float32 rounding at most (bit-identical here).
