"""A hyper-parameter sweep in one compiled program (config.sweep): each member trains as its run.

A sweep of the learning rate (simultaneous rule) and of the EMA decay (Algorithm 1, k = 2) with
two seeds per value, against the runs of single members alone (--config.seed=s
--config.<field>=v); what the run writes; --mode=eval and --mode=figures per member and per
value; bad input. The tiny MNIST config of conftest under tfds.testing.mock_data.
"""

import json
import os
import shutil

import chex
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import small_eval, tiny_mnist_config
from gan_jax import api
from gan_jax import errors
from gan_jax import evaluation
from gan_jax import experiment
from gan_jax import figures
from gan_jax import state as state_lib
from gan_jax import train_step
from gan_jax import validation
from gan_jax import workdir as workdir_lib
from results import table1
from test_seeds import RTOL, ATOL, _assert_close_metrics, _metrics, _state, _tree

SEEDS = (3, 4)
NUM_EXAMPLES = 64
LRS = (0.1, 0.02)


def _config(field='optim.learning_rate', grid=LRS, num_seeds=2, **train):
  config = small_eval(tiny_mnist_config(**{**dict(num_steps=4, checkpoint_every=2,
                                                 sample_every=2), **train}))
  config.seed, config.num_seeds = SEEDS[0], num_seeds
  config.sweep.field, config.sweep.grid = field, grid
  return config


def _run(config, workdir, **kwargs):
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    return api.train_and_evaluate(config, workdir, **kwargs)


def _member_dir(workdir, field, value, seed):
  return os.path.join(workdir, f'{field}={float(value)!r}', f'seed_{seed}')


@pytest.fixture(scope='module')
def lr_run(tmp_path_factory):
  """The lr sweep (2 values x seeds 3, 4) and, alone, members (0.02, seed 3) and (0.1, seed 4)."""
  root = tmp_path_factory.mktemp('sweep')
  config = _config()
  sweep = str(root / 'sweep')
  result = _run(config, sweep)
  alone = {}
  for value, seed in ((0.02, 3), (0.1, 4)):
    alone[value, seed] = str(root / f'alone_{value}_{seed}')
    _run(workdir_lib.member_config(config, seed, value), alone[value, seed])
  return config, sweep, alone, result


def _assert_members_are_runs_alone(config, sweep, alone):
  stacked, step = _state(config, sweep)
  members = workdir_lib.members(config)
  for (value, seed), single_dir in alone.items():
    i = [(m.value, m.seed) for m in members].index((value, seed))
    directory = _member_dir(sweep, config.sweep.field, value, seed)
    _assert_close_metrics(_metrics(directory), _metrics(single_dir))
    single, single_step = _state(workdir_lib.member_config(config, seed, value), single_dir)
    assert step == single_step == config.train.num_steps
    chex.assert_trees_all_close(state_lib.seed_slice(stacked, i), single, rtol=RTOL, atol=ATOL)


def test_lr_members_train_as_runs_alone(lr_run):
  config, sweep, alone, _ = lr_run
  _assert_members_are_runs_alone(config, sweep, alone)


def test_ema_decay_members_train_as_runs_alone(tmp_path):
  config = _config('train.g_ema_decay', (0.5, 0.9), update_rule='alternating', k_steps=2)
  sweep = str(tmp_path / 'sweep')
  _run(config, sweep)
  alone = {(0.9, 3): str(tmp_path / 'alone')}
  _run(workdir_lib.member_config(config, 3, 0.9), alone[0.9, 3])
  _assert_members_are_runs_alone(config, sweep, alone)
  # Seeds are paired across values: the EMA's decay does not touch training, so seed 3 trains
  # the very same G and D at both decays, and only the EMAs part. Members: (0.5, 3), (0.5, 4),
  # (0.9, 3), (0.9, 4).
  stacked, _ = _state(config, sweep)
  at = lambda tree, i: state_lib.seed_slice(tree, i)
  chex.assert_trees_all_equal(at(stacked.g_params, 0), at(stacked.g_params, 2))
  chex.assert_trees_all_equal(at(stacked.d_params, 0), at(stacked.d_params, 2))
  kernels = [at(stacked.g_ema_params, i)['params']['out']['kernel'] for i in (0, 2)]
  assert np.abs(np.asarray(kernels[0]) - np.asarray(kernels[1])).max() > 0


def test_sweep_outputs(lr_run):
  config, sweep, alone, result = lr_run
  names = [f'optim.learning_rate={v!r}' for v in LRS]
  assert sorted(os.listdir(sweep)) == sorted(['checkpoints', 'config.json', *names])
  stacked, _ = _state(config, sweep)
  assert np.asarray(stacked.step).tolist() == [4] * 4
  for value in LRS:
    for seed in SEEDS:
      directory = _member_dir(sweep, 'optim.learning_rate', value, seed)
      assert sorted(os.listdir(directory)) == ['config.json', 'metrics.jsonl', 'samples',
                                               'tensorboard']
      with open(os.path.join(directory, 'config.json')) as f:
        own = json.load(f)
      assert (own['seed'], own['num_seeds'], own['optim']['learning_rate']) == (seed, 1, value)
      assert own['sweep'] == {'field': '', 'grid': []}
      lines = _metrics(directory)
      np.testing.assert_allclose(lines[0]['lr'], value / 1.000004 ** 2, rtol=1e-6)
      key = f'optim.learning_rate={value!r}/seed_{seed}'
      assert result['seeds'][key]['lr'] == lines[-1]['lr']
  with open(os.path.join(_member_dir(sweep, 'optim.learning_rate', 0.02, 3),
                         'config.json')) as f, open(os.path.join(alone[0.02, 3],
                                                                 'config.json')) as g:
    assert json.load(f) == json.load(g)  # Laid out as the run of that member alone.
  assert result['stopped'] == {}


def test_eval_and_figures_per_member_and_value(lr_run, capsys):
  config, sweep, alone, _ = lr_run
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    summary = evaluation.evaluate(config, sweep)
    own = evaluation.evaluate(workdir_lib.member_config(config, 3, 0.02), alone[0.02, 3])
    paths = figures.make_figures(config, sweep)
  out = capsys.readouterr().out
  assert summary['field'] == 'optim.learning_rate' and summary['seeds'] == list(SEEDS)
  assert [e['value'] for e in summary['per_value']] == list(LRS)
  with open(os.path.join(sweep, 'parzen_sweep.json')) as f:
    assert json.load(f) == summary
  for entry in summary['per_value']:
    with open(os.path.join(sweep, entry['record'])) as f:
      seeds = json.load(f)  # <workdir>/<field>=<value>/parzen_seeds.json
    assert entry['mean_ll'] == seeds['mean_ll'] and entry['sd_ll'] == seeds['sd_ll']
    assert seeds['seeds'] == list(SEEDS) and entry['n_seeds'] == 2
    assert f"optim.learning_rate={entry['value']!r}: Parzen" in out
  # A member's record is that of its run alone (trained apart: equal to float32 rounding).
  with open(os.path.join(_member_dir(sweep, 'optim.learning_rate', 0.02, 3), 'parzen.json')) as f:
    record = json.load(f)
  np.testing.assert_allclose(record['mean_ll'], own['mean_ll'], rtol=1e-4)
  assert record['sigma'] == own['sigma']
  assert len(paths) == 12 and all(os.path.exists(p) for p in paths)
  assert os.path.dirname(paths[0]) == os.path.join(
      _member_dir(sweep, 'optim.learning_rate', 0.1, 3), 'figures')


def test_one_seed_per_value(tmp_path, capsys):
  config = _config(num_seeds=1, num_steps=2)
  workdir = str(tmp_path / 'run')
  _run(config, workdir)
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    summary = evaluation.evaluate(config, workdir)
  assert [(e['n_seeds'], e['sd_ll']) for e in summary['per_value']] == [(1, None), (1, None)]
  assert 'optim.learning_rate=0.1: Parzen' in capsys.readouterr().out


def _bad(field, grid, **overrides):
  config = _config(field, grid)
  for dotted, value in overrides.items():
    section, name = dotted.split('__')
    config[section][name] = value
  return config


BAD = {
    'unknown_field': (_bad('model.z_dim', (10, 20)), r"^Unknown sweep.field 'model.z_dim'"),
    'grid_without_field': (_bad('', (0.1,)),
                           r'^config.sweep.grid=\(0.1,\) but config.sweep.field is empty'),
    'field_without_grid': (_bad('optim.learning_rate', ()),
                           r'^config.sweep.field=optim.learning_rate needs values'),
    'not_numbers': (_bad('optim.learning_rate', ('0.1', '0.2')),
                    r'^config.sweep.grid must be numbers'),
    'repeated': (_bad('optim.learning_rate', (0.1, 0.1)), r'repeats a value'),
    'bad_value': (_bad('optim.final_momentum', (0.5, 1.5)),
                  r'^config.sweep.grid holds 1.5 for optim.final_momentum: config.optim.'
                  r'final_momentum must be in \[0, 1\), got 1.5\.$'),
    'warm_start': (_bad('optim.learning_rate', LRS, model__g_init_from='/some/run'),
                   r'^config.sweep.field=optim.learning_rate with config.model.g_init_from'),
}


@pytest.mark.parametrize('name', sorted(BAD))
def test_bad_sweep_writes_nothing(tmp_path, name):
  config, message = BAD[name]
  workdir = str(tmp_path / 'run')
  with pytest.raises(errors.ConfigError, match=message) as e:
    _run(config, workdir)
  assert '\n' not in str(e.value)
  assert not os.path.exists(workdir)


def test_staged_sweep_refused(tmp_path):
  from experiments import tfd  # pylint: disable=g-import-not-at-top
  config = tfd.get_config()
  config.sweep.field, config.sweep.grid = 'optim.learning_rate', LRS
  workdir = str(tmp_path / 'run')
  with pytest.raises(errors.ConfigError, match=r'^config.sweep.field=optim.learning_rate is not '
                     r'supported for a staged experiment'):
    api.train_and_evaluate(config, workdir)
  assert not os.path.exists(workdir)


@pytest.mark.parametrize('change', ['grid', 'field', 'off'])
def test_resume_or_eval_with_another_sweep_refused(lr_run, tmp_path, change):
  _, sweep, _, _ = lr_run
  workdir = str(tmp_path / 'run')
  shutil.copytree(sweep, workdir)
  before = _tree(workdir)
  other = {'grid': _config(grid=(0.1, 0.05)), 'field': _config('optim.min_lr', (1e-6, 1e-5)),
           'off': _config('', ())}[change]
  for allow in (False, True):  # Not even --allow_config_change: the members are others.
    with pytest.raises(errors.WorkdirError, match='cannot resume .* even with '
                       '--allow_config_change') as e:
      _run(other, workdir, allow_config_change=allow)
    assert '\n' not in str(e.value)
  with pytest.raises(errors.ConfigError, match=r'^The run in .* swept optim.learning_rate over '
                     r'\(0.1, 0.02\), the config says'):
    evaluation.evaluate(other, workdir)
  assert _tree(workdir) == before


def test_several_processes_refused():
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(validation.jax, 'process_count', lambda: 2)
    with pytest.raises(errors.ConfigError, match=r'^config.sweep.field=optim.learning_rate '
                       'across 2 processes is not supported yet'):
      validation.validate(_config(num_seeds=1), 4)


def test_table1_row_per_value(lr_run, tmp_path):
  config, sweep, _, _ = lr_run
  copy = str(tmp_path / 'lr')
  shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns('parzen*'))
  loaded = table1.load_config(copy)
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    rows = table1.row('lr', copy, loaded, 'metrics', run_protocol=True).split('\n')
  assert len(rows) == 2
  for value, line in zip(LRS, rows):
    cells = [c.strip() for c in line.strip('|').split('|')]
    assert cells[0] == f'lr optim.learning_rate={value!r}' and cells[4] == '3-4 (2 seeds)'
    scores = [json.load(open(os.path.join(_member_dir(copy, 'optim.learning_rate', value, s),
                                          'parzen_step_00000004.json')))['mean_ll']
              for s in SEEDS]
    assert cells[9] == f'{np.mean(scores):.1f} ± {np.std(scores, ddof=1):.1f} (sd of 2 seeds)'


def test_split_hypers_keeps_shared_numbers_constant():
  config = _config(num_seeds=1)
  each = [experiment.step_hypers(workdir_lib.member_config(config, 3, v)) for v in LRS]
  shared, own = train_step.split_hypers(each)
  assert shared == each[0]
  np.testing.assert_array_equal(own.optim.learning_rate, np.float32(LRS))
  leaves = jax.tree.leaves(own)  # None leaves are not leaves: only the swept number varies.
  assert len(leaves) == 1
  second = jax.tree.map(lambda x: x[1], own)  # What vmap hands the second member.
  merged = train_step._merge(shared, second)  # pylint: disable=protected-access
  assert isinstance(merged.optim.adam_b2, float)  # Still the Python float: a constant.
  assert merged.optim.learning_rate == np.float32(LRS[1])
  single, none = train_step.split_hypers(each[:1])
  assert single == each[0] and jax.tree.leaves(none) == []
