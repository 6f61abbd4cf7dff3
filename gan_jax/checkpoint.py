"""Checkpoints of the GANState with orbax: save every N steps, keep the last few, resume.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a run
killed mid-save leaves no checkpoint that looks finished. A checkpoint that is finished but
unreadable (a damaged disk, a file removed by hand) is skipped with a warning and the previous
one used.

The state is saved as a dict of its fields without the None ones (state.to_tree), and restored
into the fields the checkpoint holds: a checkpoint with an EMA of G restores with it, one
without (every checkpoint written before the EMA existed) without it, whatever the target has.
"""

from __future__ import annotations

import os

from absl import logging
from etils import epath
import jax
import orbax.checkpoint as ocp

from gan_jax import state as state_lib
from gan_jax.errors import CheckpointError


class Checkpointer:
  """A thin wrapper around `ocp.CheckpointManager` for one pytree state."""

  def __init__(self, directory: str, max_to_keep: int = 3, read_only: bool = False):
    self.directory = os.path.abspath(directory)  # orbax needs absolute paths.
    self.host = {}  # The `host` dict of the checkpoint restored last.
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=None if read_only else max_to_keep,
                                             create=not read_only, read_only=read_only))

  def save(self, step: int, state, host: dict | None = None, force: bool = False) -> None:
    """Saves (asynchronously) unless this step is already saved.

    Args:
      step: the step number naming the checkpoint.
      state: the GANState.
      host: a small JSON-able dict saved beside it (the metrics not yet logged), so a resumed
        run logs exactly what the uninterrupted one would.
      force: save even if the manager's policy would skip this step.
    """
    if step in self.manager.all_steps():
      return
    state = state_lib.to_tree(state)
    if jax.process_count() > 1:
      # pmap returns replicated arrays local to each process; orbax writes global ones.
      state = jax.tree.map(ocp.utils.fully_replicated_host_local_array_to_global_array, state)
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), host=ocp.args.JsonSave(host or {})), force=force)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def saved_fields(self, step: int) -> set[str]:
    """The GANState fields the checkpoint at `step` holds (read from its metadata only)."""
    path = epath.Path(self.directory) / str(step) / 'state'
    return set(ocp.PyTreeCheckpointHandler().metadata(path).tree)

  def restore_latest(self, target):
    """Restores the newest readable checkpoint into `target`'s structure, shapes and shardings.

    Args:
      target: a state with the expected structure (e.g. the freshly initialised one). Its
        EMA of G, present or not, does not matter: the restored state has one iff the
        checkpoint has (callers decide what to do with a difference).

    Returns:
      (state, step), or (None, None) if there is no checkpoint.

    Raises:
      CheckpointError: checkpoints exist but none is readable, or they hold another model.
    """
    steps = sorted(self.manager.all_steps(), reverse=True)
    if not steps:
      return None, None
    errors = []
    for step in steps:
      try:
        return self._restore(step, target), step
      except Exception as e:  # pylint: disable=broad-except  (orbax raises many kinds)
        message = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        errors.append((step, message))
        if _is_mismatch(message):
          raise CheckpointError(
              f'The checkpoint at step {step} in {self.directory} does not fit this model '
              f'({message}). Use a new --workdir, or the config the run was made with.') from e
        logging.warning('Checkpoint at step %d in %s is unreadable (%s); trying an older one.',
                        step, self.directory, message)
    raise CheckpointError(
        f'No readable checkpoint in {self.directory} (tried steps {[s for s, _ in errors]}; '
        f'newest error: {errors[0][1]}). Move the directory away to start afresh.')

  def restore(self, target, step: int | None = None):
    """Restores `step` (default: the newest readable), as `restore_latest` does.

    Raises:
      CheckpointError: there is no such checkpoint.
    """
    if step is None:
      state, found = self.restore_latest(target)
      if state is None:
        raise CheckpointError(f'No checkpoint in {self.directory}: train first (--mode=train) '
                              'or point --workdir at a trained run.')
      return state, found
    if step not in self.manager.all_steps():
      raise CheckpointError(f'No checkpoint at step {step} in {self.directory}; it has '
                            f'{sorted(self.manager.all_steps())}.')
    return self._restore(step, target), step

  def _restore(self, step, target):
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_lib.to_tree(target))
    # The EMA of G, if the checkpoint has one, has G's shapes and shardings.
    if 'g_ema_params' in self.saved_fields(step):
      abstract['g_ema_params'] = abstract['g_params']
    else:
      abstract.pop('g_ema_params', None)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), host=ocp.args.JsonRestore()))
    self.host = dict(restored.host or {})
    return state_lib.from_tree(restored.state)

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def _is_mismatch(message: str) -> bool:
  lowered = message.lower()
  return any(w in lowered for w in ('shape', 'structure', 'dtype', 'mismatch', 'missing key',
                                    'does not match', 'tree'))
