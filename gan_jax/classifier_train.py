"""Trains and evaluates the feature classifier (gan_jax.classifier) as a run in a workdir.

What launch.py runs for a config with task='classifier' (experiments/mnist_classifier.py):
`train` writes the run (config.json, metrics.jsonl, weights.msgpack, weights.json), `evaluate`
reports the test accuracy of its weights and whether they are the shipped ones.

Deterministic: the parameters start from jax.random.key(config.seed) and the minibatches follow a
permutation per epoch drawn from (seed, epoch) (gan_jax.data.EpochSampler); nothing else is
random (no dropout, no augmentation). The same command on the same machine gives the same bytes.
Steps are one jitted call each from a Python loop, not a lax.scan: XLA:CPU runs convolutions
inside a loop body ~25x slower.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import re
import time
from typing import Callable

from absl import logging
import flax
from flax import serialization
import jax
import jax.numpy as jnp
import jaxlib
import ml_collections
import numpy as np
import optax

from gan_jax import classifier
from gan_jax import data
from gan_jax import workdir as workdir_lib
from gan_jax import writers
from gan_jax.errors import ConfigError
from gan_jax.errors import DataError
from gan_jax.errors import WorkdirError

WEIGHTS = 'weights.msgpack'
RECORD = 'weights.json'  # Written last: its presence marks a finished run.
EVAL = 'eval.json'
DATASETS = ('mnist',)  # Those with labels gan_jax reads (see `_labels`).
# Fields that do not change what a run computes: a finished run's config may differ in them.
NEUTRAL_FIELDS = ('train.retrain', 'train.eval_batch_size', 'data.data_dir', 'data.manual_dir',
                  'data.allow_download')
_SPLIT_RE = re.compile(r'^(train|test)(?:\[(-?\d*):(-?\d*)\])?$')  # As gan_jax.data's.
_LABEL_FILES = {'train': 'train-labels-idx1-ubyte.gz', 'test': 't10k-labels-idx1-ubyte.gz'}


@dataclasses.dataclass(frozen=True)
class Labelled:
  """Images [N, H, W, C] float32 and their class labels [N] int32."""
  images: np.ndarray
  labels: np.ndarray


def check_config(config) -> None:
  """ConfigError, before anything heavy starts, for a config no classifier run can use."""
  if config.data.name not in DATASETS:
    raise ConfigError(f"config.data.name='{config.data.name}': the classifier trains on "
                      f"{', '.join(DATASETS)} only.")
  m, t = config.model, config.train
  if not m.conv_channels or min(m.conv_channels) < 1 or m.features < 1:
    raise ConfigError(f'config.model.conv_channels={tuple(m.conv_channels)} and '
                      f'config.model.features={m.features} must be positive (and at least one '
                      'conv layer).')
  for name in ('batch_size', 'epochs', 'eval_batch_size'):
    if t[name] < 1:
      raise ConfigError(f'config.train.{name} must be a positive integer, got {t[name]}.')
  if not t.learning_rate > 0:
    raise ConfigError(f'config.train.learning_rate must be positive, got {t.learning_rate}.')


def build_model(config, image_shape) -> classifier.Classifier:
  """The classifier `config.model` describes, for images of shape `image_shape` (H, W, C)."""
  return classifier.Classifier(conv_channels=tuple(config.model.conv_channels),
                               features=config.model.features, num_classes=10,
                               image_shape=tuple(int(d) for d in image_shape),
                               dataset=config.data.name)


def _labels(data_config, split: str) -> np.ndarray:
  """The labels of `split`, in the order of gan_jax.data.load_split's images."""
  if data_config.idx_dir:
    # data._idx_split has read the images of this split (and checked its syntax): the same
    # slice of the labels file.
    name, start, stop = _SPLIT_RE.match(split.replace(' ', '')).groups()
    labels = data.read_idx(os.path.join(data_config.idx_dir, _LABEL_FILES[name]))
    return labels[int(start) if start else None:int(stop) if stop else None].astype(np.int32)
  # TensorFlow is heavy: imported only when data is read (as gan_jax.data does).
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder = tfds.builder(data.DATASETS[data_config.name].tfds_name,
                         data_dir=data_config.data_dir or None)
  # The images are not decoded again: data.load_split has read them, in this same order.
  ds = builder.as_dataset(split=split, batch_size=10_000,
                          decoders={'image': tfds.decode.SkipDecoding()})
  return np.concatenate([b['label'] for b in tfds.as_numpy(ds)]).astype(np.int32)


def load_labelled(data_config, which=('train', 'valid', 'test')) -> dict[str, Labelled]:
  """gan_jax.data.load_splits' images of the named splits, with their labels."""
  images = data.load_splits(data_config, which)
  out = {}
  for w in which:
    labels = _labels(data_config, data_config[f'{w}_split'])
    if len(labels) != len(images[w]):
      raise DataError(f"Split '{data_config[f'{w}_split']}' has {len(images[w])} images but "
                      f'{len(labels)} labels: prepare the dataset again.')
    out[w] = Labelled(images[w], labels)
  return out


def accuracy(module, params, split: Labelled, batch_size: int = 1000) -> float:
  """The fraction of `split` whose most likely class is its label."""
  _, logits = classifier.features_and_logits(module, params, split.images, batch_size)
  return float(np.mean(np.argmax(logits, axis=1) == split.labels))


@dataclasses.dataclass(frozen=True)
class _Recipe:
  """A training step's static argument: the module and the learning-rate schedule.

  Hashable, so runs of one recipe in a process share the step's compilation.
  """
  module: classifier.Classifier
  learning_rate: float
  total_steps: int

  def optimizer(self) -> optax.GradientTransformation:
    return optax.adam(optax.cosine_decay_schedule(self.learning_rate, self.total_steps))


@functools.partial(jax.jit, static_argnums=0)
def _train_step(recipe: _Recipe, params, opt_state, images, labels, indices):
  def loss_fn(p):
    _, logits = recipe.module.apply({'params': p}, images[indices])
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels[indices]).mean()

  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = recipe.optimizer().update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


def fit(config, train: Labelled, *, num_steps: int | None = None,
        on_epoch: Callable[[int, dict, dict], None] | None = None) -> dict:
  """Trains the classifier of `config` on `train`; returns its parameters.

  Args:
    config: a classifier config (experiments/mnist_classifier.py).
    train: the training split.
    num_steps: stop after this many steps (default: config.train.epochs epochs). The learning
      rate schedule is the whole run's either way, so these are the recipe's first steps.
    on_epoch: called after each epoch (and after the last, partial one) with
      (step, {'epoch', 'train_loss'}, params).
  """
  t = config.train
  module = build_model(config, train.images.shape[1:])
  sampler = data.EpochSampler(len(train.images), t.batch_size, config.seed)
  total = t.epochs * sampler.per_epoch
  num_steps = total if num_steps is None else min(num_steps, total)
  recipe = _Recipe(module, float(t.learning_rate), total)
  params = classifier.init_params(module, jax.random.key(config.seed))
  opt_state = recipe.optimizer().init(params)
  images, labels = jax.device_put(train.images), jax.device_put(train.labels)
  step = 0
  while step < num_steps:
    epoch = step // sampler.per_epoch
    losses = []
    for _ in range(min(sampler.per_epoch * (epoch + 1), num_steps) - step):
      params, opt_state, loss = _train_step(recipe, params, opt_state, images, labels,
                                            sampler.indices(step, 1)[0])
      losses.append(loss)
      step += 1
    if on_epoch is not None:
      on_epoch(step, {'epoch': epoch + 1, 'train_loss': float(jnp.mean(jnp.stack(losses)))},
               params)
  return params


def _flat(d: dict, prefix: str = '') -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def _read_json(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _check_workdir(config, workdir: str) -> dict | None:
  """The record (weights.json) of a finished run of `config` in `workdir`, or None if none is.

  Raises:
    WorkdirError: `workdir` holds a GAN run, or a finished classifier run of another config.
  """
  old = _read_json(os.path.join(workdir, 'config.json'))
  if old is None:
    return None
  if old.get('task', 'gan') != 'classifier':
    raise WorkdirError(f"--workdir {workdir} holds a GAN run, not a classifier's: use a new "
                       '--workdir.')
  record = _read_json(os.path.join(workdir, RECORD))
  if record is None:
    return None
  a, b = _flat(old), _flat(workdir_lib.config_dict(config))
  diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and k not in NEUTRAL_FIELDS]
  if diff:
    shown = ', '.join(f'{k}: {a.get(k)!r} -> {b.get(k)!r}' for k in diff[:3])
    raise WorkdirError(f'--workdir {workdir} holds a finished classifier run of another config '
                       f'({shown}): use a new --workdir, or --config.train.retrain=True to '
                       'replace it.')
  return record


def train(config, workdir: str) -> dict:
  """Trains the classifier as a run in `workdir`; returns its record (weights.json's dict).

  A workdir that already holds the finished run of this config is left as it is (its record is
  returned) unless config.train.retrain; an unfinished one is trained again from the start.
  """
  check_config(config)
  record = _check_workdir(config, workdir)
  weights_path = os.path.join(workdir, WEIGHTS)
  if record is not None and not config.train.retrain:
    logging.info('%s already holds the trained classifier: its weights are %s (SHA-256 %s, test '
                 'accuracy %.2f%%); --config.train.retrain=True trains again over them.',
                 workdir, weights_path, record['sha256'], 100 * record['test_accuracy'])
    return record
  workdir_lib.prepare(workdir, config)
  for name in (RECORD, EVAL, 'metrics.jsonl'):  # A new run: nothing of an older one is kept.
    if os.path.exists(os.path.join(workdir, name)):
      os.remove(os.path.join(workdir, name))
  splits = load_labelled(config.data)
  module = build_model(config, splits['train'].images.shape[1:])
  num_params = sum(a.size for a in jax.tree.leaves(classifier.init_params(
      module, jax.random.key(0))))
  logging.info('Classifier: 5x5 convs of %s channels, %d features, %d classes: %d parameters; '
               '%d training images.', module.conv_channels, module.features, module.num_classes,
               num_params, len(splits['train'].images))
  start = time.time()
  batch_size = config.train.eval_batch_size
  with writers.MetricWriter(workdir, tensorboard=False) as metric_writer:
    def log_epoch(step, metrics, params):
      metrics['valid_accuracy'] = accuracy(module, params, splits['valid'], batch_size)
      metrics['seconds'] = time.time() - start
      metric_writer.write(step, metrics)
      logging.info('epoch %d/%d (step %d): train loss %.4f, valid accuracy %.2f%%, %.0f s',
                   metrics['epoch'], config.train.epochs, step, metrics['train_loss'],
                   100 * metrics['valid_accuracy'], metrics['seconds'])

    params = fit(config, splits['train'], on_epoch=log_epoch)
  seconds = time.time() - start
  raw = serialization.to_bytes(jax.device_get(params))
  writers.atomic_write(weights_path, lambda f: f.write(raw), binary=True)
  record = {
      'weights': WEIGHTS,
      'sha256': classifier.file_sha256(weights_path),
      'bytes': len(raw),
      'image_shape': list(module.image_shape),
      'valid_accuracy': accuracy(module, params, splits['valid'], batch_size),
      'test_accuracy': accuracy(module, params, splits['test'], batch_size),
      'train_seconds': seconds,
      'versions': _versions(),
  }
  writers.write_json(os.path.join(workdir, RECORD), record, indent=2)
  logging.info('Trained in %.0f s: valid accuracy %.2f%%, test accuracy %.2f%%; weights %s '
               '(SHA-256 %s).', seconds, 100 * record['valid_accuracy'],
               100 * record['test_accuracy'], weights_path, record['sha256'])
  return record


def _versions() -> dict:
  return {'jax': jax.__version__, 'jaxlib': jaxlib.__version__, 'flax': flax.__version__,
          'optax': optax.__version__, 'numpy': np.__version__,
          'device': jax.devices()[0].device_kind, 'machine': platform.machine(),
          'cpu': _cpu_model()}


def _cpu_model() -> str:
  """The CPU's name (XLA:CPU's kernels, hence the weights' last bits, depend on it)."""
  try:
    with open('/proc/cpuinfo') as f:
      names = [l.split(':', 1)[1].strip() for l in f if l.startswith('model name')]
  except OSError:
    names = []
  return names[0] if names else platform.processor()


def load_run(workdir: str) -> tuple[classifier.Classifier, dict]:
  """The classifier trained in `workdir`: (module, params), checked against its weights.json."""
  config_json = _read_json(os.path.join(workdir, 'config.json'))
  record = _read_json(os.path.join(workdir, RECORD))
  if config_json is None or record is None or config_json.get('task') != 'classifier':
    raise WorkdirError(f'--workdir {workdir} holds no trained classifier: train one there first '
                       f'(--mode=train), e.g. `{classifier.TRAIN_COMMAND}`.')
  module = build_model(ml_collections.ConfigDict(config_json), record['image_shape'])
  fix = ('train it again: the same launch.py command with --mode=train '
         '--config.train.retrain=True')
  return module, classifier.read_verified(module, os.path.join(workdir, WEIGHTS),
                                          record['sha256'], fix)


def evaluate(config, workdir: str, step: int | None = None) -> dict:
  """The accuracy of the weights trained in `workdir`, and how they compare with the shipped ones.

  Writes `<workdir>/eval.json`: valid and test accuracy, the weights' SHA-256, whether it is the
  shipped weights' and, if not, on how many test images the two classifiers agree and how far
  their features are apart. The architecture is the run's own (its config.json); `config` says
  where the data is.
  """
  check_config(config)
  if step is not None:
    raise ConfigError(f'--step={step}: a classifier run has no checkpoints, only its final '
                      'weights: drop --step.')
  module, params = load_run(workdir)
  splits = load_labelled(config.data, ('valid', 'test'))
  batch_size = config.train.eval_batch_size
  features, logits = classifier.features_and_logits(module, params, splits['test'].images,
                                                    batch_size)
  result = {
      'sha256': classifier.file_sha256(os.path.join(workdir, WEIGHTS)),
      'valid_accuracy': accuracy(module, params, splits['valid'], batch_size),
      'test_accuracy': float(np.mean(np.argmax(logits, axis=1) == splits['test'].labels)),
  }
  logging.info('%s: test accuracy %.2f%%, valid accuracy %.2f%% (weights SHA-256 %s).', workdir,
               100 * result['test_accuracy'], 100 * result['valid_accuracy'], result['sha256'])
  if config.data.name in classifier.SHIPPED:
    result.update(_against_shipped(config.data.name, result['sha256'], module,
                                   (features, logits), splits['test'].images))
  writers.write_json(os.path.join(workdir, EVAL), result, indent=2)
  return result


def _against_shipped(dataset: str, sha256: str, module, outputs, images) -> dict:
  """How the run's classifier compares with the one shipped for `dataset`."""
  spec = classifier.SHIPPED[dataset]
  if sha256 == spec.sha256:
    logging.info('These are the shipped %s classifier weights, bit for bit.', dataset)
    return {'same_as_shipped': True}
  out = {'same_as_shipped': False}
  if _architecture(module) != _architecture(spec.module):
    logging.info('Not the shipped %s classifier (another architecture).', dataset)
    return out
  shipped_module, shipped_params = classifier.load(dataset)
  features, logits = classifier.features_and_logits(shipped_module, shipped_params, images)
  out['prediction_agreement'] = float(np.mean(np.argmax(logits, 1) == np.argmax(outputs[1], 1)))
  out['max_feature_difference'] = float(np.max(np.abs(features - outputs[0])))
  logging.info('Not the shipped %s classifier weights: the two agree on %.2f%% of the test '
               'images; their features differ by up to %.3g.', dataset,
               100 * out['prediction_agreement'], out['max_feature_difference'])
  return out


def _architecture(module) -> tuple:
  return (tuple(module.conv_channels), module.features, module.num_classes,
          tuple(module.image_shape))


def make_figures(config, workdir: str, step: int | None = None) -> list[str]:
  """A classifier run has no figures: ConfigError."""
  del config, workdir, step
  raise ConfigError('A classifier run has no figures: use --mode=train or --mode=eval.')
