r"""The BDMC gap of AIS on a checkpoint's G as the number of temperatures grows.

  python results/bdmc_gap.py RUN STEP [--temps 50,250,1000] [--examples 10] [--chains 8]

Data simulated from G itself (z* from the prior, x = G(z*) + obs_std noise): forward AIS gives
a stochastic lower bound of log p(x), reverse AIS from z* an upper bound (gan_jax.ais.bdmc); the
gap between them bounds the error of the forward estimate on such data. Same key, images and
obs_std for every schedule, so the rows differ only by the number of temperatures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
from jax.tree_util import Partial

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import ais
from gan_jax import checkpoint
from gan_jax import experiment
from gan_jax import workdir as workdir_lib


def main(args) -> None:
  config = workdir_lib.read_config(args.run)
  exp = experiment.build(config, (28, 28, 1))
  with checkpoint.Checkpointer.of_run(args.run) as ckpt:
    g_params, step = ckpt.restore_params('g_params', args.step, exp.g_shapes())
  apply = lambda p, z: exp.g_model.apply(p, z).reshape(z.shape[0], -1)
  generator = Partial(apply, g_params)
  print(f'{args.run} at step {step}: BDMC on {args.examples} images simulated from G, '
        f'obs_std {args.obs_std}, {args.chains} chains, {args.leapfrog} leapfrog steps')
  print('| temperatures | lower (forward AIS) | upper (reverse AIS) | gap | seconds |')
  print('|---|---|---|---|---|')
  for temps in (int(t) for t in args.temps.split(',')):
    start = time.time()
    result = ais.bdmc(generator, jax.random.key(0), num_examples=args.examples,
                      z_dim=config.model.z_dim, prior=config.model.prior, obs_std=args.obs_std,
                      num_chains=args.chains, num_temps=temps, leapfrog_steps=args.leapfrog,
                      batch_size=args.examples)
    print(f'| {temps} | {result.lower:.1f} | {result.upper:.1f} | {result.gap:.2f} | '
          f'{time.time() - start:.0f} |')


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('run')
  parser.add_argument('step', type=int)
  parser.add_argument('--temps', default='50,250,1000')
  parser.add_argument('--examples', type=int, default=10)
  parser.add_argument('--chains', type=int, default=8)
  parser.add_argument('--leapfrog', type=int, default=10)
  parser.add_argument('--obs_std', type=float, default=0.2)
  main(parser.parse_args())
