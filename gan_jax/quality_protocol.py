"""Sample quality as GAN papers report it today, on features every user shares.

`--mode=eval --config.eval.method=sample_quality`: 10,000 samples of G (config.eval.
sample_quality) against the whole test split, in the features of the classifier shipped with
gan_jax (gan_jax.classifier: its penultimate layer; the TTUR authors advise a classifier of the
domain for MNIST, and the numbers then depend on that classifier, so it is fixed and
checksummed). Reported: FID, KID (mean +- sd over subsets), precision / recall / density /
coverage, the classifier score (the Inception Score's formula with this classifier), and
memorisation in pixel space against the training split, with the held-out test images as the
yardstick. Reference rows replace G's samples with data (`data_as_samples`): training images
(the memoriser) or validation images (held-out real data, the floor).
"""

from __future__ import annotations

import jax
import numpy as np

from gan_jax import classifier
from gan_jax import experiment
from gan_jax import metrics

NAME = 'sample_quality'
SPLITS = ('train', 'test')
# Summarised across seeds (mean and sd) in sample_quality_seeds.json.
HEADLINE = ('fid', 'kid_mean', 'precision', 'recall', 'density', 'coverage',
            'classifier_score_mean', 'memorisation_fraction_closer')
SHARED = ('n_samples', 'n_test', 'n_train', 'classifier', 'nearest_k')


def data_samples(config) -> str:
  """The split whose images replace G's samples ('' for none)."""
  return config.eval.sample_quality.data_as_samples


def samples_needed(config) -> tuple[int, str]:
  """How many samples the protocol scores, and the config field that says so."""
  return config.eval.sample_quality.num_samples, 'config.eval.sample_quality.num_samples'


def _settings(q, num_samples: int) -> metrics.SummarySettings:
  return metrics.SummarySettings(nearest_k=q.nearest_k, kid_subsets=q.kid_subsets,
                                 kid_subset_size=min(q.kid_subset_size, num_samples))


def score_samples(config, samples: np.ndarray, splits: dict, record: dict) -> dict:
  """Every metric of `samples` against the test split (memorisation against the training
  split, the test split its yardstick); `record` updated with the results."""
  q = config.eval.sample_quality
  model, params = classifier.load(q.classifier)
  test, train = splits['test'], splits['train']
  sample_features, sample_logits = classifier.features_and_logits(model, params, samples,
                                                                  q.batch_size)
  test_features, _ = classifier.features_and_logits(model, params, test, q.batch_size)
  settings = _settings(q, min(len(samples), len(test)))
  record.update(seed=q.seed, classifier=q.classifier,
                classifier_sha256=classifier.shipped(q.classifier).sha256, n_samples=len(samples),
                n_test=len(test), n_train=len(train), nearest_k=q.nearest_k,
                kid_subsets=q.kid_subsets, kid_subset_size=settings.kid_subset_size,
                memorisation_percentile=settings.percentile)
  results = metrics.summary(
      jax.random.key(q.seed), sample_features=sample_features, sample_logits=sample_logits,
      test_features=test_features, sample_pixels=samples, train_pixels=train,
      test_pixels=test, settings=settings)
  # An undefined number (e.g. the median ratio when test images sit on training images) is
  # JSON's null, not NaN, which strict JSON readers refuse.
  record.update({k: v if np.isfinite(v) else None for k, v in results.items()})
  return record


def score_generator(exp: experiment.Experiment, g_params, splits: dict, record: dict) -> dict:
  """The metrics of `num_samples` samples of G drawn with the key config.eval.sample_quality.seed
  (the same for every run and seed, so that the samples differ only by G)."""
  q = exp.config.eval.sample_quality
  samples = exp.generate(g_params, q.num_samples, jax.random.key(q.seed), q.batch_size)
  return score_samples(exp.config, samples, splits, record)


def training_estimate(exp: experiment.Experiment, g_params, valid_images: np.ndarray) -> dict:
  """A cheap signal during training: FID and KID of `train_num_samples` samples against as many
  validation images (fixed noise key, so successive values compare; FID is biased upward at
  fewer samples, so it sits above the protocol's)."""
  q = exp.config.eval.sample_quality
  model, params = classifier.load(q.classifier)
  n = min(q.train_num_samples, len(valid_images))
  samples = exp.generate(g_params, n, jax.random.key(q.seed), q.batch_size)
  sample_features, _ = classifier.features_and_logits(model, params, samples, q.batch_size)
  test_features, _ = classifier.features_and_logits(model, params, valid_images[:n],
                                                    q.batch_size)
  kid = metrics.kid(sample_features, test_features, jax.random.key(q.seed),
                    num_subsets=q.kid_subsets, subset_size=min(q.kid_subset_size, n))
  return {'fid_valid': metrics.fid(sample_features, test_features), 'kid_valid': kid.mean}


def per_seed_fields(record: dict) -> dict:
  return {k: record[k] for k in HEADLINE}


def describe(record: dict, source: str) -> str:
  """The record's result in words (the line --mode=eval prints)."""
  return (f'Sample quality of {record["n_samples"]} samples from {source} against '
          f'{record["n_test"]} test images ({record["classifier"]} classifier features): '
          f'FID {record["fid"]:.3g}, KID {record["kid_mean"]:.3g} +- {record["kid_sd"]:.2g}, '
          f'precision {record["precision"]:.3f}, recall {record["recall"]:.3f}, density '
          f'{record["density"]:.3f}, coverage {record["coverage"]:.3f}, classifier score '
          f'{record["classifier_score_mean"]:.2f}, closer to a training image than 99% of test '
          f'images: {100 * record["memorisation_fraction_closer"]:.1f}% '
          f'({record["memorisation_copies"]:.0f} exact copies)')


def describe_seeds(summary: dict, source: str, stopped: str) -> str:
  """sample_quality_seeds.json's result in words."""
  both = lambda key, f: f'{summary[key]:{f}} +- {summary["sd_" + key.removeprefix("mean_")]:{f}}'
  return (f'Sample quality over seeds {summary["seeds"]} (mean +- sd across seeds, ddof 1'
          f'{stopped}; G at {source}): FID {both("fid", ".3g")}, KID {both("kid_mean", ".3g")}, '
          f'precision {both("precision", ".3f")}, recall {both("recall", ".3f")}, coverage '
          f'{both("coverage", ".3f")}, classifier score {both("classifier_score_mean", ".2f")}')
