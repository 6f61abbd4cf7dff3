r"""What the Parzen estimate sees in a set of samples: nearness to the test images, and pixel noise.

  python results/sample_stats.py --workdir=runs/mnist_sim_s0 --step=800000 \
      --g_average=0,200000,795000 [--num_samples=10000]

At the sigma the protocol picks on MNIST (0.167), a test image's Parzen log-likelihood is
dominated by its nearest sample: log p(x) ~ -d_min(x)^2 / (2 sigma^2) + const. So for each
version of G (the checkpoint alone, or G averaged over the checkpoints of the last W steps,
`eval.parzen.g_average`) and for as many training images (the memoriser), this prints the mean and
median over the test images of d_min^2, and the samples' high-frequency energy: the mean per image
of ||x - box3(x)||^2, box3 a 3x3 mean filter, which isolated speckle raises and smooth strokes do
not. Samples are drawn with the protocol's noise key, so they are the ones `--mode=eval` scores.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import checkpoint
from gan_jax import data
from gan_jax import evaluation
from gan_jax import experiment
from gan_jax import neighbours
from results import table1


def high_frequency_energy(images: np.ndarray) -> np.ndarray:
  """Per image, ||x - box3(x)||^2 with a 3x3 mean filter (edges padded by replication)."""
  x = np.asarray(images, np.float64).reshape(len(images), *images.shape[1:3])
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode='edge')
  h, w = x.shape[1:]
  box = sum(padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0
  return np.square(x - box).sum(axis=(1, 2))


def stats(samples: np.ndarray, test: np.ndarray) -> dict:
  """Nearest-sample squared distances of the test images, and the samples' pixel noise."""
  _, dist = neighbours.nearest(test.reshape(len(test), -1), samples.reshape(len(samples), -1))
  d2 = np.square(dist)
  return {'mean_d2': float(np.mean(d2)), 'median_d2': float(np.median(d2)),
          'hf_energy': float(np.mean(high_frequency_energy(samples)))}


def sample_stats(config, workdir: str, step: int | None, windows: list[int],
                 num_samples: int) -> list[dict]:
  """One row per window (0 = the checkpoint alone), then one for `num_samples` training images."""
  p = config.eval.parzen
  splits = data.load_splits(config.data, ('train', 'test'))
  test = splits['test']
  exp = experiment.build(config, test.shape[1:])
  rows = []
  with checkpoint.Checkpointer.of_run(workdir) as ckpt:
    for window in windows:
      g, restored, _ = evaluation.restore_generator(ckpt, exp.g_shapes(), step, window)
      samples = exp.generate(g, num_samples, jax.random.key(p.seed), p.batch_size)
      rows.append({'samples': f'G @ {restored:,}' + (f', averaged over {window:,} steps'
                                                     if window else ''), **stats(samples, test)})
  rows.append({'samples': f'{num_samples:,} training images',
               **stats(splits['train'][:num_samples], test)})
  return rows


def define_flags() -> None:
  """The command-line flags; defined only when run as a script, so the tests can import both
  analysis scripts (absl refuses a flag name defined twice)."""
  global _WORKDIR, _STEP, _AVERAGE, _NUM  # pylint: disable=global-statement
  _WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run (its config.json is used).')
  _STEP = flags.DEFINE_integer('step', None, 'Checkpoint (default: newest).')
  _AVERAGE = flags.DEFINE_list('g_average', ['0'], 'Windows of eval.parzen.g_average (0 = none).')
  _NUM = flags.DEFINE_integer('num_samples', 10_000, 'Samples per version of G.')


def main(argv):
  del argv
  config = table1.load_config(_WORKDIR.value)
  rows = sample_stats(config, _WORKDIR.value, _STEP.value, [int(w) for w in _AVERAGE.value],
                      _NUM.value)
  print('| samples | mean d_min² | median d_min² | high-frequency energy |\n|---|---|---|---|')
  for r in rows:
    print(f"| {r['samples']} | {r['mean_d2']:.2f} | {r['median_d2']:.2f} | {r['hf_energy']:.2f} |")


if __name__ == '__main__':
  define_flags()
  flags.mark_flag_as_required('workdir')
  app.run(main)
