"""Checkpoints of the GANState with orbax: the only module of gan_jax that touches orbax.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a run
killed mid-save leaves no checkpoint that looks finished. A checkpoint that is finished but
unreadable (a damaged disk, a file removed by hand) is skipped with a warning and the previous
one used.

A checkpoint holds two items: 'state', the GANState as a dict of its fields without the None
ones (state.to_tree), restored into the fields the checkpoint holds (one with an EMA of G
restores with it, one written before the EMA existed without it, whatever the target has); and
'host', a small JSON record of the loop's own (the per-step metrics not yet logged when it was
saved, so that a resumed run logs exactly what the uninterrupted one would; the seeds stopped).
"""

from __future__ import annotations

import os

from absl import logging
from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import state as state_lib
from gan_jax.errors import CheckpointError

# Words in orbax's messages when a checkpoint holds another model (not a damaged file).
_MISMATCH_WORDS = ('shape', 'structure', 'dtype', 'mismatch', 'missing key', 'does not match',
                   'tree')


def no_checkpoint_error(directory: str, step: int | None = None,
                        steps: list[int] | None = None) -> CheckpointError:
  """The one error for a missing checkpoint (any, or the one at `step` among `steps`)."""
  if step is not None and steps:
    return CheckpointError(f'No checkpoint at step {step} in {directory}; it has {steps}.')
  return CheckpointError(f'No checkpoints in {directory}: train first (--mode=train), or point '
                         '--workdir at a trained run.')


class Checkpointer:
  """The checkpoints of one run: save every N steps, keep the last few, restore, resume."""

  def __init__(self, directory: str, max_to_keep: int = 3, read_only: bool = False):
    self.directory = os.path.abspath(directory)  # orbax needs absolute paths.
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=None if read_only else max_to_keep,
                                             create=not read_only, read_only=read_only))

  @classmethod
  def of_run(cls, workdir: str) -> Checkpointer:
    """The run's checkpoints, read-only (evaluation never prunes a run); an error if none."""
    directory = os.path.join(workdir, 'checkpoints')
    if not os.path.isdir(directory):
      raise no_checkpoint_error(os.path.abspath(workdir))
    return cls(directory, read_only=True)

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def steps(self) -> list[int]:
    """The steps of the finished checkpoints, in increasing order."""
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, host: dict | None = None, force: bool = False) -> None:
    """Saves (asynchronously) unless this step is already saved.

    Args:
      step: the step number naming the checkpoint.
      state: the GANState.
      host: the loop's JSON-able record for an exact resume ({'pending': metrics not yet
        logged, ...}).
      force: save even if the manager's policy would skip this step.
    """
    if step in self._manager.all_steps():
      return
    state = state_lib.to_tree(state)
    if jax.process_count() > 1:
      # pmap returns replicated arrays local to each process; orbax writes global ones.
      state = jax.tree.map(ocp.utils.fully_replicated_host_local_array_to_global_array, state)
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        host=ocp.args.JsonSave(host or {'pending': {}})), force=force)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def saved_fields(self, step: int) -> set[str]:
    """The GANState fields the checkpoint at `step` holds (read from its metadata only)."""
    return set(self._state_metadata(step))

  def host_record(self, step: int) -> dict:
    """The loop's record saved with the checkpoint at `step` (see `save`)."""
    restored = self._manager.restore(step, args=ocp.args.Composite(host=ocp.args.JsonRestore()))
    return dict(restored.host or {})

  def restore_latest(self, target):
    """Restores the newest readable checkpoint into `target`'s structure, shapes and shardings.

    Args:
      target: a state with the expected structure (e.g. the freshly initialised one). Its EMA
        of G, present or not, does not matter: the restored state has one iff the checkpoint
        has (callers decide what to do with a difference).

    Returns:
      (state, step), or (None, None) if there is no checkpoint.

    Raises:
      CheckpointError: checkpoints exist but none is readable, or they hold another model.
    """
    steps = self.steps()[::-1]
    if not steps:
      return None, None
    return self._newest_readable(steps, lambda s: self._restore_state(s, target))

  def restore(self, target, step: int | None = None):
    """(state, step) of checkpoint `step` (default: the newest readable), as `restore_latest`.

    Raises:
      CheckpointError: there is no such checkpoint.
    """
    if step is None:
      state, found = self.restore_latest(target)
      if state is None:
        raise no_checkpoint_error(self.directory)
      return state, found
    self._check_exists(step)
    return self._restore_state(step, target), step

  def restore_params(self, field: str = 'g_params', step: int | None = None, like=None):
    """One field of the state (e.g. G's parameters) as NumPy arrays, without the rest.

    Reads only that field (a partial restore), whatever devices the run used.

    Args:
      field: the GANState field, e.g. 'g_params' or 'g_ema_params'.
      step: the checkpoint (default: the newest readable).
      like: the parameters the model expects (arrays or jax.ShapeDtypeStruct, e.g.
        Experiment.g_shapes()): the checkpoint's must have their structure and shapes. None
        checks nothing (the caller compares, e.g. by layer).

    Returns:
      (params, step).

    Raises:
      CheckpointError: no such checkpoint, it has no `field` (e.g. no EMA of G), or its
        `field` does not fit `like` (another model).
    """
    if step is None:
      steps = self.steps()[::-1]
      if not steps:
        raise no_checkpoint_error(self.directory)
      return self._newest_readable(steps, lambda s: self._restore_field(s, field, like))
    self._check_exists(step)
    return self._restore_field(step, field, like), step

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def _check_exists(self, step: int) -> None:
    if step not in self._manager.all_steps():
      raise no_checkpoint_error(self.directory, step, self.steps())

  def _state_path(self, step: int) -> epath.Path:
    """Where the state of checkpoint `step` lies: item 'state', or (the earliest layout, the
    state as the checkpoint's single item) the step's folder itself."""
    path = epath.Path(self.directory) / str(step)
    return path / 'state' if (path / 'state').is_dir() else path

  def _state_metadata(self, step: int) -> dict:
    return ocp.PyTreeCheckpointHandler().metadata(self._state_path(step)).tree

  def _newest_readable(self, steps: list[int], restore):
    """(restore(step), step) for the first step of `steps` that restores."""
    errors = []
    for step in steps:
      try:
        return restore(step), step
      except CheckpointError:
        raise
      except Exception as e:  # pylint: disable=broad-except  (orbax raises many kinds)
        message = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        errors.append((step, message))
        if any(w in message.lower() for w in _MISMATCH_WORDS):
          raise CheckpointError(
              f'The checkpoint at step {step} in {self.directory} does not fit this model '
              f'({message}). Use a new --workdir, or the config the run was made with.') from e
        logging.warning('Checkpoint at step %d in %s is unreadable (%s); trying an older one.',
                        step, self.directory, message)
    raise CheckpointError(
        f'No readable checkpoint in {self.directory} (tried steps {[s for s, _ in errors]}; '
        f'newest error: {errors[0][1]}). Move the directory away to start afresh.')

  def _restore_state(self, step: int, target):
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_lib.to_tree(target))
    # The EMA of G, if the checkpoint has one, has G's shapes and shardings.
    if 'g_ema_params' in self.saved_fields(step):
      abstract['g_ema_params'] = abstract['g_params']
    else:
      abstract.pop('g_ema_params', None)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract)))
    return state_lib.from_tree(restored.state)

  def _restore_field(self, step: int, field: str, like):
    tree = self._state_metadata(step)
    if field not in tree:
      raise CheckpointError(f'The checkpoint at step {step} in {self.directory} has no '
                            f'{field} (it holds {sorted(tree)}).')
    if like is not None:
      self._check_fits(step, field, tree[field], like)
    target = {field: jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), tree[field])}
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
    args = ocp.args.PyTreeRestore(target, restore_args=restore_args, partial_restore=True)
    with ocp.PyTreeCheckpointer() as reader:
      return reader.restore(self._state_path(step), args=args)[field]

  def _check_fits(self, step: int, field: str, metadata, like) -> None:
    saved = jax.tree_util.tree_map_with_path(lambda p, m: (jax.tree_util.keystr(p), m.shape),
                                             metadata)
    wanted = jax.tree_util.tree_map_with_path(
        lambda p, x: (jax.tree_util.keystr(p), tuple(np.shape(x))), like)
    saved, wanted = sorted(jax.tree.leaves(saved, is_leaf=_is_pair)), sorted(
        jax.tree.leaves(wanted, is_leaf=_is_pair))
    if saved != wanted:
      diff = sorted(set(saved) ^ set(wanted))[:2]
      raise CheckpointError(
          f'The checkpoint at step {step} in {self.directory} does not fit this model '
          f'({field}: {diff} differ). Use a new --workdir, or the config the run was made with.')


def _is_pair(x) -> bool:
  return isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str)


def finished_step(run_dir: str, num_steps: int | None) -> int | None:
  """The newest checkpoint step of the run in `run_dir` if it has reached `num_steps` (None:
  any step), else None (also when it has no checkpoint)."""
  directory = os.path.join(run_dir, 'checkpoints')
  if not os.path.isdir(directory):
    return None
  ckpt = Checkpointer(directory, read_only=True)
  try:
    step = ckpt.latest_step()
  finally:
    ckpt.close()
  if step is None or (num_steps is not None and step < num_steps):
    return None
  return step
