r"""Trains or evaluates a GAN of Goodfellow et al. (2014).

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist
  python launch.py --config=experiments/mnist.py --workdir=runs/mnist --mode=eval
  python launch.py --config=experiments/mnist.py --workdir=runs/mnist --mode=eval \
      --config.eval.method=ais   # or sample_quality

Config fields are overridden with --config.<section>.<field>=value. Running the same command on
the same workdir resumes from its newest checkpoint. Other packages' INFO lines (orbax, TFDS, JAX)
show with --verbosity=1 (their DEBUG lines with --verbosity=2).
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

import gan_jax
from gan_jax import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory holding the run (config, logs, checkpoints).')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'figures'],
                  'train: train (and resume); eval: config.eval.method on a checkpoint (the '
                  "paper's Parzen protocol by default; ais; sample_quality); figures: the paper's "
                  'Figures 2-3 (and 1 for toy1d) from a checkpoint.')
flags.DEFINE_integer('step', None, 'eval/figures: the checkpoint step to use (default: newest).')
flags.DEFINE_bool('allow_config_change', False, 'Resume a workdir whose run had another config.')
# Several processes (hosts): the names of jax.distributed.initialize's arguments.
flags.DEFINE_string('coordinator_address', None, "Multi-process: 'host:port' of process 0.")
flags.DEFINE_integer('num_processes', None, 'Multi-process: the number of processes.')
flags.DEFINE_integer('process_id', None, "Multi-process: this process's index.")
flags.DEFINE_bool('distributed', False, 'Multi-process with the arguments detected by JAX '
                  '(SLURM, Cloud TPU pods, ...).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  cli.quiet_libraries(__file__)  # Other packages' INFO lines only with --verbosity=1.
  try:
    gan_jax.multihost.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                 FLAGS.process_id, FLAGS.distributed)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  logging.info('Config:\n%s', FLAGS.config)
  try:
    if FLAGS.mode == 'train':
      gan_jax.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.allow_config_change)
    elif FLAGS.mode == 'eval':
      gan_jax.evaluate(FLAGS.config, FLAGS.workdir, FLAGS.step)
    else:
      gan_jax.make_figures(FLAGS.config, FLAGS.workdir, FLAGS.step)
  except gan_jax.USER_ERRORS as e:
    # A problem with the user's input: one clear line, no traceback, exit status 2.
    logging.error('%s', e)
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)  # A bad --config.* override: one line.
