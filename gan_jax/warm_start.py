"""A fresh run's G started from another run's final G (`config.model.g_init_from`).

TFD's second stage puts new layers in front of the G its first stage trained: the layers both
Gs have (by name) are copied from the finished run, the others keep their fresh initialisation.
A relative `g_init_from` is a sibling of the run's workdir, so in a stage's overrides it names
an earlier stage, and config.json records the name, not a path.
"""

from __future__ import annotations

import os

from absl import logging
import jax
import numpy as np

from gan_jax import checkpoint
from gan_jax import state as state_lib
from gan_jax import workdir as workdir_lib
from gan_jax.errors import CheckpointError


def source_dir(source: str, workdir: str) -> str:
  """Resolves `model.g_init_from`: absolute, or relative to the parent of this run's workdir."""
  if os.path.isabs(source):
    return source
  return os.path.join(os.path.dirname(os.path.abspath(workdir)), source)


def finished_source(source: str, workdir: str) -> tuple[str, int]:
  """(directory, step) of the finished run `source`; raises CheckpointError if it is not one."""
  path = source_dir(source, workdir)
  recorded = workdir_lib.read_config(path)
  num_steps = None if recorded is None else recorded.train.num_steps
  step = checkpoint.finished_step(path, num_steps)
  if step is None:
    latest = checkpoint.finished_step(path, None)
    state = ('has no checkpoint' if latest is None else
             f'stopped at step {latest} of {num_steps}: rerun it to finish')
    raise CheckpointError(
        f'G starts from the final G of the run in {path} (config.model.g_init_from='
        f"'{source}'), which {state}. Train that run (stage) first.")
  return path, step


def transfer_layers(target, source):
  """Returns `target` (G params) with every layer of `source` copied in by name.

  Raises:
    CheckpointError: a layer of `source` is missing from `target` or has other shapes.
  """
  target_layers, source_layers = target['params'], source['params']
  out = dict(target_layers)
  for name, layer in source_layers.items():
    if name not in target_layers:
      raise CheckpointError(
          f"The pretrained G's layer '{name}' has no counterpart in this G (layers "
          f'{sorted(target_layers)}): the shared layers must keep their names.')
    want = jax.tree.map(np.shape, target_layers[name])
    got = jax.tree.map(np.shape, layer)
    if want != got:
      raise CheckpointError(
          f"The pretrained G's layer '{name}' ({got}) does not fit this G (its layer '{name}': "
          f'{want}): the shared layers must have the same widths in both stages.')
    out[name] = jax.tree.map(np.asarray, layer)
  return {**target, 'params': out}


def init_generator_from(exp, state, source: str, workdir: str):
  """Initialises G's parameters (and its optimiser) from the final G of the run `source`.

  Layers present in both Gs are copied from the source; the others (e.g. TFD's pre0, pre1) keep
  their fresh initialisation. D is not touched.
  """
  path, step = finished_source(source, workdir)
  with checkpoint.Checkpointer(os.path.join(path, 'checkpoints'), read_only=True) as ckpt:
    source_params, _ = ckpt.restore_params('g_params', step)
  g_params = transfer_layers(jax.device_get(state.g_params), source_params)
  copied = sorted(source_params['params'])
  logging.info("G's layers %s start from step %d of %s; %s are new.", copied, step, path,
               sorted(set(g_params['params']) - set(copied)))
  state = state.replace(g_params=g_params, g_opt_state=exp.tx.init(g_params))
  if state.g_ema_params is not None:  # The EMA of G starts at the G training starts from.
    state = state_lib.with_g_ema(state.replace(g_ema_params=None), True)
  return jax.device_put(state, exp.replicated)
