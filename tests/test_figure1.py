"""Figure 1 (the 1-D toy): its kernels, the drawing, the paper's procedure end to end on a short
run of two seeds, and its bad input."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from PIL import ImageSequence
import pytest
from scipy import special
from scipy import stats

from gan_jax import api
from gan_jax import checkpoint
from gan_jax import data
from gan_jax import experiment
from gan_jax import figure1
from gan_jax import figures
from gan_jax import models
from gan_jax import state as state_lib
from gan_jax import toy as toy_lib
from gan_jax import toy_figures
from gan_jax.errors import ConfigError

SQRT3 = np.sqrt(3.0)


def test_ks_distance_is_scipys_one_sample_statistic():
  x = np.random.default_rng(0).normal(4.1, 0.5, 3000)
  want = stats.kstest(x, 'norm', args=(4.0, 0.5)).statistic
  assert toy_lib.ks_distance(x, 4.0, 0.5) == pytest.approx(want, abs=1e-12)
  assert toy_lib.ks_distance(np.array([np.nan, 4.0]), 4.0, 0.5) == 1.0  # A diverged G.


def test_pushforward_density_is_the_change_of_variables():
  z, mass = toy_lib.prior_grid('uniform')
  assert mass.sum() == pytest.approx(1.0)
  grid = np.linspace(0.0, 4.0, 401)
  # A linear G: uniform on 2 -+ sqrt(3) / 2, density 1 / sqrt(3).
  p = toy_lib.pushforward_density(2.0 + 0.5 * z, mass, grid)
  half = 0.5 * SQRT3
  np.testing.assert_allclose(p[np.abs(grid - 2.0) < half - 0.02], 1 / SQRT3, rtol=1e-6)
  assert np.all(p[np.abs(grid - 2.0) > half + 0.02] == 0.0)
  # p_data's quantile function of the uniform z: N(4, 0.5^2) (its far tails are cut off).
  u = np.clip((z + SQRT3) / (2 * SQRT3), 1e-9, 1 - 1e-9)
  grid = np.linspace(2.5, 5.5, 61)
  np.testing.assert_allclose(toy_lib.pushforward_density(4.0 + 0.5 * special.ndtri(u), mass, grid),
                             toy_lib.normal_pdf(grid, 4.0, 0.5), atol=2e-3)
  # A folded G, x = z^2: the two branches add up to 1 / (2 sqrt(3 x)) on (0, 3).
  grid = np.linspace(0.2, 2.8, 27)
  np.testing.assert_allclose(toy_lib.pushforward_density(z**2, mass, grid),
                             1 / (2 * np.sqrt(3 * grid)), rtol=2e-3)
  # A Gaussian z through the identity.
  z, mass = toy_lib.prior_grid('gaussian')
  np.testing.assert_allclose(toy_lib.pushforward_density(z, mass, grid),
                             toy_lib.normal_pdf(grid, 0.0, 1.0), atol=5e-4)


def test_pushforward_cdf_is_the_integral_of_the_density_and_keeps_spikes():
  z, mass = toy_lib.prior_grid('uniform')
  g_of_z = 4.0 + 0.5 * np.tanh(z) + 0.2 * z  # A monotone, non-linear G.
  edges = np.linspace(3.0, 5.0, 201)
  cdf = toy_lib.pushforward_cdf(g_of_z, mass, np.concatenate([[-np.inf], edges, [np.inf]]))
  assert cdf[0] == 0.0 and cdf[-1] == pytest.approx(1.0)
  middle = (edges[1:] + edges[:-1]) / 2
  inside = np.abs(middle - 4.0) < 0.7  # G's range is 4 -+ 0.82: cells across its ends differ.
  np.testing.assert_allclose((np.diff(cdf[1:-1]) / np.diff(edges))[inside],
                             toy_lib.pushforward_density(g_of_z, mass, middle)[inside], rtol=1e-3)
  # A G flat on z > 0 puts half the mass at x = 1: a spike the density misses, the CDF keeps.
  cdf = toy_lib.pushforward_cdf(np.minimum(z, 1.0), mass, [0.99, 1.0, 1.01])
  np.testing.assert_allclose(cdf, [(0.99 + SQRT3) / (2 * SQRT3), 1.0, 1.0], rtol=1e-6)


def test_density_of_a_g_of_several_z_is_a_kde_of_its_samples():
  toy = toy_lib.Toy(g_apply=lambda p, z: p + 0.5 * z[:, 0], d_apply=None, data_mean=4.0,
                    data_std=0.5, z_dim=2, prior='gaussian')
  grid = np.linspace(2.5, 5.5, 31)
  np.testing.assert_allclose(toy.density(jnp.float32(4.0), grid),
                             toy_lib.normal_pdf(grid, 4.0, 0.5), atol=0.03)


def test_optimal_discriminator_is_proposition_1():
  d_star = toy_lib.optimal_discriminator([1.0, 0.3, 0.0, 0.0], [1.0, 0.1, 0.2, 0.0])
  np.testing.assert_allclose(d_star, [0.5, 0.75, 0.0, 0.5])  # 1/2 where both densities are 0.


def _gaussian_toy(g_mean, g_std):
  """A Toy whose G maps the uniform z to N(g_mean, g_std^2) exactly (its quantile function),
  with the toy's D."""
  def g_apply(params, z):
    u = jnp.clip((z + SQRT3) / (2 * SQRT3), 1e-7, 1 - 1e-7)
    return params['mean'] + params['std'] * jax.scipy.special.ndtri(u)

  d_model = models.MLPDiscriminator(units=(32, 32), input_center=4.0, input_scale=0.5)
  d_params = d_model.init(jax.random.key(0), jnp.zeros((1, 1, 1, 1)))
  toy = toy_lib.Toy(g_apply=jax.jit(g_apply), d_apply=jax.jit(d_model.apply), data_mean=4.0,
                    data_std=0.5, z_dim=1, prior='uniform')
  return toy, dict(mean=jnp.float32(g_mean), std=jnp.float32(g_std)), d_params


def test_inner_loop_trains_d_to_d_star_where_g_covers_the_support():
  toy, g, d = _gaussian_toy(4.25, 0.6)
  samples = toy.samples(g, 20_000, jax.random.key(1))
  before = toy.numbers(g, d, samples)
  d = toy.fit_discriminator(g, d, jax.random.key(2), toy_lib.InnerLoop(500, 1024, 1e-2))
  after = toy.numbers(g, d, samples)
  # D* is smooth here (p_g has no ends inside [2, 6]): D follows it where the samples are. In
  # the far tails (beyond 3 sd, 0.1% of p_data) it cannot: there max |D - D*| stays ~0.1-0.3.
  assert after['max_abs_d_minus_d_star_central'] < 0.02 < before['max_abs_d_minus_d_star_central']
  assert after['mean_abs_d_minus_d_star'] < 0.005 < before['mean_abs_d_minus_d_star']
  assert after['max_abs_d_minus_d_star'] > 0.05
  assert after['ks'] == before['ks'] and after['ks'] > 0.1


def test_exact_inner_loop_trains_d_to_d_star_on_the_whole_support():
  toy, g, d = _gaussian_toy(4.25, 0.6)
  x, p_data, p_g = toy.cell_masses(g, 1000)
  assert p_data.sum() == pytest.approx(1.0) and p_g.sum() == pytest.approx(1.0, abs=1e-6)
  half_cell = (x[1] - x[0]) / 2  # The cells span p_data's 4 -+ 6 sd and G's range (to 7.1).
  assert x[0] - half_cell == pytest.approx(4.0 - toy_lib.EXACT_SDS * 0.5)
  g_max = toy.g_on_z(g, [SQRT3])[0]
  assert x[-1] + half_cell == pytest.approx(g_max) and g_max > 7.0
  samples = toy.samples(g, 20_000, jax.random.key(1))
  d = toy.fit_discriminator(g, d, None, toy_lib.ExactInnerLoop(2000, 1e-2, 1000))
  after = toy.numbers(g, d, samples)
  # No sampling noise: D reaches D* also in the tails, where the sampled loop above cannot.
  assert after['max_abs_d_minus_d_star'] < 0.05
  assert after['max_abs_d_minus_d_star_off_jumps'] == after['max_abs_d_minus_d_star']  # No ends.


def test_cell_masses_of_a_g_of_several_z_are_its_samples_fractions():
  toy = toy_lib.Toy(g_apply=lambda p, z: p + 0.5 * z[:, 0], d_apply=None, data_mean=4.0,
                    data_std=0.5, z_dim=2, prior='gaussian')
  x, p_data, p_g = toy.cell_masses(jnp.float32(4.0), 500)
  assert len(x) == 500 and p_g.sum() == pytest.approx(1.0)
  np.testing.assert_allclose(np.cumsum(p_g), np.cumsum(p_data), atol=0.02)


def test_max_off_jumps_leaves_out_only_the_ends_of_gs_range():
  # G uniform on 4 -+ 0.87 (p_g 0.58 there), D = D* but for a 0.01-wide ramp at each end.
  half, height = 0.5 * SQRT3, 1 / (2 * SQRT3 * 0.5)

  def d_apply(_, x):
    x = x.reshape(-1)
    p_data = jnp.exp(-0.5 * jnp.square((x - 4.0) / 0.5)) / (0.5 * np.sqrt(2 * np.pi))
    outside = jnp.clip((jnp.abs(x - 4.0) - half) / 0.01 + 0.5, 0.0, 1.0)
    d = (1 - outside) * p_data / (p_data + height) + outside * 0.999
    return jnp.log(d / (1 - d))

  toy = toy_lib.Toy(g_apply=lambda p, z: 4.0 + 0.5 * z[:, 0], d_apply=d_apply, data_mean=4.0,
                    data_std=0.5, z_dim=1, prior='uniform')
  numbers = toy.numbers(None, None, np.full(10, 4.0))
  assert numbers['max_abs_d_minus_d_star'] > 0.2
  assert numbers['max_abs_d_minus_d_star_off_jumps'] < 0.005


def test_generator_update_moves_g_by_the_asked_amount_towards_d():
  toy, g, _ = _gaussian_toy(4.0, 0.5)
  # A D that rises with x: the update moves G(z) to the right, by at most max_move.
  d = toy_lib.Toy(g_apply=toy.g_apply, d_apply=lambda p, x: (x.reshape(-1) - 4.0) * p,
                  data_mean=4.0, data_std=0.5, z_dim=1, prior='uniform')
  new, step_size, move = d.generator_update(g, jnp.float32(1.0), jax.random.key(3), 0.1)
  assert step_size > 0 and move == pytest.approx(0.1, rel=1e-4)  # G is linear in its params.
  assert float(new['mean']) > 4.0


def _curves(means, map_line=True):
  x = np.linspace(1.0, 7.0, 300)
  z = np.linspace(*figure1.prior_range('uniform'), figure1.MAP_LINES)
  out = []
  for k, m in enumerate(means):
    p_g = toy_lib.normal_pdf(x, m, 0.4)
    p_data = toy_lib.normal_pdf(x, 4.0, 0.5)
    out.append(figure1.Curves(title=f'({k}) {m}', x=x, p_data=p_data, p_g=p_g,
                              d=1 / (1 + np.exp(x - m - 1)),
                              d_star=toy_lib.optimal_discriminator(p_data, p_g),
                              z=z if map_line else None, g_of_z=m + z if map_line else None))
  return out


def _assert_curves_drawn(image):
  # Black (p_data), green (p_g), blue (D) and light-blue (D*) pixels all occur.
  pixels = image.reshape(-1, 3).astype(int)
  for colour in (figure1.BLACK, figure1.GREEN, figure1.BLUE, figure1.LIGHT_BLUE):
    assert (np.abs(pixels - colour).max(axis=1) < 40).sum() > 100, colour


def test_draw_toy_figure_and_frames_are_deterministic_and_show_their_input():
  panels = _curves([3.0, 3.5, 4.0, 4.0])
  image = figure1.draw_toy_figure(panels)
  assert image.shape == (figure1.HEIGHT, 4 * figure1.PANEL_W, 3) and image.dtype == np.uint8
  _assert_curves_drawn(image)
  np.testing.assert_array_equal(image, figure1.draw_toy_figure(panels))
  assert not np.array_equal(image, figure1.draw_toy_figure(_curves([3.0, 3.6, 4.0, 4.0])))
  no_map = figure1.draw_toy_figure(_curves([3.0, 3.5, 4.0, 4.0], map_line=False))
  assert no_map.shape == image.shape and not np.array_equal(image, no_map)
  frames = figure1.draw_frames(panels[:3])
  assert [f.shape for f in frames] == [(figure1.FRAME_H, figure1.FRAME_W, 3)] * 3
  _assert_curves_drawn(frames[0])
  gif = figure1.gif_bytes(frames, 80, 500)
  assert gif == figure1.gif_bytes(figure1.draw_frames(panels[:3]), 80, 500)
  assert gif[:6] == b'GIF89a'


@pytest.fixture(scope='module')
def short_run(tmp_path_factory):
  """experiments/toy1d.py:short, two seeds in one program, and its Figure 1."""
  from experiments import toy1d  # pylint: disable=g-import-not-at-top

  config = toy1d.get_config('short')
  config.num_seeds = 2
  config.train.checkpoint_every = 100  # Fewer frames to draw; the run is the same.
  workdir = str(tmp_path_factory.mktemp('toy') / 'run')
  api.train_and_evaluate(config, workdir)
  with pytest.MonkeyPatch.context() as patch:  # A shorter inner loop for (b) than the default.
    patch.setattr(toy_figures, 'INNER_LOOP', toy_lib.ExactInnerLoop(2000, 1e-2, 1000))
    paths = figures.make_figures(config, workdir)
  return config, workdir, paths


def test_short_run_fits_both_seeds_and_figure1_is_written_per_seed(short_run):
  config, workdir, paths = short_run
  assert paths == [os.path.join(workdir, f'seed_{s}', 'figures', name) for s in (0, 1)
                   for name in ('figure1.png', 'figure1.json', 'figure1.gif')]
  for seed in (0, 1):
    png, json_path, gif = paths[3 * seed:3 * seed + 3]
    with open(json_path) as f:
      record = json.load(f)
    a, b, c, d = record['panels']
    assert [p['name'] for p in record['panels']] == list('abcd')
    assert d['step'] == config.train.num_steps and a['step'] == b['step'] == c['step']
    assert d['ks'] < 0.05, (seed, d)  # The toy trains: G reaches p_data.
    assert a['ks'] == b['ks'] and b['mean_abs_d_minus_d_star'] < a['mean_abs_d_minus_d_star']
    assert b['max_abs_d_minus_d_star_central'] < 0.05, (seed, b)  # (b): D near D*.
    assert record['inner_loop']['kind'] == 'ExactInnerLoop'
    assert record['support'] == [2.0, 6.0]
    with Image.open(png) as image:
      assert image.size == (4 * figure1.PANEL_W, figure1.HEIGHT)
    with Image.open(gif) as animation:
      frames = sum(1 for _ in ImageSequence.Iterator(animation))
    assert frames == 1 + config.train.num_steps // config.train.checkpoint_every
  assert open(paths[0], 'rb').read() != open(paths[3], 'rb').read()  # Two seeds, two Gs.


def test_figure1_numbers_are_computed_from_the_checkpoints(short_run, monkeypatch):
  config, workdir, paths = short_run
  train = data.load_split(config.data, config.data.train_split)
  exp = experiment.build(config, train.shape[1:], len(train))
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    state, step = ckpt.restore(exp.initial_state(train), config.train.num_steps)
  toy = toy_lib.Toy(g_apply=exp.g_apply, d_apply=jax.jit(exp.d_model.apply), data_mean=4.0,
                    data_std=0.5, z_dim=1, prior='uniform')
  grid = toy.interval(toy_lib.SUPPORT_SDS)
  for seed in (0, 1):
    g = state_lib.seed_slice(jax.device_get(state.g_params), seed)
    d = state_lib.seed_slice(jax.device_get(state.d_params), seed)
    with open(paths[3 * seed + 1]) as f:
      panel_d = json.load(f)['panels'][3]
    # Recomputed here from the last checkpoint: D on the grid exactly, D* from G's exact
    # density, the KS distance from other samples of G (so up to sampling error).
    d_on_grid = toy.discriminator(d, grid)
    d_star = toy_lib.optimal_discriminator(toy.p_data(grid), toy.density(g, grid))
    assert panel_d['max_abs_d_minus_half'] == pytest.approx(np.abs(d_on_grid - 0.5).max())
    assert panel_d['max_abs_d_minus_d_star'] == pytest.approx(np.abs(d_on_grid - d_star).max())
    ks = toy_lib.ks_distance(toy.samples(g, 20_000, jax.random.key(99)), 4.0, 0.5)
    assert abs(panel_d['ks'] - ks) < 0.02
  # --step draws panel (d) at an earlier checkpoint: other numbers, from that checkpoint.
  monkeypatch.setattr(toy_figures, 'INNER_LOOP', toy_lib.InnerLoop(10, 256, 1e-2))
  earlier = figures.make_figures(config, workdir, step=100)
  with open(earlier[1]) as f:
    assert json.load(f)['panels'][3]['step'] == 100


def test_figures_without_checkpoints_or_at_a_missing_step_are_one_line_errors(short_run,
                                                                              tmp_path):
  config, workdir, _ = short_run
  with pytest.raises(checkpoint.CheckpointError, match='train first') as error:
    figures.make_figures(config, str(tmp_path / 'empty'))
  assert '\n' not in str(error.value)
  with pytest.raises(checkpoint.CheckpointError, match='step 150') as error:
    figures.make_figures(config, workdir, step=150)
  assert '\n' not in str(error.value)


def test_the_toy_models_work_in_standardised_units_and_check_their_fields():
  from experiments import toy1d  # pylint: disable=g-import-not-at-top

  config = toy1d.get_config()
  exp = experiment.build(config, (1, 1, 1), config.data.toy_size)
  state = exp.initial_state(None)
  z = jnp.linspace(-SQRT3, SQRT3, 7)[:, None]
  plain = config.copy_and_resolve_references()
  plain.model.x_center, plain.model.x_scale = 0.0, 1.0
  g_plain = models.build_generator(plain.model, (1, 1, 1))
  np.testing.assert_allclose(exp.g_model.apply(state.g_params, z),
                             4.0 + 0.5 * g_plain.apply(state.g_params, z), rtol=1e-6)
  x = jnp.linspace(2.0, 6.0, 5).reshape(-1, 1, 1, 1)
  d_plain = models.build_discriminator(plain.model)
  np.testing.assert_allclose(exp.d_model.apply(state.d_params, x),
                             d_plain.apply(state.d_params, (x - 4.0) / 0.5), rtol=1e-6)
  bad = config.copy_and_resolve_references()
  bad.model.d_activation = 'swish'
  with pytest.raises(ConfigError, match="Unknown model.d_activation 'swish'"):
    models.build_discriminator(bad.model)
  bad = config.copy_and_resolve_references()
  bad.model.x_scale = 0.0
  with pytest.raises(ConfigError, match='x_scale .* must be positive, got 0.0'):
    models.build_generator(bad.model, (1, 1, 1))
