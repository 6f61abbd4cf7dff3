"""What launch.py calls: train, evaluate, draw figures; the single-stage vs staged choice.

A config with task='classifier' (experiments/mnist_classifier.py) is the feature classifier of
the sample-quality metrics, not a GAN: gan_jax.classifier_train runs it.

A multi-stage experiment (a config with `stages`, e.g. experiments/tfd.py) trains one ordinary
run per stage (gan_jax.stages); evaluation and figures use the run that holds its final G.
"""

from __future__ import annotations

from gan_jax import classifier_train
from gan_jax import evaluation
from gan_jax import figures
from gan_jax import stages
from gan_jax import train


def train_and_evaluate(config, workdir: str, allow_config_change: bool = False) -> dict:
  """Trains (resuming from the newest checkpoint in `workdir`); returns the last metrics.

  Args:
    config: the experiment config.
    workdir: the run's directory (created if needed); a staged experiment's stages live in
      `<workdir>/<stage>`.
    allow_config_change: resume a run whose config.json differs in more than its length and
      cadence fields.
  """
  if _is_classifier(config):
    return classifier_train.train(config, workdir)
  if stages.is_staged(config):
    return stages.train_stages(config, workdir, allow_config_change)
  return train.train(config, workdir, allow_config_change)


def evaluate(config, workdir: str, step: int | None = None) -> dict:
  """Runs config.eval.method's protocol (the paper's Parzen protocol by default, AIS, sample
  quality) on a checkpoint in `workdir` (default: the newest)."""
  if _is_classifier(config):
    return classifier_train.evaluate(config, workdir, step)
  config, workdir = stages.final_stage(config, workdir)
  return evaluation.evaluate(config, workdir, step)


def make_figures(config, workdir: str, step: int | None = None) -> list[str]:
  """Writes the paper's figures for the run in `workdir` into `workdir/figures`."""
  if _is_classifier(config):
    return classifier_train.make_figures(config, workdir, step)
  config, workdir = stages.final_stage(config, workdir)
  return figures.make_figures(config, workdir, step)


def _is_classifier(config) -> bool:
  return config.get('task', 'gan') == 'classifier'
