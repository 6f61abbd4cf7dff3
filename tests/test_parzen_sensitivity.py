"""results/parzen_sensitivity.py: the protocol's free choices varied around one checkpoint."""

import pytest
import tensorflow_datasets as tfds

from conftest import small_eval, tiny_mnist_config
from gan_jax import api
from gan_jax import data
from gan_jax import evaluation
from results import parzen_sensitivity


def test_variants_agree_with_the_protocol(tmp_path):
  workdir = str(tmp_path / 'run')
  config = small_eval(tiny_mnist_config(num_steps=4, checkpoint_every=4))
  with tfds.testing.mock_data(num_examples=64):
    api.train_and_evaluate(config, workdir)
    protocol = evaluation.evaluate(config, workdir, step=4)
    result = parzen_sensitivity.sensitivity(config, workdir, None, [50, 30], [1, 2],
                                            fine_sigmas=20)
    memoriser = parzen_sensitivity.sensitivity(config, workdir, None, [40], [1, 2], 20,
                                               data_as_samples=True)
    with pytest.raises(data.DataError, match='exceeds the 64 training images: lower it'):
      parzen_sensitivity.sensitivity(config, workdir, None, [65], [1], 20, data_as_samples=True)
  assert result['step'] == 4 and result['samples'] == 'generator'
  rows = {(r['num_samples'], r['seed']): r for r in result['rows']}
  assert sorted(rows) == [(30, 1), (30, 2), (50, 1), (50, 2)]
  # Seed 1 with 50 samples is exactly what --mode=eval scores.
  same = rows[(50, 1)]['paper']
  assert same['sigma'] == pytest.approx(protocol['sigma'])
  assert same['mean_ll'] == pytest.approx(protocol['mean_ll'], rel=1e-6)
  assert same['std_err'] == pytest.approx(protocol['std_err'], rel=1e-5)
  assert rows[(50, 2)]['paper']['mean_ll'] != same['mean_ll']  # Another noise key.
  for r in result['rows'] + memoriser['rows']:
    # The test-peeking sigma is the best over a grid holding both grids' choices.
    assert r['test_oracle']['mean_ll'] >= max(r['paper']['mean_ll'], r['fine']['mean_ll']) - 1e-9
  assert memoriser['step'] is None and memoriser['samples'] == 'training images'
  assert memoriser['rows'][0]['paper']['mean_ll'] != memoriser['rows'][1]['paper']['mean_ll']
  table = parzen_sensitivity.markdown(result)
  assert table.count('\n| generator @ 4 |') == 4 and '(peeks)' in table
