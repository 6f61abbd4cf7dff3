"""Tests for the TFD (two-stage) and CIFAR-10 experiment configs and gan_jax.stages."""

import importlib.util
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gan_jax
from gan_jax import checkpoint
from gan_jax import data
from gan_jax import experiment
from gan_jax import models
from gan_jax import stages
from gan_jax import state as state_lib
from gan_jax import validation
from gan_jax import warm_start
import tfd_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(name, arg=None):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'experiments',
                                                                   f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg)
  config.lock()  # As launch.py does: overrides may change fields, never add them.
  return config


def _tiny(config):
  """Small widths and a few steps, so a run takes seconds."""
  t = config.train
  t.batch_size, t.steps_per_call = 8, 1
  t.log_every = t.sample_every = t.checkpoint_every = 2
  config.eval.every = 0
  return config


def _tiny_tfd(tmp_path, arg=None):
  config = _tiny(_config('tfd', arg))
  config.data.data_dir = str(tmp_path / 'data')
  config.data.manual_dir = str(tmp_path / 'manual')
  config.model.g_hidden, config.model.d_units = (16, 16), (8, 8)
  config.model.z_dim = 6
  config.stages.train.model.g_pre_hidden = (16, 6)
  config.stages.pretrain.train.num_steps = 2
  config.stages.train.train.num_steps = 2
  return config


@pytest.fixture(scope='module')
def tfd_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('tfd')
  (root / 'manual').mkdir()
  tfd_fixtures.write_synthetic_tfd(root / 'manual', n=64, size=48, fmt='v5')
  return root


def _count(model, *inputs):
  return state_lib.param_count(jax.eval_shape(model.init, jax.random.key(0), *inputs))


def test_full_size_models_have_the_papers_shapes():
  """eval_shape only: the real models (G up to 89M parameters) are never allocated."""
  z = jnp.zeros((1, 100))
  tfd = _config('tfd')
  pre, train = (stages.stage_config(tfd, s) for s in ('pretrain', 'train'))
  g = models.build_generator(pre.model, (48, 48, 1))
  assert _count(g, z) == (100 * 8000 + 8000) + (8000 * 8000 + 8000) + (8000 * 2304 + 2304)
  assert jax.eval_shape(g.apply, jax.eval_shape(g.init, jax.random.key(0), z),
                        jnp.zeros((3, 100))).shape == (3, 48, 48, 1)
  g2 = models.build_generator(train.model, (48, 48, 1))
  shapes = jax.tree.map(lambda a: a.shape, jax.eval_shape(g2.init, jax.random.key(0), z))
  assert shapes['params'] == {
      'pre0': {'kernel': (100, 8000), 'bias': (8000,)},
      'pre1': {'kernel': (8000, 100), 'bias': (100,)},
      'h0': {'kernel': (100, 8000), 'bias': (8000,)},
      'h1': {'kernel': (8000, 8000), 'bias': (8000,)},
      'out': {'kernel': (8000, 2304), 'bias': (2304,)}}
  d = models.build_discriminator(pre.model)
  assert _count(d, jnp.zeros((1, 48, 48, 1))) == (2304 * 6000 + 6000) + (1200 * 6000 + 6000) + 1201

  cifar = _config('cifar10')
  g = models.build_generator(cifar.model, (32, 32, 3))
  assert _count(g, z) == (100 * 8000 + 8000) + (8000 * 8000 + 8000) + (8000 * 3072 + 3072)
  d = models.build_discriminator(cifar.model)
  assert _count(d, jnp.zeros((1, 32, 32, 3))) == (3072 * 8000 + 8000) + (1600 * 8000 + 8000) + 1601


def test_configs_validate_and_follow_the_original_yaml():
  for name in ('cifar10', 'cifar10_conv'):
    validation.validate(_config(name), 1)
  tfd = _config('tfd')
  assert stages.selected_stages(tfd) == ('pretrain', 'train')
  pre, train = (stages.stage_config(tfd, s) for s in ('pretrain', 'train'))
  for stage in (pre, train):
    validation.validate(stage, 1)
    assert not stage.stages and not stage.stage_order and stage.is_locked  # A single run.
    assert stage.optim.max_col_norm == 1.9365 and stage.optim.learning_rate == 0.05
    assert stage.data.train_split == 'unlabeled' and stage.model.prior == 'gaussian'
  steps_per_epoch = 98_058 // 100
  assert pre.train.num_steps == 50 * steps_per_epoch
  assert train.train.num_steps == 22 * steps_per_epoch
  assert pre.model.g_pre_hidden == () and pre.model.g_init_from == ''
  assert train.model.g_pre_hidden == (8000, 100) and train.model.g_pre_bias == (0.0, -2.0)
  assert train.model.g_init_from == 'pretrain'
  assert stages.selected_stages(_config('tfd', 'stage=train')) == ('train',)
  final, workdir = stages.final_stage(tfd, 'runs/tfd')
  assert workdir == os.path.join('runs/tfd', 'train') and final.model.g_pre_hidden
  with pytest.raises(ValueError, match='Unknown config argument'):
    _config('tfd', 'stage=finetune')


def test_stage_overrides_are_checked():
  config = _config('tfd')
  config.train.num_steps = 10  # Set per stage: a shared value would be silently replaced.
  with pytest.raises(validation.ConfigError, match='--config.stages.pretrain.train.num_steps'):
    stages.stage_config(config, 'pretrain')
  config = _config('tfd')
  config.stages.train.model.g_pre_hidden = (8000, 50)
  with pytest.raises(validation.ConfigError, match='must have the 100 units'):
    stages.stage_config(config, 'train')
  config = _config('tfd')
  config.stages.train.model.g_pre_bias = (0.0,)
  with pytest.raises(validation.ConfigError, match='g_pre_hidden, g_pre_activations, g_pre_inits, '
                     r'g_pre_bias must have the same length, got \[2, 2, 2, 1\]'):
    validation.validate(stages.stage_config(config, 'train'), 1)
  config = _config('tfd')
  config.stage = 'finetune'
  with pytest.raises(validation.ConfigError, match="Unknown stage 'finetune'"):
    stages.selected_stages(config)


def test_missing_tfd_file_stops_the_launch_with_one_message(tmp_path):
  empty = tmp_path / 'tfds'
  workdir = tmp_path / 'run'
  proc = subprocess.run(
      [sys.executable, 'launch.py', '--config=experiments/tfd.py', f'--workdir={workdir}',
       f'--config.data.data_dir={empty}'], cwd=REPO, capture_output=True, text=True,
      timeout=120)
  assert proc.returncode == 2
  errors = [l for l in proc.stderr.splitlines() if l.startswith('error: ')]
  want = os.path.join(str(empty), 'downloads', 'manual', 'TFD_48x48.mat')
  assert len(errors) == 1 and 'TFD file not found' in errors[0] and want in errors[0]
  assert 'Traceback' not in proc.stderr and not workdir.exists()
  for arg in ('stage=pretrain', 'stage=train'):  # The same check when one stage is selected.
    config = _config('tfd', arg)
    config.data.data_dir = str(empty)
    with pytest.raises(data.DataError, match='TFD file not found'):
      gan_jax.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


def test_stage_two_alone_needs_a_finished_stage_one(tmp_path, tfd_dir):
  config = _tiny_tfd(tfd_dir, 'stage=train')
  with pytest.raises(checkpoint.CheckpointError, match='has no checkpoint. Train that run'):
    gan_jax.train_and_evaluate(config, str(tmp_path / 'run'))


def test_a_single_stage_workdir_is_refused(tmp_path, tfd_dir):
  (tmp_path / 'run' / 'checkpoints').mkdir(parents=True)
  with pytest.raises(gan_jax.WorkdirError, match='holds a single-stage run'):
    gan_jax.train_and_evaluate(_tiny_tfd(tfd_dir), str(tmp_path / 'run'))


def test_transfer_layers_refuses_layers_that_do_not_fit():
  def g(**layers):
    return {'params': {k: {'kernel': np.zeros(v), 'bias': np.zeros(v[1:])}
                       for k, v in layers.items()}}

  target = g(pre0=(4, 6), h0=(6, 8), out=(8, 9))
  source = g(h0=(6, 8), out=(8, 9))
  source['params']['h0']['kernel'] += 1.0
  out = warm_start.transfer_layers(target, source)
  np.testing.assert_array_equal(out['params']['h0']['kernel'], 1.0)
  assert out['params']['pre0'] is target['params']['pre0']
  with pytest.raises(checkpoint.CheckpointError, match="layer 'h0'.*same widths"):
    warm_start.transfer_layers(g(h0=(5, 8), out=(8, 9)), source)
  with pytest.raises(checkpoint.CheckpointError, match="layer 'out' has no counterpart"):
    warm_start.transfer_layers(g(h0=(6, 8)), source)


def test_two_stages_transfer_the_pretrained_generator(tmp_path, tfd_dir, monkeypatch):
  workdir = tmp_path / 'run'
  config = _tiny_tfd(tfd_dir)
  gan_jax.train_and_evaluate(config, str(workdir))
  for stage in ('pretrain', 'train'):
    assert (workdir / stage / 'samples' / 'step_00000002.png').exists()
    with open(workdir / stage / 'config.json') as f:
      assert json.load(f)['train']['num_steps'] == 2

  # Stage 2's G at initialisation: h0, h1 and out are stage 1's final G, pre0 and pre1 fresh.
  pre, train = (stages.stage_config(config, s) for s in ('pretrain', 'train'))
  images = data.load_split(train.data, 'unlabeled')
  exp1 = experiment.build(pre, images.shape[1:], len(images))
  ckpt = checkpoint.Checkpointer(str(workdir / 'pretrain' / 'checkpoints'))
  final1, step = ckpt.restore_latest(exp1.initial_state(images))
  ckpt.close()
  assert step == 2
  exp2 = experiment.build(train, images.shape[1:], len(images))
  fresh = exp2.initial_state(images)
  init2 = warm_start.init_generator_from(exp2, fresh, train.model.g_init_from,
                                       str(workdir / 'train'))
  g1, g2 = jax.device_get(final1.g_params['params']), jax.device_get(init2.g_params['params'])
  assert sorted(g2) == ['h0', 'h1', 'out', 'pre0', 'pre1']
  for name in ('h0', 'h1', 'out'):
    jax.tree.map(np.testing.assert_array_equal, g2[name], g1[name])
  for name in ('pre0', 'pre1'):
    jax.tree.map(np.testing.assert_array_equal, g2[name],
                 jax.device_get(fresh.g_params['params'][name]))
  # With an EMA of G, the EMA starts at that G too.
  train.train.g_ema_decay = 0.9
  exp3 = experiment.build(train, images.shape[1:], len(images))
  init3 = warm_start.init_generator_from(exp3, exp3.initial_state(images), train.model.g_init_from,
                                       str(workdir / 'train'))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(init3.g_ema_params),
               jax.device_get(init2.g_params))
  # The pretrained layers did train in stage 1 (so the equality above is not trivial).
  start = jax.device_get(exp1.initial_state(images).g_params['params'])
  assert not np.array_equal(start["h1"]["kernel"], g1["h1"]["kernel"])

  # Rerunning skips both finished stages; an unfinished stage is run (resumed) in its own dir.
  assert gan_jax.train_and_evaluate(config, str(workdir)) == {}
  config.stages.train.train.num_steps = 3
  calls = []
  monkeypatch.setattr(stages.train, 'train',
                      lambda c, w, allow: calls.append((c.train.num_steps, w)) or {'ok': 1})
  assert gan_jax.train_and_evaluate(config, str(workdir)) == {'ok': 1}
  assert calls == [(3, str(workdir / 'train'))]


def test_cifar10_fully_connected_trains_under_mock_data(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  config = _tiny(_config('cifar10'))
  config.model.g_hidden, config.model.d_units = (16, 16), (8, 8)
  config.train.num_steps = 2
  with tfds.testing.mock_data(num_examples=16):
    result = gan_jax.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(result['d_loss']) and np.isfinite(result['g_loss'])
  assert (tmp_path / 'samples' / 'step_00000002.png').exists()


EXPERIMENTS = ('mnist', 'tfd', 'cifar10', 'cifar10_conv', 'toy1d')


def _fields(d, prefix=''):
  """Dotted field names; `stages` (stage names as keys) is one field."""
  out = set()
  for k, v in d.items():
    if isinstance(v, dict) and k != 'stages':
      out |= _fields(v, f'{prefix}{k}.')
    else:
      out.add(f'{prefix}{k}')
  return out


@pytest.mark.parametrize('name,arg', [(n, None) for n in EXPERIMENTS] +
                         [('mnist', 'quick'), ('tfd', 'stage=pretrain')])
def test_experiments_override_only_fields_of_the_base_config(name, arg):
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top

  base = config_lib.base_config().to_dict()
  config = _config(name, arg)
  assert _fields(config.to_dict()) == _fields(base)
  if name == 'tfd':  # A stage's overrides name fields of the base too.
    for stage in config.stages.values():
      assert _fields(stage.to_dict()) <= _fields(base)


def test_a_misspelt_field_in_an_experiment_file_is_an_error(tmp_path):
  with open(os.path.join(REPO, 'experiments', 'cifar10.py')) as f:
    source = f.read()
  assert 'config.train.num_steps = ' in source
  path = tmp_path / 'typo.py'
  path.write_text(source.replace('config.train.num_steps = ', 'config.train.nums_steps = '))
  spec = importlib.util.spec_from_file_location('typo', str(path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  with pytest.raises(AttributeError, match='nums_steps'):
    module.get_config()


def test_mnist_quick_is_the_full_run_shortened():
  full, quick = _config('mnist'), _config('mnist', 'quick')
  assert full.train.num_steps == 1_650_000 and quick.train.num_steps == 30_000
  quick.train.num_steps = full.train.num_steps
  assert quick.to_dict() == full.to_dict()
  validation.validate(full, 1)
  # The recipe of the run in results/ (its config.json), up to its length and bookkeeping.
  assert full.model.g_output_bias_from_marginals and full.model.prior == 'uniform'
  assert (full.eval.every, full.train.keep_checkpoints) == (10_000, 3)


@pytest.mark.parametrize('name,arg,valid', [
    ('mnist', 'fast', 'experiments/mnist.py:quick'),
    ('mnist', 'stage=train', 'experiments/mnist.py:quick'),
    ('cifar10', 'quick', r'experiments/cifar10.py \(no argument\)'),
    ('cifar10_conv', 'quick', r'experiments/cifar10_conv.py \(no argument\)'),
    ('toy1d', 'quick', 'experiments/toy1d.py:short'),
    ('tfd', 'quick', 'experiments/tfd.py:stage=pretrain'),
])
def test_unknown_config_arguments_name_the_valid_ones(name, arg, valid):
  with pytest.raises(ValueError, match=f"Unknown config argument '{arg}': use {valid}"):
    _config(name, arg)
