"""The shipped domain classifier whose features gan_jax's sample-quality metrics use.

FID, KID and precision / recall need an embedding of images. For MNIST, the TTUR authors advise
a classifier trained on the domain rather than Inception, so gan_jax ships one: a small
LeNet-style CNN (`Classifier`), trained on MNIST's training split (the first 50,000 images) by

  python launch.py --config=experiments/mnist_classifier.py --workdir=runs/mnist_classifier

(gan_jax/classifier_train.py). Its weights live in gan_jax/assets/ with their SHA-256 below, so
every user gets the same features without training: `load('mnist')` verifies the file and
returns (module, params); `features_and_logits(module, params, images)` gives the penultimate
layer (the features) and the logits, jitted and batched, at full float32 precision on every
backend (accelerators otherwise multiply in TF32 / bf16 passes), so GPU features equal CPU's to
float tolerance.

Images are what G outputs: float32 in [0, 1], [N, 28, 28, 1], or flat [N, 784] vectors.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os

import flax.linen as nn
from flax import serialization
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import CheckpointError
from gan_jax.errors import ConfigError
from gan_jax.errors import DataError

_HIGHEST = jax.lax.Precision.HIGHEST
ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'assets')

# The shipped MNIST classifier: its file's SHA-256, and its test accuracy measured when the
# command above trained it (2 cores of an AMD EPYC, jax 0.10.2; two runs gave the same bytes).
# Its valid accuracy, training time and versions are in that run's weights.json.
MNIST_SHA256 = '039d2fe4b7f9eaa1fa7a037f0b0c05267cb4c92a7d36f98a2bacf690900fe8b0'
MNIST_TEST_ACCURACY = 0.9922


@dataclasses.dataclass(frozen=True)
class Shipped:
  """A classifier shipped with gan_jax.

  Attributes:
    filename: its weights (flax msgpack of the params) in gan_jax/assets/.
    sha256: the SHA-256 of that file.
    test_accuracy: measured on the dataset's test split when it was trained.
    command: the command that trained it (its <workdir>/weights.msgpack is the file).
    workdir: that command's --workdir.
    module: the architecture the weights fit.
  """
  filename: str
  sha256: str
  test_accuracy: float
  command: str
  workdir: str
  module: Classifier


class Classifier(nn.Module):
  """A LeNet-style CNN whose penultimate layer gives the features.

  Per conv layer a 5x5 'VALID' conv -> ReLU -> 2x2 max-pool; then dense -> ReLU (the features)
  -> dense (the logits). Called on images [N, H, W, C], it returns (features [N, features],
  logits [N, num_classes]).

  Attributes:
    conv_channels: output channels of each conv layer.
    features: width of the penultimate (feature) layer.
    num_classes: number of logits.
    image_shape: (H, W, C) of the images it takes.
    dataset: the dataset it classifies (named in error messages).
  """
  conv_channels: tuple[int, ...] = (16, 32)
  features: int = 128
  num_classes: int = 10
  image_shape: tuple[int, int, int] = (28, 28, 1)
  dataset: str = 'mnist'

  @nn.compact
  def __call__(self, images):
    x = images
    for i, channels in enumerate(self.conv_channels):
      x = nn.Conv(channels, (5, 5), padding='VALID', precision=_HIGHEST, name=f'conv{i}')(x)
      x = _max_pool_2x2(nn.relu(x))
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(self.features, precision=_HIGHEST, name='hidden')(x))
    logits = nn.Dense(self.num_classes, precision=_HIGHEST, name='logits')(features)
    return features, logits


def _max_pool_2x2(x):
  """2x2 max-pooling, stride 2 (an odd last row / column dropped, as nn.max_pool does).

  As a reshape and a max rather than nn.max_pool: XLA:CPU's gradient of the latter
  (select-and-scatter) made a training step 2.4x slower.
  """
  n, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


TRAIN_COMMAND = ('python launch.py --config=experiments/mnist_classifier.py '
                 '--workdir=runs/mnist_classifier')

SHIPPED = {
    'mnist': Shipped('mnist_classifier.msgpack', MNIST_SHA256, MNIST_TEST_ACCURACY,
                     TRAIN_COMMAND, 'runs/mnist_classifier', Classifier()),
}


def init_params(module: Classifier, key) -> dict:
  """Fresh parameters of `module` (its `params` collection)."""
  return module.init(key, jnp.zeros((1, *module.image_shape), jnp.float32))['params']


def file_sha256(path: str) -> str:
  """The SHA-256 of a file, as hex."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def shipped(dataset: str) -> Shipped:
  """The classifier shipped for `dataset`; ConfigError naming those that exist otherwise."""
  if dataset not in SHIPPED:
    raise ConfigError(f"gan_jax ships no classifier for '{dataset}': the datasets that have one "
                      f"are {', '.join(sorted(SHIPPED))}.")
  return SHIPPED[dataset]


def load(dataset: str = 'mnist', weights_path: str | None = None,
         sha256: str | None = None) -> tuple[Classifier, dict]:
  """The classifier of `dataset` and its parameters, after verifying the weights' checksum.

  Args:
    dataset: a dataset with a shipped classifier (SHIPPED: 'mnist').
    weights_path: a weights file to use instead of the shipped one, e.g. the
      `<workdir>/weights.msgpack` of the training command (classifier_train.load_run reads a
      run's own checksum for you).
    sha256: the checksum that file must have; default: the shipped weights'.

  Returns:
    (module, params).

  Raises:
    ConfigError: no classifier is shipped for `dataset`.
    CheckpointError: the file is missing, corrupt (another SHA-256) or does not fit the module.
  """
  spec = shipped(dataset)
  path = weights_path or os.path.join(ASSETS_DIR, spec.filename)
  fix = (f'reinstall gan_jax (pip install --force-reinstall gan_jax, or restore the file from '
         f'git), or rerun `{spec.command}` and pass its weights '
         f"(classifier_train.load_run('{spec.workdir}'))")
  return spec.module, read_verified(spec.module, path, sha256 or spec.sha256, fix)


def read_verified(module: Classifier, path: str, sha256: str, fix: str) -> dict:
  """`module`'s parameters from the weights file `path`, which must have the SHA-256 `sha256`.

  Raises:
    CheckpointError: the file is missing, has another SHA-256 (corrupt), or does not fit
      `module`; the message ends with `fix`, how to restore it.
  """
  what = f'The {module.dataset} classifier weights {path}'
  if not os.path.isfile(path):
    raise CheckpointError(f'{what} are missing: {fix}.')
  actual = file_sha256(path)
  if actual != sha256:
    raise CheckpointError(f'{what} are corrupt (SHA-256 {actual[:12]}..., expected '
                          f'{sha256[:12]}...): {fix}.')
  with open(path, 'rb') as f:
    return read_params(module, f.read(), path)


def read_params(module: Classifier, raw: bytes, path: str) -> dict:
  """`module`'s parameters from flax msgpack bytes; CheckpointError if they do not fit it."""
  like = jax.eval_shape(functools.partial(init_params, module), jax.random.key(0))
  try:
    params = serialization.from_bytes(like, raw)
  except Exception as e:  # pylint: disable=broad-except  (msgpack and flax raise many kinds)
    raise CheckpointError(f'{path} holds no parameters of this classifier ({type(e).__name__}): '
                          'pass the weights.msgpack its training run wrote.') from None
  shapes = jax.tree.map(lambda a: tuple(np.shape(a)), params)
  if shapes != jax.tree.map(lambda a: a.shape, like):
    raise CheckpointError(f'{path} holds parameters of other shapes than this classifier\'s: '
                          'pass the weights.msgpack its training run wrote.')
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)


def as_images(module: Classifier, images) -> np.ndarray:
  """`images` as float32 [N, H, W, C] of `module.image_shape` (flat vectors reshaped).

  Raises:
    DataError: `images` has another shape.
  """
  images = np.asarray(images, np.float32)
  shape = tuple(module.image_shape)
  size = int(np.prod(shape))
  if images.ndim == 2 and images.shape[1] == size:
    return images.reshape(len(images), *shape)
  if images.ndim != 4 or images.shape[1:] != shape:
    h, w, c = shape
    raise DataError(f'images of shape {images.shape} but the {module.dataset} classifier takes '
                    f'{h}x{w}x{c} images, [N, {h}, {w}, {c}] (or {size}-vectors, [N, {size}]).')
  return images


@functools.partial(jax.jit, static_argnums=0)
def _apply(module: Classifier, params, images):
  return module.apply({'params': params}, images)


def features_and_logits(module: Classifier, params, images,
                        batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
  """The classifier's features (penultimate layer) and logits of `images`.

  Jitted and batched: every batch, the last one zero-padded, has `batch_size` images, so this
  compiles once per (module, batch_size).

  Args:
    module: the classifier (from `load`).
    params: its parameters.
    images: [N, H, W, C] float32 in [0, 1], or [N, H * W * C] (G's flat samples).
    batch_size: images per compiled call.

  Returns:
    (features [N, module.features] float32, logits [N, module.num_classes] float32), on the host.
  """
  images = as_images(module, images)
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}.')
  features, logits = [], []
  for start in range(0, len(images), batch_size):
    batch = images[start:start + batch_size]
    padded = np.zeros((batch_size, *batch.shape[1:]), np.float32)
    padded[:len(batch)] = batch
    f, l = jax.device_get(_apply(module, params, padded))
    features.append(f[:len(batch)])
    logits.append(l[:len(batch)])
  if not features:
    return (np.zeros((0, module.features), np.float32),
            np.zeros((0, module.num_classes), np.float32))
  return np.concatenate(features), np.concatenate(logits)
