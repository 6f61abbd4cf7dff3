"""Figures 1-3: latent walks, layouts, and make_figures end to end."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from conftest import tiny_mnist_config
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import figures
from gan_jax import models


def test_latent_walk_ends_at_g_of_its_endpoints():
  g = models.MLPGenerator(hidden=(16,), activations=('relu',), hidden_inits=('uniform:0.5',),
                          hidden_bias=(0.0,), image_shape=(4, 4, 1))
  params = g.init(jax.random.key(0), jnp.zeros((1, 8)))
  images, z = figures.latent_walk(jax.jit(g.apply), params, jax.random.key(1), rows=3, steps=7,
                                  z_dim=8, prior='uniform')
  assert images.shape == (3, 7, 4, 4, 1) and z.shape == (3, 7, 8)
  chex.assert_trees_all_close(images[:, 0], np.asarray(g.apply(params, z[:, 0])), atol=1e-6)
  chex.assert_trees_all_close(images[:, -1], np.asarray(g.apply(params, z[:, -1])), atol=1e-6)
  # z moves along the straight segment, in equal steps, between distinct endpoints.
  t = np.linspace(0, 1, 7)[None, :, None]
  np.testing.assert_allclose(z, (1 - t) * z[:, :1] + t * z[:, -1:], atol=1e-6)
  assert np.abs(z[:, 0] - z[:, -1]).min() > 0 and np.abs(images[:, 0] - images[:, -1]).max() > 0
  with pytest.raises(ValueError, match='steps >= 2'):
    figures.latent_walk(g.apply, params, jax.random.key(1), rows=3, steps=1, z_dim=8,
                        prior='uniform')


def test_nearest_layout_puts_the_neighbour_in_a_border():
  rng = np.random.default_rng(0)
  samples = rng.uniform(0.1, 0.9, size=(2, 3, 5, 4, 1)).astype(np.float32)
  neighbours = np.zeros((2, 5, 4, 1), np.float32)  # Black, to tell them from the border.
  out = figures.nearest_layout(samples, neighbours)
  b, gap = figures.NN_BORDER, figures.NN_GAP
  assert out.shape == (2 * (5 + 2 * b + 1) - 1, 3 * (4 + 1) - 1 + gap + 4 + 2 * b, 3)
  nn_x = 3 * 5 - 1 + gap
  assert tuple(out[0, nn_x]) == figures.NN_COLOUR  # The border's corner ...
  assert (out[b:b + 5, nn_x + b:nn_x + b + 4] == 0).all()  # ... around the neighbour.
  first = np.round(samples[0, 0, ..., 0] * 255).astype(int)
  np.testing.assert_allclose(out[b:b + 5, 0:4, 0], first, atol=1)  # The first sample, unscaled.
  assert (out[:, nn_x - gap:nn_x] == 255).all()  # A white gap before the border.
  # 'gcn' data: one symmetric scale for samples and neighbours together, 0 -> mid-grey.
  out = figures.nearest_layout(samples - 0.5, np.zeros_like(neighbours), 'gcn')
  assert (np.abs(out[b:b + 5, nn_x + b:nn_x + b + 4].astype(int) - 128) <= 1).all()


def _png_size(path):
  with Image.open(path) as image:
    return image.size  # (width, height)


def test_make_figures_on_a_tiny_mnist_run(tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_mnist_config(num_steps=4, checkpoint_every=2, sample_every=4)
  config.model.g_hidden, config.model.d_units = (16, 16), (8, 8)
  with tfds.testing.mock_data(num_examples=48):
    with pytest.raises(checkpoint.CheckpointError, match='train first'):
      figures.make_figures(config, workdir)
    api.train_and_evaluate(config, workdir)
    paths = figures.make_figures(config, workdir)
    with pytest.raises(checkpoint.CheckpointError, match='step 3'):
      figures.make_figures(config, workdir, step=3)
    older = figures.make_figures(config, str(workdir), step=2)
    config.eval.parzen.g_average = 2  # G averaged over the checkpoints at steps 2 and 4.
    averaged = figures.make_figures(config, workdir)
  names = ['samples.png', 'nearest.png', 'interpolation.png']
  assert paths == older == [os.path.join(workdir, 'figures', n) for n in names]
  assert averaged == [os.path.join(workdir, 'figures_g_average_2', n) for n in names]
  assert [_png_size(p) for p in averaged] == [_png_size(p) for p in paths]
  tile, b = 28 + 1, figures.NN_BORDER
  assert _png_size(paths[0]) == (figures.SAMPLE_ROWS * tile - 1,) * 2
  assert _png_size(paths[1]) == (
      figures.NEAREST_COLS * tile - 1 + figures.NN_GAP + 28 + 2 * b,
      figures.NEAREST_ROWS * (28 + 2 * b + 1) - 1)
  assert _png_size(paths[2]) == (figures.WALK_STEPS * tile - 1, figures.WALK_ROWS * tile - 1)


def test_toy1d_data_is_drawn_deterministically_and_checked():
  from experiments import toy1d  # pylint: disable=g-import-not-at-top
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax import validation  # pylint: disable=g-import-not-at-top

  config = toy1d.get_config()
  validation.validate(config, 4)
  x = data.load_split(config.data, 'train')
  assert x.shape == (10_000, 1, 1, 1) and x.dtype == np.float32
  assert abs(x.mean() - 4.0) < 0.02 and abs(x.std() - 0.5) < 0.02
  np.testing.assert_array_equal(x, data.load_split(config.data, 'train'))
  assert not np.array_equal(x, data.load_split(config.data, 'valid'))
  with pytest.raises(data.DataError, match="Split 'train\\[:100\\]'"):
    data.load_split(config.data, 'train[:100]')
