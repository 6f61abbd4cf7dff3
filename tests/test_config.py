"""gan_jax.config: the base schema, and old runs' config.json upgraded to it."""

import copy
import json
import os

import ml_collections
import pytest

from conftest import ROOT
from gan_jax import config as config_lib
from gan_jax import workdir as workdir_lib

RECORDED = os.path.join(ROOT, 'results', 'mnist_simultaneous_seed0.config.json')


def _flat(d, prefix=''):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict) and v:
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = list(v) if isinstance(v, tuple) else v
  return out


def _mnist(arg=None):
  from experiments import mnist  # pylint: disable=g-import-not-at-top
  return mnist.get_config(arg)


def test_base_config_is_locked_and_has_the_added_fields_off():
  base = config_lib.base_config()
  assert base.is_locked
  with pytest.raises(AttributeError, match='nums_steps'):
    base.train.nums_steps = 10
  # The fields added after runs were first written hold the value that behaves as their absence.
  assert base.data.idx_dir == '' and base.data.fold == 0 and base.data.allow_download
  assert base.model.compute_dtype == 'float32' and base.train.g_ema_decay == 0.0
  assert base.model.g_pre_hidden == () and base.model.g_init_from == ''
  assert not base.model.g_output_bias_from_marginals
  assert base.eval.parzen.g_average == 0 and base.eval.parzen.g_ema is False
  assert base.stages.to_dict() == {} and base.stage_order == () and base.stage == ''


def test_the_recorded_mnist_run_upgrades_to_todays_mnist_config():
  with open(RECORDED) as f:
    old = json.load(f)
  before = copy.deepcopy(old)
  upgraded = config_lib.upgrade(old)
  assert old == before  # Not modified in place.
  lacking = sorted(set(_flat(upgraded)) - set(_flat(old)))
  assert {'train.g_ema_decay', 'eval.parzen.g_ema', 'model.g_pre_hidden', 'model.g_init_from',
          'data.toy_mean', 'model.d_conv_channels', 'stage'} <= set(lacking)
  # Every field the file has is kept as it is; the added ones get the base's defaults.
  flat_old, flat_new, base = _flat(old), _flat(upgraded), _flat(config_lib.base_config().to_dict())
  assert {k: flat_new[k] for k in flat_old} == flat_old
  assert all(flat_new[k] == base[k] for k in lacking)
  # The same run as today's experiments/mnist.py, up to its length and bookkeeping.
  today = workdir_lib.config_dict(_mnist())
  assert workdir_lib.differences(old, today) == []
  assert sorted(k for k in _flat(config_lib.upgrade(today))
                if _flat(config_lib.upgrade(today))[k] != flat_new[k]) == [
                    'eval.every', 'train.keep_checkpoints', 'train.num_steps']
  config = config_lib.from_json_dict(old)
  assert config.is_locked and config.train.g_ema_decay == 0.0
  assert config.model.g_hidden == (1200, 1200)  # JSON lists back as tuples.
  assert config.train.num_steps == 2_000_000


def test_upgrade_leaves_stages_and_present_fields_alone():
  old = {'seed': 3, 'stages': {'pretrain': {'train': {'num_steps': 7}}},
         'train': {'num_steps': 5, 'removed_field': 1}}
  new = config_lib.upgrade(old)
  assert new['stages'] == {'pretrain': {'train': {'num_steps': 7}}}
  assert new['seed'] == 3 and new['train']['num_steps'] == 5 and new['train']['removed_field'] == 1
  assert new['train']['g_ema_decay'] == 0.0 and new['train']['batch_size'] == 100
  assert new['model'] == workdir_lib.config_dict(config_lib.base_config())['model']  # Absent.
  assert new['eval']['parzen']['g_average'] == 0 and new['stage_order'] == []
  assert config_lib.upgrade({})['stages'] == {}
  assert config_lib.upgrade(new) == new


def test_differences_upgrade_both_sides():
  today = workdir_lib.config_dict(_mnist())
  old = copy.deepcopy(today)
  del old['train']['g_ema_decay'], old['model']['compute_dtype'], old['stages']
  assert workdir_lib.differences(old, today) == []
  assert workdir_lib.differences(today, old) == []
  ema = copy.deepcopy(today)
  ema['train']['g_ema_decay'] = 0.999
  assert workdir_lib.differences(old, ema) == ['train.g_ema_decay']
  ema['eval']['parzen']['g_ema'] = True  # eval.* may change between launches.
  ema['eval']['modes']['num_samples'] = 7
  ema['eval']['every'] = 3
  ema['train']['num_steps'] = 10
  assert workdir_lib.differences(old, ema) == ['train.g_ema_decay']


def test_read_config(tmp_path):
  assert workdir_lib.read_config(str(tmp_path)) is None
  with open(RECORDED) as f:
    old = json.load(f)
  del old['data']['idx_dir']
  with open(tmp_path / 'config.json', 'w') as f:
    json.dump(old, f)
  config = workdir_lib.read_config(str(tmp_path))
  assert isinstance(config, ml_collections.ConfigDict) and config.is_locked
  assert config.data.idx_dir == '' and config.model.compute_dtype == 'float32'
  assert config.eval.parzen.sigmas == tuple(old['eval']['parzen']['sigmas'])
  with pytest.raises(AttributeError):
    config.train.new_field = 1


def test_parse_variant():
  assert config_lib.parse_variant(None, ('quick',), 'mnist') == ''
  assert config_lib.parse_variant('quick', ('quick',), 'mnist') == 'quick'
  with pytest.raises(ValueError, match=r"Unknown config argument 'fast': use "
                     r'experiments/mnist.py:quick, or experiments/mnist.py \(no argument\)'):
    config_lib.parse_variant('fast', ('quick',), 'mnist')
  with pytest.raises(ValueError, match=r'use experiments/toy1d.py \(no argument\)'):
    config_lib.parse_variant('quick', (), 'toy1d')
