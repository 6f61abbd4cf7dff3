"""benchmarks/gpu.py runs anywhere (here on the CPU) and counts the step's FLOPs as documented."""

import pytest

from benchmarks import gpu


@pytest.mark.parametrize('rule, gflops', [('simultaneous', 2.820816), ('alternating', 3.566784)])
def test_step_rates_and_flops(rule, gflops):
  row = gpu.bench_step('mnist', rule, 'bf16', steps=2, repeats=1)
  # 2 FLOPs per multiply-add of the dots a batch-100 step needs (README's 2.82 / 3.57 GFLOP).
  assert row['flops'] == pytest.approx(gflops * 1e9)
  assert row['finite'] and row['steps_per_s'] > 0 and row['precision'] == 'bf16'


def test_matmul_rate_is_positive():
  assert gpu.bench_matmul('f32', 8, 16, 16, count=3, repeats=1) > 0
