"""The workdir is the run: its config.json says which run it holds."""

from __future__ import annotations

import dataclasses
import json
import os

import ml_collections

from gan_jax import config as config_lib
from gan_jax import writers
from gan_jax.errors import WorkdirError

# Fields that may change between launches of the same run: how long and how often, not what.
RESUMABLE_CHANGES = (
    'train.num_steps', 'train.log_every', 'train.checkpoint_every', 'train.sample_every',
    'train.steps_per_call', 'train.member_axis', 'train.keep_checkpoints', 'data.data_dir',
    'data.manual_dir', 'data.allow_download',
)

# Fields no run can change on resume, not even with --allow_config_change: they shape the state.
FIXED_FIELDS = ('num_seeds', 'sweep.field', 'sweep.grid')


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
  """Fields (dotted) whose values differ, ignoring RESUMABLE_CHANGES and eval.*.

  eval.* says what is measured (after training, or logged during it), never what is trained, so
  a run resumes under another evaluation setting or default (e.g. eval.modes.num_samples).

  Both sides are upgraded to the full schema first (gan_jax.config.upgrade): a field missing on
  one side (a run written before the field existed) counts as holding its default there, which
  behaves as its absence did.
  """
  a, b = _flatten(config_lib.upgrade(old)), _flatten(config_lib.upgrade(new))
  keys = sorted(set(a) | set(b))
  return [k for k in keys if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES
          and not k.startswith('eval.')]


def seed_dir(workdir: str, seed: int) -> str:
  """The folder of seed `seed` in a run of several seeds (config.num_seeds > 1)."""
  return os.path.join(workdir, f'seed_{seed}')


@dataclasses.dataclass(frozen=True)
class Member:
  """One GAN of a run of several: its seed and, in a sweep, its value of config.sweep.field.

  Attributes:
    seed: its seed.
    value: its value of the swept field; None without a sweep.
    name: its folder in the workdir: seed_<s>, or <field>=<value>/seed_<s> in a sweep.
  """
  seed: int
  value: float | None
  name: str

  @property
  def key(self):
    """What names it in logs' records and checkpoints: the seed, or in a sweep its folder."""
    return self.seed if self.value is None else self.name

  def __str__(self) -> str:
    where = '' if self.value is None else f'{os.path.dirname(self.name)} '
    return f'{where}seed {self.seed}'


def value_name(config, value: float) -> str:
  """A swept value's folder in the workdir, <field>=<value> (repr: distinct values, distinct
  names)."""
  return f'{config.sweep.field}={float(value)!r}'


def members(config) -> list[Member]:
  """The GANs a run trains, in the order of its state's leading axis.

  Without a sweep, seeds config.seed, ..., config.seed + num_seeds - 1; with one, those seeds
  for each of config.sweep.grid in turn (value-major).
  """
  seeds = [config.seed + i for i in range(config.num_seeds)]
  if not config.sweep.field:
    return [Member(s, None, os.path.basename(seed_dir('', s))) for s in seeds]
  return [Member(s, float(v), seed_dir(value_name(config, v), s))
          for v in config.sweep.grid for s in seeds]


def by_value(config) -> list[tuple[float, list[int]]]:
  """A sweep's values, each with its members' positions along the leading axis (`members`)."""
  values = [m.value for m in members(config)]
  return [(float(v), [i for i, w in enumerate(values) if w == float(v)])
          for v in config.sweep.grid]


def member_config(config, seed: int, value: float | None = None):
  """The config of one member of a run of several (seed `seed`, and `value` of the swept field
  in a sweep): the run of that member alone (num_seeds 1, no sweep)."""
  one = config.copy_and_resolve_references()
  one.seed, one.num_seeds = seed, 1
  if value is not None:
    section, name = config.sweep.field.split('.')
    one[section][name] = value
    one.sweep.field, one.sweep.grid = '', ()
  return one


def read_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The config of the run in `workdir` (its config.json, upgraded to the full schema, locked).

  None when `workdir` holds no config.json.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return config_lib.from_json_dict(json.load(f))


def _has_checkpoints(workdir: str) -> bool:
  ckpts = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(ckpts) and any(name.isdigit() for name in os.listdir(ckpts))


def prepare(workdir: str, config, write: bool = True, allow_new_config: bool = False) -> None:
  """Creates `workdir` (or checks the run in it) and writes config.json.

  Raises:
    WorkdirError: `workdir` is a file or not writable, or it holds a run of a different config
      (unless `allow_new_config`; a change of FIXED_FIELDS always).
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
    fixed = [k for k in diff if k in FIXED_FIELDS]
    if fixed:
      was = _flatten(config_lib.upgrade(old)).get(fixed[0])  # Written before the field: default.
      raise WorkdirError(
          f'--workdir {workdir} holds a run of {fixed[0]}={was!r}, '
          f'which {fixed[0]}={_flatten(new).get(fixed[0])!r} cannot resume (its state holds '
          'other GANs), even with --allow_config_change: use a new --workdir.')
    if diff and not allow_new_config:
      shown = ', '.join(f'{k}: {_flatten(old).get(k)!r} -> {_flatten(new).get(k)!r}'
                        for k in diff[:3])
      raise WorkdirError(
          f'--workdir {workdir} holds a run with a different config ({shown}'
          f'{", ..." if len(diff) > 3 else ""}): use a new --workdir, or pass '
          '--allow_config_change to resume it with the new config.')
  if write:
    writers.write_json(path, new, indent=2, sort_keys=True)
