"""Tests of the 2-D mixtures' figure: gan_jax.mixture_figures, --mode=figures on a mog2d run."""

import json
import os

import jax
import numpy as np
from PIL import Image
import pytest

from experiments import mog2d
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import data
from gan_jax import experiment
from gan_jax import mixture_figures
from gan_jax import modes
from gan_jax import state as state_lib
from gan_jax.errors import CheckpointError

NUM_SAMPLES = 300  # Per panel: enough for the numbers, cheap to draw.


def tiny_ring8(num_seeds: int = 2):
  config = mog2d.get_config('ring8')
  config.num_seeds = num_seeds
  config.data.toy_size = 2_000
  config.model.z_dim, config.model.g_hidden, config.model.d_units = 8, (16, 16), (16, 16)
  config.train.batch_size, config.train.num_steps, config.train.steps_per_call = 32, 30, 10
  config.train.log_every = config.train.checkpoint_every = config.train.sample_every = 10
  config.train.keep_checkpoints = 10
  config.eval.modes.num_samples = NUM_SAMPLES
  return config


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A ring8 run of 2 seeds, checkpoints at steps 10, 20 and 30."""
  workdir = str(tmp_path_factory.mktemp('mog') / 'run')
  config = tiny_ring8()
  api.train_and_evaluate(config, workdir)
  return config, workdir


def _png_shape(path):
  with Image.open(path) as im:
    return im.size[1], im.size[0]


def _read(path):
  with open(path) as f:
    return json.load(f)


def test_make_figures_draws_every_checkpoint_of_every_seed(trained):
  config, workdir = trained
  paths = api.make_figures(config, workdir)
  expected = [os.path.join(workdir, f'seed_{s}', 'figures', name)
              for s in (0, 1) for name in ('modes.png', 'modes.json')]
  assert paths == expected
  for s in (0, 1):
    figure_dir = os.path.join(workdir, f'seed_{s}', 'figures')
    record = _read(os.path.join(figure_dir, 'modes.json'))
    assert [p['step'] for p in record['panels']] == [10, 20, 30]
    assert record['mixture'] == 'ring8' and record['num_modes'] == 8
    assert record['num_samples'] == NUM_SAMPLES and record['min_count'] == 1
    # One panel per checkpoint: 3 panels in one row.
    assert _png_shape(os.path.join(figure_dir, 'modes.png')) == mixture_figures.figure_shape(3)
    assert mixture_figures.figure_shape(3) == (mixture_figures.PANEL_PX,
                                               3 * mixture_figures.PANEL_PX)


def test_panel_numbers_are_the_checkpoints_own(trained):
  """Each panel's numbers are gan_jax.modes' on G's samples at that checkpoint, drawn as
  --mode=eval draws them (config.eval.modes.seed), seed by seed."""
  config, workdir = trained
  api.make_figures(config, workdir, step=20)
  exp = experiment.build(config, (1, 1, 2))
  centres, std = data.mixture_centres('ring8'), data.mixture_std('ring8')
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    for step in (10, 20):
      g, _ = ckpt.restore_params('g_params', step, exp.g_shapes())
      for i, seed in enumerate(exp.seeds):
        x = exp.generate(state_lib.seed_slice(g, i), NUM_SAMPLES,
                         jax.random.key(config.eval.modes.seed), NUM_SAMPLES)
        expected = modes.mode_coverage(x.reshape(-1, 2), centres, std)
        record = _read(os.path.join(workdir, f'seed_{seed}', 'figures', 'modes.json'))
        # --step=20 draws the checkpoints up to 20 only.
        assert [p['step'] for p in record['panels']] == [10, 20]
        panel = record['panels'][[10, 20].index(step)]
        assert panel['modes_covered'] == expected['modes_covered']
        assert panel['high_quality'] == expected['high_quality']
        kl = expected['kl_to_uniform']
        assert panel['kl_to_uniform'] == (None if np.isnan(kl) else pytest.approx(kl))


def test_a_step_that_is_not_a_checkpoint_is_a_one_line_error(trained):
  config, workdir = trained
  with pytest.raises(CheckpointError, match=r'No checkpoint at step 15 in .*; it has '
                     r'\[10, 20, 30\]') as e:
    api.make_figures(config, workdir, step=15)
  assert '\n' not in str(e.value)


def test_the_ema_of_a_run_that_kept_none_is_a_one_line_error(trained):
  config, workdir = trained
  config = config.copy_and_resolve_references()
  config.eval.parzen.g_ema = True
  with pytest.raises(ValueError, match='EMA of G') as e:
    api.make_figures(config, workdir)
  assert '\n' not in str(e.value)
  assert not os.path.exists(os.path.join(workdir, 'seed_0', 'figures_g_ema', 'modes.png'))


def test_a_run_without_checkpoints_is_a_one_line_error(tmp_path):
  config = tiny_ring8(num_seeds=1)
  os.makedirs(tmp_path / 'run' / 'checkpoints')
  with pytest.raises(CheckpointError, match='No checkpoints in .*: train first') as e:
    api.make_figures(config, str(tmp_path / 'run'))
  assert '\n' not in str(e.value)


@pytest.mark.parametrize('steps,last,expected', [
    ([10, 20, 30], None, [10, 20, 30]),
    ([30, 10, 20], 20, [10, 20]),
    (list(range(1_000, 26_000, 1_000)), None,  # 25 checkpoints: 10 evenly spread, ends kept.
     [1_000, 4_000, 6_000, 9_000, 12_000, 14_000, 17_000, 20_000, 22_000, 25_000]),
])
def test_panel_steps_are_at_most_max_panels_evenly_spread(steps, last, expected):
  assert mixture_figures.panel_steps(steps, last) == expected
  assert len(expected) <= mixture_figures.MAX_PANELS


@pytest.mark.parametrize('num_panels,rows,columns', [(1, 1, 1), (5, 1, 5), (7, 2, 5), (10, 2, 5)])
def test_figure_has_one_panel_per_checkpoint_in_rows(num_panels, rows, columns):
  centres = data.mixture_centres('grid25')
  rng = np.random.default_rng(0)
  panels = []
  for k in range(num_panels):
    x = (centres[rng.integers(25, size=50)] + 0.05 * rng.standard_normal((50, 2))).astype(
        np.float32)
    panels.append(mixture_figures.Panel(1_000 * (k + 1), x, modes.mode_coverage(x, centres, 0.05)))
  image = mixture_figures.draw_modes_figure(panels, centres, 0.05)
  px = mixture_figures.PANEL_PX
  assert image.shape == (rows * px, columns * px, 3) and image.dtype == np.uint8
  assert image.shape[:2] == mixture_figures.figure_shape(num_panels)
  # Every panel cell holds drawing (not blank); a cell past the last panel is blank.
  for k in range(rows * columns):
    row, column = divmod(k, columns)
    cell = image[row * px:(row + 1) * px, column * px:(column + 1) * px]
    assert (cell.min() < 128) == (k < num_panels), k
