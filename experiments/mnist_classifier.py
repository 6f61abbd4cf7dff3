r"""The MNIST classifier whose features gan_jax's sample-quality metrics use (FID, KID, ...).

gan_jax ships its weights (gan_jax/assets/mnist_classifier.msgpack, checksum in
gan_jax/classifier.py); this command reproduces them, bit for bit on the machine that made them:

  python launch.py --config=experiments/mnist_classifier.py --workdir=runs/mnist_classifier

A LeNet-style CNN (conv 5x5 16 -> ReLU -> max-pool 2, conv 5x5 32 -> ReLU -> max-pool 2,
dense 128 ReLU: the features, dense 10) trained with Adam, cosine-decayed learning rate, for 10
epochs on MNIST's training split as gan_jax defines it (the first 50,000 training images),
validated on the last 10,000, never trained on test. Minutes on 2 CPU cores.

The workdir then holds config.json, metrics.jsonl (per epoch: train loss, valid accuracy,
seconds), weights.msgpack (the params, flax msgpack) and weights.json (its SHA-256, valid and
test accuracy, library versions). Running the command again on a finished workdir only says
where the weights are; --config.train.retrain=True trains again over them. Test accuracy of the
workdir's weights, and whether they are the shipped ones:

  python launch.py --config=experiments/mnist_classifier.py --workdir=runs/mnist_classifier \
      --mode=eval

Data as for the GAN (experiments/mnist.py): TFDS `mnist`; set TFDS_DATA_DIR (or
--config.data.data_dir) to a prepared copy when offline. (--config.data.idx_dir reads the IDX
files, whose train[:50000] is another 50,000 images than TFDS's: not the shipped weights' data.)
"""

import ml_collections

from gan_jax import config as config_lib

VARIANTS = ()


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The classifier's own schema (task='classifier'), with the shipped weights' recipe."""
  config_lib.parse_variant(arg, VARIANTS, 'mnist_classifier')
  config = ml_collections.ConfigDict()
  config.task = 'classifier'  # gan_jax.api sends it to gan_jax/classifier_train.py.
  config.seed = 0  # Initialisation: jax.random.key(seed); data order: (seed, epoch).
  # The GAN's data section, field for field (gan_jax.data reads it): the same splits.
  config.data = ml_collections.ConfigDict(config_lib.base_config().data.to_dict())
  config.model = ml_collections.ConfigDict(dict(
      conv_channels=(16, 32),  # 5x5 'VALID' convs, each followed by ReLU and 2x2 max-pooling.
      features=128,            # The penultimate layer: the metrics' features.
  ))
  config.train = ml_collections.ConfigDict(dict(
      batch_size=100,
      epochs=10,
      learning_rate=2e-3,      # Adam's, decayed to 0 along a cosine over the whole run.
      eval_batch_size=1_000,   # Images per compiled forward pass (accuracy, features).
      # False: a finished workdir is left as it is (the command says where its weights are);
      # True: train again, replacing its weights.
      retrain=False,
  ))
  config.lock()
  return config
