"""Tests of the 2-D Gaussian mixtures (gan_jax.data), their metrics (gan_jax.modes) and
experiments/mog2d.py."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import tiny_mnist_config
from experiments import mog2d
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import data
from gan_jax import experiment
from gan_jax import modes
from gan_jax import validation
from gan_jax.errors import ConfigError
from gan_jax.errors import DataError

RING8_STD, GRID25_STD = 0.02, 0.05


def ring8_config(**data_fields):
  config = mog2d.get_config('ring8')
  config.data.toy_size = 5_000
  config.data.update(data_fields)
  return config


# ------------------------------------------------------------------------------------ datasets


@pytest.mark.parametrize('name', ['ring8', 'grid25'])
def test_mixture_is_drawn_deterministically_and_splits_differ(name):
  config = mog2d.get_config(name)
  config.data.toy_size = 5_000
  validation.validate(config, 4)
  x = data.load_split(config.data, 'train')
  assert x.shape == (5_000, 1, 1, 2) and x.dtype == np.float32
  np.testing.assert_array_equal(x, data.load_split(config.data, 'train'))
  assert not np.array_equal(x, data.load_split(config.data, 'valid'))
  config.data.toy_seed = 1
  assert not np.array_equal(x, data.load_split(config.data, 'train'))


def test_ring8_centres_are_eight_points_on_the_circle():
  centres = data.mixture_centres('ring8', radius=2.0)
  assert centres.shape == (8, 2)
  np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0, rtol=1e-6)
  np.testing.assert_allclose(centres[0], [2.0, 0.0], atol=1e-6)
  angles = np.sort(np.arctan2(centres[:, 1], centres[:, 0]) % (2 * np.pi))
  np.testing.assert_allclose(np.diff(angles), np.pi / 4, rtol=1e-5)
  np.testing.assert_allclose(data.mixture_centres('ring8', radius=3.0), 1.5 * centres, rtol=1e-6)


def test_grid25_centres_are_a_5x5_grid_centred_on_the_origin():
  centres = data.mixture_centres('grid25', spacing=2.0)
  assert centres.shape == (25, 2)
  assert sorted({tuple(c) for c in centres.tolist()}) == [
      (float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)]


@pytest.mark.parametrize('name,std', [('ring8', RING8_STD), ('grid25', GRID25_STD)])
def test_mixture_points_have_the_default_std_and_equal_weights(name, std):
  config = mog2d.get_config(name)
  assert config.data.mixture_std == 0.0 and data.mixture_std(name) == std
  x = data.load_split(config.data, 'train').reshape(-1, 2)  # 100,000 points.
  centres = data.mixture_centres(name)
  nearest = np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), axis=1)
  residual = x - centres[nearest]
  np.testing.assert_allclose(residual.std(axis=0), std, rtol=0.02)
  np.testing.assert_allclose(residual.mean(axis=0), 0.0, atol=3 * std / np.sqrt(len(x)) * 2)
  share = np.bincount(nearest, minlength=len(centres)) / len(x)
  np.testing.assert_allclose(share, 1 / len(centres), atol=0.01)


def test_mixture_std_overrides_the_default():
  x = data.load_split(ring8_config(mixture_std=0.1).data, 'train').reshape(-1, 2)
  centres = data.mixture_centres('ring8')
  nearest = np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), axis=1)
  np.testing.assert_allclose((x - centres[nearest]).std(axis=0), 0.1, rtol=0.05)


@pytest.mark.parametrize('fields,message', [
    (dict(mixture_radius=0.0), r'mixture_radius must be positive, got 0.0'),
    (dict(mixture_radius=-2.0), r'mixture_radius must be positive'),
    (dict(mixture_std=-0.02), r'mixture_std must be positive, got -0.02: use 0 for the '
     r'default 0.02 of ring8'),
    (dict(toy_size=0), r'toy_size \(points per split\) must be positive'),
])
def test_bad_mixture_parameters_are_one_line_errors(fields, message):
  with pytest.raises(DataError, match=message) as e:
    data.load_split(ring8_config(**fields).data, 'train')
  assert '\n' not in str(e.value)


def test_bad_grid_spacing_is_an_error():
  with pytest.raises(DataError, match=r'mixture_spacing must be positive, got -1.0'):
    data.mixture_centres('grid25', spacing=-1.0)


def test_unknown_mixture_names_the_valid_ones():
  with pytest.raises(DataError, match=r"Unknown mixture 'ring9': choose one of \['grid25', "
                     r"'ring8'\]"):
    modes.mixture_centres('ring9')
  config = mog2d.get_config()
  config.data.name = 'ring9'
  with pytest.raises(ValueError, match=r"ring9.*grid25.*ring8"):
    validation.validate(config, 4)


# ------------------------------------------------------------------------------------- metrics


def points_at(centres, per_mode, std, rng, spread=1.0):
  """`per_mode[k]` points around centre k, each within `spread` std of it."""
  out = []
  for c, n in zip(centres, per_mode):
    direction = rng.standard_normal((n, 2))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    out.append(c + direction * std * spread * rng.uniform(0, 1, (n, 1)))
  return np.concatenate(out).astype(np.float32)


@pytest.mark.parametrize('covered', [8, 4, 0])
def test_ring8_coverage_counts_exactly_the_modes_with_enough_samples(covered):
  rng = np.random.default_rng(covered)
  centres = modes.mixture_centres('ring8')
  # Covered modes get 300 samples within 3 std; the others 19, one short of a min_count of 20.
  per_mode = [300] * covered + [19] * (8 - covered)
  x = points_at(centres, per_mode, RING8_STD, rng, spread=2.9)
  strict = modes.mode_coverage(x.reshape(-1, 1, 1, 2), centres, RING8_STD, min_count=20)
  assert strict['modes_covered'] == covered
  assert strict['high_quality'] == 1.0 and strict['num_modes'] == 8
  # The papers' rule (MIN_COUNT = 1): a single sample covers a mode.
  assert modes.MIN_COUNT == 1
  assert modes.mode_coverage(x, centres, RING8_STD)['modes_covered'] == 8
  # No sample at the uncovered modes; 50 at the ring's centre, near none.
  x = points_at(centres, [300] * covered + [0] * (8 - covered), RING8_STD, rng, spread=2.9)
  x = np.concatenate([x, np.zeros((50, 2), np.float32)])
  result = modes.mode_coverage(x, centres, RING8_STD)
  assert result['modes_covered'] == covered
  assert result['high_quality'] == pytest.approx(300 * covered / (300 * covered + 50))


def test_grid25_all_modes_covered_and_kl_zero_when_even():
  rng = np.random.default_rng(0)
  centres = modes.mixture_centres('grid25')
  x = points_at(centres, [100] * 25, GRID25_STD, rng, spread=2.9)
  result = modes.mode_coverage(x, centres, GRID25_STD)
  assert result['modes_covered'] == 25 and result['num_samples'] == 2_500
  assert result['high_quality'] == 1.0
  assert abs(result['kl_to_uniform']) < 1e-6


def test_high_quality_fraction_is_exact_on_constructed_samples():
  rng = np.random.default_rng(1)
  centres = modes.mixture_centres('ring8')
  near = points_at(centres, [100] * 8, RING8_STD, rng, spread=2.99)   # 800 within 3 std ...
  # ... and 200 between modes, or at 3.5 std from one: low quality.
  far_angles = 2 * np.pi * (np.arange(100) + 0.5) / 8
  between = 2.0 * np.stack([np.cos(far_angles), np.sin(far_angles)], 1)
  off = centres[rng.integers(8, size=100)] + [0.0, 3.5 * RING8_STD]
  x = np.concatenate([near, between, off]).astype(np.float32)
  result = modes.mode_coverage(x, centres, RING8_STD)
  assert result['high_quality'] == 800 / 1_000
  assert result['modes_covered'] == 8


def test_one_mode_collapse_has_kl_log_k_and_no_samples_give_nan():
  rng = np.random.default_rng(2)
  centres = modes.mixture_centres('ring8')
  x = points_at(centres, [2_500] + [0] * 7, RING8_STD, rng)
  result = modes.mode_coverage(x, centres, RING8_STD)
  assert result['modes_covered'] == 1
  np.testing.assert_allclose(result['kl_to_uniform'], np.log(8), rtol=1e-6)
  nowhere = np.full((10, 2), 10.0, np.float32)
  result = modes.mode_coverage(nowhere, centres, RING8_STD)
  assert result['high_quality'] == 0.0 and result['modes_covered'] == 0
  assert np.isnan(result['kl_to_uniform'])


def test_mode_counts_match_a_numpy_count():
  rng = np.random.default_rng(3)
  centres = modes.mixture_centres('grid25')
  x = rng.uniform(-4.2, 4.2, (3_000, 2)).astype(np.float32)
  dist = np.linalg.norm(x[:, None] - centres[None], axis=-1)
  expected = (dist <= 3 * GRID25_STD).sum(0)
  np.testing.assert_array_equal(np.asarray(modes.mode_counts(x, centres, GRID25_STD)), expected)


@pytest.mark.parametrize('kwargs,message', [
    (dict(std=0.0), 'std and min_count must be positive'),
    (dict(std=RING8_STD, min_count=0), 'std and min_count must be positive'),
])
def test_bad_metric_arguments_are_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    modes.mode_coverage(np.zeros((4, 2), np.float32), modes.mixture_centres('ring8'), **kwargs)


def test_samples_that_are_not_2d_points_are_an_error():
  with pytest.raises(ValueError, match=r'samples \[N, 2\] and centres \[K, 2\] are needed'):
    modes.mode_coverage(np.zeros((4, 1, 1, 1), np.float32), modes.mixture_centres('ring8'),
                        RING8_STD)


# ---------------------------------------------------------------------------------- experiment


@pytest.mark.parametrize('rule', ['alternating', 'simultaneous'])
def test_mog2d_trains_with_either_update_rule(tmp_path, rule):
  config = ring8_config()
  config.train.update_rule = rule
  config.train.batch_size = 64
  config.train.num_steps = 20
  config.train.steps_per_call = 10
  config.train.log_every = config.train.checkpoint_every = config.train.sample_every = 10
  workdir = str(tmp_path / 'run')
  api.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['10', '20']
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  assert records and all(np.isfinite(r['d_loss']) for r in records if 'd_loss' in r)


def test_grid25_variant_and_unknown_variant():
  config = mog2d.get_config('grid25')
  assert config.data.name == 'grid25' and config.model.x_scale == 4.0
  assert mog2d.get_config().data.name == 'ring8'
  with pytest.raises(ValueError, match='ring8'):
    mog2d.get_config('ring9')


def _trained_ring8(workdir, num_seeds=1):
  config = ring8_config()
  config.num_seeds = num_seeds
  config.train.batch_size, config.train.num_steps, config.train.steps_per_call = 64, 10, 10
  config.train.log_every = config.train.checkpoint_every = config.train.sample_every = 10
  config.eval.method = 'modes'
  config.eval.modes.num_samples = 500
  api.train_and_evaluate(config, workdir)
  return config


def test_eval_modes_writes_modes_json(tmp_path):
  workdir = str(tmp_path / 'run')
  config = _trained_ring8(workdir)
  record = api.evaluate(config, workdir)
  with open(os.path.join(workdir, 'modes.json')) as f:
    assert json.load(f) == record
  assert record['mixture'] == 'ring8' and record['num_modes'] == 8
  assert record['num_samples'] == 500 and record['min_count'] == 1 and record['step'] == 10
  assert record['mixture_std'] == RING8_STD and 0 <= record['modes_covered'] <= 8
  assert 0 <= record['high_quality'] <= 1
  # The record's numbers are the metric's on the same samples of the restored G.
  exp = experiment.build(config, (1, 1, 2))
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    g_params, _ = ckpt.restore_params('g_params', None, exp.g_shapes())
  samples = exp.generate(g_params, 500, jax.random.key(config.eval.modes.seed), 500)
  again = modes.mode_coverage(samples.reshape(500, 2), data.mixture_centres('ring8'), RING8_STD)
  assert again['modes_covered'] == record['modes_covered']
  assert again['high_quality'] == record['high_quality']


def test_eval_modes_over_seeds(tmp_path):
  workdir = str(tmp_path / 'seeds')
  config = _trained_ring8(workdir, num_seeds=2)
  summary = api.evaluate(config, workdir)
  per_seed = []
  for s in (0, 1):
    with open(os.path.join(workdir, f'seed_{s}', 'modes.json')) as f:
      per_seed.append(json.load(f))
  assert [e['modes_covered'] for e in summary['per_seed']] == [
      r['modes_covered'] for r in per_seed]
  assert summary['modes_covered'] == pytest.approx(np.mean([r['modes_covered'] for r in per_seed]))
  assert summary['num_modes'] == 8


def test_eval_modes_on_images_is_a_one_line_error(tmp_path):
  config = tiny_mnist_config()
  config.eval.method = 'modes'
  with pytest.raises(ConfigError, match="counts the modes of a 2-D mixture .*not 'mnist'"):
    api.evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
