r"""Mode collapse on Stacked MNIST: three MNIST digits as one image's channels (1,000 modes).

The benchmark of Metz et al. 2017 (Unrolled GANs), Srivastava et al. 2017 (VEEGAN) and Lin et
al. 2018 (PacGAN). Each example stacks three MNIST digits drawn at random (config.data.
stacked_seed; gan_jax.stacked_mnist) from MNIST's split of the same name: train[:50000] to
train, train[50000:] to validate, test to test, as many examples as each holds (config.data.
stacked_size), read like 'mnist' (TFDS with TFDS_DATA_DIR, or --config.data.idx_dir; no
download). Both update rules, 3 seeds in one program:

  python launch.py --config=experiments/stacked_mnist.py --workdir=runs/stacked_alternating \
    --config.num_seeds=3 --config.train.update_rule=alternating   # or simultaneous

Evaluate: modes covered (of 1,000) and KL to uniform of 26,000 samples of G, each channel
labelled by the shipped MNIST classifier (gan_jax.modes; modes.json, modes_seeds.json):

  python launch.py --config=experiments/stacked_mnist.py --workdir=runs/stacked_alternating \
    --config.num_seeds=3 --config.train.update_rule=alternating --mode=eval

The same score of 26,000 training images (the reference row, modes_data_as_samples.json):

  python launch.py --config=experiments/stacked_mnist.py --workdir=runs/stacked_data \
    --mode=eval --config.eval.modes.data_as_samples=train

What is chosen and why:
* The cited papers use DCGAN-style conv nets here, which are not the paper's model family, so
  this is the paper's MNIST model (experiments/mnist.py) on 28x28x3 images: G z (100-d uniform)
  -> ReLU 1200 -> ReLU 1200 -> sigmoid 2,352 (output bias from the pixel marginals); D maxout
  240x5 -> maxout 240x5 -> sigmoid, dropout on every layer's input (0.8 on the pixels, then 0.5).
* SGD with momentum, lr 0.1 decaying as lr / 1.000004^t, batch 100: mnist.py's recipe, as its
  `:quick` demo but shorter (NUM_STEPS = 5,000 steps, 10 epochs), so that 3 seeds in one program
  train in about 45 minutes on 2 CPU cores shared with other jobs; --config.train.num_steps to
  train longer (the run resumes from its last checkpoint).
* The original code's simultaneous rule (the base's default, as mnist.py) or Algorithm 1
  (--config.train.update_rule=alternating, k = 1).
* No Parzen estimate during training (eval.every = 0): --mode=eval counts modes.
"""

import ml_collections

from gan_jax import config as config_lib

VARIANTS = ()
NUM_STEPS = 5_000


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The Stacked MNIST experiment (no variants)."""
  config_lib.parse_variant(arg, VARIANTS, 'stacked_mnist')
  config = config_lib.base_config()

  d = config.data
  d.name = 'stacked_mnist'
  d.allow_download = False
  # train_split, valid_split, test_split: MNIST's (the base's); stacked_size 0: as many.

  config.model.g_output_bias_from_marginals = True  # As experiments/mnist.py.

  t = config.train
  t.num_steps = NUM_STEPS
  t.checkpoint_every = 500
  t.keep_checkpoints = NUM_STEPS // t.checkpoint_every + 1  # All: coverage over training.
  t.sample_every = 500
  t.log_every = 100

  config.eval.every = 0
  config.eval.method = 'modes'  # 26,000 samples (eval.modes.num_samples = 0: the default).
  return config
