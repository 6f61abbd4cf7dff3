"""--mode=eval, --mode=figures and Table 1 on a run of several seeds (config.num_seeds > 1).

Each seed is scored and drawn as its single-seed run would be: the references are single-seed
workdirs holding each seed's slice of the stacked checkpoints (exact), and one run trained alone
(equal to float32 rounding).
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import small_eval, tiny_mnist_config
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import evaluation
from gan_jax import experiment
from gan_jax import figures
from gan_jax import state as state_lib
from gan_jax import toy as toy_lib
from gan_jax import toy_figures
from gan_jax import workdir as workdir_lib
from gan_jax.errors import ConfigError
from results import table1

SEEDS = (3, 4)  # A base seed other than 0, so that seed s is config.seed + its index.
EXAMPLES = 64


def _config(num_seeds=2, seed=SEEDS[0]):
  config = small_eval(tiny_mnist_config(num_steps=4, checkpoint_every=2, keep_checkpoints=10,
                                        g_ema_decay=0.9))
  config.eval.every = 2  # Each seed's training-time estimate, for Table 1's choice.
  config.seed, config.num_seeds = seed, num_seeds
  return config


def _without_seconds(record):
  return {k: v for k, v in record.items() if k != 'seconds'}


def _read(path):
  with open(path) as f:
    return json.load(f)


def _slice_run(config, workdir, out, shape, train_size=None):
  """Single-seed workdirs out/seed_<s> holding seed s's slice of every stacked checkpoint."""
  exp = experiment.build(config, shape, train_size)
  target = exp.initial_state(None)
  dirs = {}
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    for i, seed in enumerate(exp.seeds):
      dirs[seed] = os.path.join(out, f'seed_{seed}')
      with checkpoint.Checkpointer(os.path.join(dirs[seed], 'checkpoints'), 10) as single:
        for step in ckpt.steps():
          single.save(step, state_lib.seed_slice(ckpt.restore(target, step)[0], i))
  return dirs


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A 2-seed run (4 steps, checkpoints at 2 and 4, an EMA of G) and its per-seed slices."""
  root = tmp_path_factory.mktemp('seeds')
  workdir = str(root / 'run')
  config = _config()
  with tfds.testing.mock_data(num_examples=EXAMPLES):
    api.train_and_evaluate(config, workdir)
  singles = _slice_run(config, workdir, str(root / 'sliced'), (28, 28, 1), 20)
  return config, workdir, singles


@pytest.mark.parametrize('step,variant', [(None, {}), (2, {}), (4, {'g_average': 2}),
                                          (4, {'g_ema': True})])
def test_each_seed_is_scored_as_its_single_seed_run(run, step, variant, capsys):
  config, workdir, singles = run
  config = config.copy_and_resolve_references()
  config.eval.parzen.update(variant)
  with tfds.testing.mock_data(num_examples=EXAMPLES):
    summary = evaluation.evaluate(config, workdir, step)
    capsys.readouterr()
    alone = {s: evaluation.evaluate(workdir_lib.member_config(config, s), singles[s], step)
             for s in SEEDS}
  name = 'parzen.json' if step is None else evaluation.step_json_name(step)
  name = name.replace('.json', evaluation.generator_suffix(config.eval.parzen.g_average,
                                                           config.eval.parzen.g_ema) + '.json')
  for seed in SEEDS:
    record = _read(os.path.join(workdir, f'seed_{seed}', name))
    assert _without_seconds(record) == _without_seconds(alone[seed])
    assert _read(os.path.join(singles[seed], name)) == alone[seed]  # The same file name.
  summary_name = name.replace('parzen', 'parzen_seeds')
  assert _read(os.path.join(workdir, summary_name)) == summary
  assert summary['step'] == (step or 4) and summary['seeds'] == list(SEEDS)
  if 'g_average' in variant:
    assert summary['averaged_steps'] == [2, 4] and summary['g_average'] == 2
  assert summary.get('g_ema', False) == ('g_ema' in variant)
  # The two seeds' Gs differ, so do their scores; the samples' key is the protocol's own.
  assert alone[SEEDS[0]]['mean_ll'] != alone[SEEDS[1]]['mean_ll']
  assert summary['sample_seed'] == config.eval.parzen.seed


def test_parzen_seeds_json_is_the_per_seed_numbers_and_their_mean_and_sd(run, capsys):
  config, workdir, _ = run
  with tfds.testing.mock_data(num_examples=EXAMPLES):
    summary = evaluation.evaluate(config, workdir, step=4)
  printed = capsys.readouterr().out.strip().splitlines()
  path = os.path.join(workdir, 'parzen_seeds_step_00000004.json')
  assert len(printed) == 1 and printed[0].endswith(path)
  assert 'mean +- sd across seeds, ddof 1' in printed[0]
  records = [_read(os.path.join(workdir, f'seed_{s}', 'parzen_step_00000004.json'))
             for s in SEEDS]
  values = [r['mean_ll'] for r in records]
  assert summary['per_seed'] == [
      {'seed': s, 'mean_ll': r['mean_ll'], 'std_err': r['std_err'], 'sigma': r['sigma'],
       'step': 4, 'record': os.path.join(f'seed_{s}', 'parzen_step_00000004.json')}
      for s, r in zip(SEEDS, records)]
  assert summary['mean_ll'] == pytest.approx(np.mean(values), rel=1e-12)
  assert summary['sd_ll'] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
  assert summary['sd_ll'] == pytest.approx(abs(values[0] - values[1]) / np.sqrt(2), rel=1e-9)
  assert summary['sd_ddof'] == 1 and summary['n_seeds'] == 2 and summary['stopped'] == {}
  assert 'unstopped' not in summary
  assert (summary['n_samples'], summary['n_valid'], summary['n_test']) == (50, 20, EXAMPLES)
  assert summary['dataset'] == 'mnist' and summary['test_split'] == config.data.test_split


def test_a_stopped_seed_is_scored_at_its_frozen_params_and_flagged(run, tmp_path, capsys):
  config, workdir, _ = run
  copy = str(tmp_path / 'run')
  shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns('checkpoints', 'parzen*'))
  exp = experiment.build(config, (28, 28, 1), 20)
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    state, _ = ckpt.restore(exp.initial_state(None), 4)
  with checkpoint.Checkpointer(os.path.join(copy, 'checkpoints')) as ckpt:
    ckpt.save(4, state, {'pending': {}, 'stopped': {str(SEEDS[1]): [3, 'd_loss']}})
  with tfds.testing.mock_data(num_examples=EXAMPLES):
    summary = evaluation.evaluate(config, copy)
    plain = evaluation.evaluate(config, workdir)
  flag = {'nonfinite_at_step': 3, 'quantity': 'd_loss', 'params_from_step': 2}
  assert summary['stopped'] == {str(SEEDS[1]): flag}
  assert summary['per_seed'][1]['stopped'] == flag and 'stopped' not in summary['per_seed'][0]
  assert summary['unstopped'] == {'seeds': [SEEDS[0]], 'mean_ll': summary['per_seed'][0]['mean_ll'],
                                  'sd_ll': None, 'sd_ddof': 1, 'n_seeds': 1}
  # Scored all the same, at the parameters the checkpoint holds: the numbers do not change.
  assert [e['mean_ll'] for e in summary['per_seed']] == [e['mean_ll'] for e in plain['per_seed']]
  assert summary['mean_ll'] == plain['mean_ll'] and summary['sd_ll'] == plain['sd_ll']
  record = _read(os.path.join(copy, f'seed_{SEEDS[1]}', 'parzen.json'))
  assert record['stopped'] == flag
  assert f'seed {SEEDS[1]} stopped early (non-finite d_loss at step 3)' in capsys.readouterr().out


def test_a_missing_step_or_another_num_seeds_is_a_clear_error(run):
  config, workdir, _ = run
  before = {d: sorted(os.listdir(os.path.join(workdir, d))) for d in ('.', 'seed_3', 'seed_4')}
  with tfds.testing.mock_data(num_examples=EXAMPLES):
    with pytest.raises(checkpoint.CheckpointError, match=r'No checkpoint at step 3 in .*\[2, 4\]'):
      evaluation.evaluate(config, workdir, step=3)
    with pytest.raises(checkpoint.CheckpointError, match='step 3'):
      figures.make_figures(config, workdir, step=3)
    for num_seeds in (1, 3):
      with pytest.raises(ConfigError, match='trained 2 seed.*--config.num_seeds=2'):
        evaluation.evaluate(_config(num_seeds), workdir)
  assert before == {d: sorted(os.listdir(os.path.join(workdir, d))) for d in before}


def test_each_seed_is_scored_as_a_run_trained_alone(run, tmp_path):
  """A run of seed 4 alone trains (to float32 rounding) what seed 4 of the pair trains."""
  config, workdir, _ = run
  alone_dir = str(tmp_path / 'alone')
  with tfds.testing.mock_data(num_examples=EXAMPLES):
    api.train_and_evaluate(_config(num_seeds=1, seed=SEEDS[1]), alone_dir)
    summary = evaluation.evaluate(config, workdir, step=4)
    alone = evaluation.evaluate(_config(num_seeds=1, seed=SEEDS[1]), alone_dir, step=4)
  record = _read(os.path.join(workdir, f'seed_{SEEDS[1]}', 'parzen_step_00000004.json'))
  assert summary['per_seed'][1]['mean_ll'] == record['mean_ll']
  assert record['sigma'] == alone['sigma'] and record['step'] == alone['step'] == 4
  np.testing.assert_allclose(record['mean_ll'], alone['mean_ll'], rtol=1e-5)
  np.testing.assert_allclose(record['valid_ll'], alone['valid_ll'], rtol=1e-5)
  assert set(record) == set(alone)


def test_figures_are_drawn_per_seed_as_their_single_seed_runs(run):
  config, workdir, singles = run
  names = ['samples.png', 'nearest.png', 'interpolation.png']
  with tfds.testing.mock_data(num_examples=EXAMPLES):
    paths = figures.make_figures(config, workdir)
    alone = {s: figures.make_figures(workdir_lib.member_config(config, s), singles[s])
             for s in SEEDS}
    ema_config = config.copy_and_resolve_references()
    ema_config.eval.parzen.g_ema = True
    ema = figures.make_figures(ema_config, workdir)
  assert paths == [os.path.join(workdir, f'seed_{s}', 'figures', n) for s in SEEDS for n in names]
  assert ema == [os.path.join(workdir, f'seed_{s}', 'figures_g_ema', n)
                 for s in SEEDS for n in names]
  assert not os.path.exists(os.path.join(workdir, 'figures'))
  for path, single in zip(paths, alone[SEEDS[0]] + alone[SEEDS[1]]):
    assert open(path, 'rb').read() == open(single, 'rb').read(), path
  assert open(paths[0], 'rb').read() != open(paths[3], 'rb').read()  # Two seeds, two Gs.


def test_toy1d_figure1_per_seed(tmp_path, monkeypatch):
  from experiments import toy1d  # pylint: disable=g-import-not-at-top

  monkeypatch.setattr(toy_figures, 'INNER_LOOP', toy_lib.InnerLoop(10, 256, 1e-2))
  config = toy1d.get_config()
  config.data.toy_size = 400
  config.train.update(batch_size=100, num_steps=4, checkpoint_every=2, log_every=2,
                      steps_per_call=2, sample_every=4, keep_checkpoints=3)
  config.num_seeds = 2
  workdir = str(tmp_path / 'toy')
  api.train_and_evaluate(config, workdir)
  paths = figures.make_figures(config, workdir)
  names = ('figure1.png', 'figure1.json', 'figure1.gif')
  assert paths == [os.path.join(workdir, f'seed_{s}', 'figures', n) for s in (0, 1) for n in names]
  singles = _slice_run(config, workdir, str(tmp_path / 'sliced'), (1, 1, 1), 400)
  for seed in (0, 1):
    single = figures.make_figures(workdir_lib.member_config(config, seed), singles[seed])
    for path, alone in zip(paths[3 * seed:3 * seed + 3], single):
      assert open(path, 'rb').read() == open(alone, 'rb').read(), path
  assert open(paths[0], 'rb').read() != open(paths[3], 'rb').read()


def test_table1_reports_a_run_of_several_seeds_as_mean_and_sd(run, tmp_path):
  _, workdir, _ = run
  runs = tmp_path / 'runs'
  copy = str(runs / 'pair')
  shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns('parzen*'))
  loaded = table1.load_config(copy)
  assert table1.seeds(loaded) == list(SEEDS)
  assert table1.seeds(workdir_lib.member_config(loaded, 3)) is None
  with tfds.testing.mock_data(num_examples=EXAMPLES):
    unscored = table1.row('pair', copy, loaded, 'metrics', run_protocol=False)
    row = table1.row('pair', copy, loaded, 'metrics', run_protocol=True)
  assert 'not scored (2 of 2 seeds)' in unscored
  chosen = [table1.choose(copy, 'metrics', f'seed_{s}') for s in SEEDS]
  for seed, c in zip(SEEDS, chosen):
    lines = table1.metrics(os.path.join(copy, f'seed_{seed}'))
    valid = {l['step']: l['parzen_valid'] for l in lines if 'parzen_valid' in l}
    assert c['last'] == 4 and c['best'] == max(valid, key=valid.get)
  best = [_read(os.path.join(copy, f'seed_{s}', evaluation.step_json_name(c['best'])))
          for s, c in zip(SEEDS, chosen)]
  last = _read(os.path.join(copy, 'parzen_seeds_step_00000004.json'))
  cells = [c.strip() for c in row.strip('|').split('|')]
  assert cells[4] == '3-4 (2 seeds)' and cells[5] == '4'
  assert cells[7] == ', '.join(f"{c['best']:,} ({c['best_valid']:.1f})" for c in chosen)
  values = [r['mean_ll'] for r in best]
  assert cells[8] == f'{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f} (sd of 2 seeds)'
  assert cells[9] == f"{last['mean_ll']:.1f} ± {last['sd_ll']:.1f} (sd of 2 seeds)"
  records = [{'mean_ll': 1.0}, {'mean_ll': 3.0, 'stopped': {}}]
  assert table1.fmt_seeds(records, [7, 8]) == '2.0 ± 1.4 (sd of 2 seeds; stopped early: seed 8)'
  assert table1.fmt_seeds([None, records[0]], [7, 8]) == 'not scored (1 of 2 seeds)'
