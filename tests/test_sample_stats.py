"""results/sample_stats.py: nearest-sample distances and pixel noise of G's samples."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import tiny_mnist_config
from gan_jax import api
from results import sample_stats


def test_high_frequency_energy_by_hand():
  flat = np.full((1, 6, 6, 1), 0.7)
  speck = np.zeros((1, 5, 5, 1))
  speck[0, 2, 2, 0] = 1.0  # Residual 8/9 at the pixel, -1/9 at its 8 neighbours.
  energy = sample_stats.high_frequency_energy(np.concatenate([speck, flat[:, :5, :5]]))
  np.testing.assert_allclose(energy, [64 / 81 + 8 / 81, 0.0], atol=1e-12)


def test_stats_are_nearest_sample_distances():
  rng = np.random.default_rng(0)
  samples, test = rng.random((30, 4, 4, 1)), rng.random((12, 4, 4, 1))
  got = sample_stats.stats(samples, test)
  d2 = ((test.reshape(12, 1, -1) - samples.reshape(1, 30, -1)) ** 2).sum(-1).min(1)
  assert got['mean_d2'] == pytest.approx(d2.mean(), rel=1e-5)
  assert got['median_d2'] == pytest.approx(np.median(d2), rel=1e-5)


def test_sample_stats_on_a_tiny_run(tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_mnist_config(num_steps=4, checkpoint_every=2)
  with tfds.testing.mock_data(num_examples=48):
    api.train_and_evaluate(config, workdir)
    rows = sample_stats.sample_stats(config, workdir, None, [0, 2], num_samples=20)
  assert [r['samples'] for r in rows] == ['G @ 4', 'G @ 4, averaged over 2 steps',
                                         '20 training images']
  assert all(r['mean_d2'] > 0 and r['hf_energy'] > 0 for r in rows)
