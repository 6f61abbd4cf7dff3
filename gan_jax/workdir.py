"""The workdir is the run: its config.json says which run it holds."""

from __future__ import annotations

import json
import os

from gan_jax import writers
from gan_jax.errors import WorkdirError

# Fields that may change between launches of the same run: how long and how often, not what.
RESUMABLE_CHANGES = (
    'train.num_steps', 'train.log_every', 'train.checkpoint_every', 'train.sample_every',
    'train.steps_per_call', 'train.keep_checkpoints', 'eval.every', 'data.data_dir',
    'data.manual_dir', 'data.allow_download',
)


# Fields added after runs were first written, with the value that behaves as their absence did:
# a config.json without the field holds the same run as a config with this value.
ADDED_FIELDS = {
    'data.idx_dir': '',             # '' = read through TFDS, as before the IDX reader existed.
    'model.compute_dtype': 'float32',
    'train.g_ema_decay': 0.0,       # 0 = no EMA of G, as before it existed.
}


def _flatten(d: dict, prefix: str = '') -> dict:
  out = {}
  for k, v in d.items():
    key = f'{prefix}{k}'
    if isinstance(v, dict):
      out.update(_flatten(v, key + '.'))
    else:
      out[key] = list(v) if isinstance(v, tuple) else v
  return out


def config_dict(config) -> dict:
  return json.loads(json.dumps(config.to_dict(), default=list))


def differences(old: dict, new: dict) -> list[str]:
  """Fields (dotted) whose values differ, ignoring RESUMABLE_CHANGES and eval.parzen.*.

  A field of ADDED_FIELDS missing on one side counts as holding its neutral value there.
  """
  a, b = _flatten(old), _flatten(new)
  for key, neutral in ADDED_FIELDS.items():
    for side in (a, b):
      side.setdefault(key, neutral)
  keys = sorted(set(a) | set(b))
  return [k for k in keys if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES
          and not k.startswith('eval.parzen.')]


def _has_checkpoints(workdir: str) -> bool:
  ckpts = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(ckpts) and any(name.isdigit() for name in os.listdir(ckpts))


def prepare(workdir: str, config, write: bool = True, allow_new_config: bool = False) -> None:
  """Creates `workdir` (or checks the run in it) and writes config.json.

  Raises:
    WorkdirError: `workdir` is a file or not writable, or it holds a run of a different config
      (unless `allow_new_config`).
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f'--workdir {workdir} is a file, not a directory: choose another path.')
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f'Cannot create --workdir {workdir} ({e.strerror}): choose a writable '
                       'path.') from None
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise WorkdirError(f'--workdir {workdir} is not writable: choose a writable path.')
  path = os.path.join(workdir, 'config.json')
  new = config_dict(config)
  if os.path.exists(path) and _has_checkpoints(workdir):  # A run that never saved holds nothing.
    with open(path) as f:
      old = json.load(f)
    diff = differences(old, new)
    if diff and not allow_new_config:
      shown = ', '.join(f'{k}: {_flatten(old).get(k)!r} -> {_flatten(new).get(k)!r}'
                        for k in diff[:3])
      raise WorkdirError(
          f'--workdir {workdir} holds a run with a different config ({shown}'
          f'{", ..." if len(diff) > 3 else ""}): use a new --workdir, or pass '
          '--allow_config_change to resume it with the new config.')
  if write:
    writers.write_json(path, new, indent=2, sort_keys=True)
