"""The modes score logged during training (config.eval.modes.every) and the point datasets'
checks at config time (gan_jax.validation)."""

import json
import os

import pytest

from experiments import mog2d
from experiments import toy1d
from gan_jax import api
from gan_jax import validation
from gan_jax.errors import ConfigError
from gan_jax.errors import DataError


def _tiny_ring8(num_seeds=1, every=10):
  config = mog2d.get_config('ring8')
  config.num_seeds = num_seeds
  config.data.toy_size = 2_000
  config.train.batch_size, config.train.num_steps, config.train.steps_per_call = 64, 20, 10
  config.train.log_every = config.train.checkpoint_every = config.train.sample_every = 10
  config.eval.method = 'modes'
  config.eval.modes.num_samples = 400
  config.eval.modes.every = every
  return config


def _records(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_modes_are_logged_during_training_and_end_at_modes_json(tmp_path):
  workdir = str(tmp_path / 'run')
  config = _tiny_ring8()
  api.train_and_evaluate(config, workdir)
  logged = [r for r in _records(os.path.join(workdir, 'metrics.jsonl')) if 'modes_covered' in r]
  assert [r['step'] for r in logged] == [10, 20]
  for r in logged:
    assert 0 <= r['modes_covered'] <= 8 and 0 <= r['high_quality'] <= 1
  # The same samples as --mode=eval's: the last logged score is modes.json's.
  record = api.evaluate(config, workdir)
  assert logged[-1]['modes_covered'] == record['modes_covered']
  assert logged[-1]['high_quality'] == record['high_quality']
  if record['kl_to_uniform'] is not None:
    assert logged[-1]['kl_to_uniform'] == pytest.approx(record['kl_to_uniform'])
  # 2-D points have no image to tile: no sample grids.
  assert not os.path.exists(os.path.join(workdir, 'samples'))


def test_modes_are_logged_for_each_seed(tmp_path):
  workdir = str(tmp_path / 'seeds')
  api.train_and_evaluate(_tiny_ring8(num_seeds=2, every=20), workdir)
  for s in (0, 1):
    logged = [r for r in _records(os.path.join(workdir, f'seed_{s}', 'metrics.jsonl'))
              if 'modes_covered' in r]
    assert [r['step'] for r in logged] == [20]


def test_no_modes_logged_by_default(tmp_path):
  workdir = str(tmp_path / 'run')
  api.train_and_evaluate(_tiny_ring8(every=0), workdir)
  assert not any('modes_covered' in r
                 for r in _records(os.path.join(workdir, 'metrics.jsonl')))


@pytest.mark.parametrize('section,field,value,error,message', [
    ('data', 'mixture_radius', 0.0, DataError, r'mixture_radius must be positive, got 0.0'),
    ('data', 'mixture_std', -0.1, DataError, r'mixture_std must be positive, got -0.1'),
    ('model', 'g_output_activation', 'sigmoid', ConfigError,
     r"'ring8' holds real-valued points.*g_output_activation=linear"),
    ('eval.modes', 'every', -1, ConfigError, r'eval.modes.every must be >= 0'),
])
def test_bad_point_settings_stop_training_before_anything_is_written(
    tmp_path, section, field, value, error, message):
  config = _tiny_ring8()
  target = config
  for part in section.split('.'):
    target = target[part]
  target[field] = value
  with pytest.raises(error, match=message) as e:
    api.train_and_evaluate(config, str(tmp_path / 'run'))
  assert '\n' not in str(e.value)
  assert not (tmp_path / 'run').exists()


def test_grid_spacing_is_checked_at_config_time():
  config = mog2d.get_config('grid25')
  config.data.mixture_spacing = -2.0
  with pytest.raises(DataError, match=r'mixture_spacing must be positive, got -2.0'):
    validation.validate(config, 1)


def test_toy1d_needs_a_linear_output_too():
  config = toy1d.get_config()
  config.model.g_output_activation = 'tanh'
  with pytest.raises(ConfigError, match=r"'toy1d' holds real-valued points"):
    validation.validate(config, 1)
