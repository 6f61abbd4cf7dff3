"""What launch.py does besides defining its flags: the command line's errors and log.

parse_flags: absl.app.run's flags_parser. A misspelt or mistyped --config.<section>.<field>
override is one line (`error: config.train has no field 'nums_steps' ...`) and exit status 2, as
gan_jax's other user errors, instead of ml_collections' traceback.

quiet_libraries: the log is gan_jax's own lines (devices, parameter counts, progress, Parzen
estimates, resumes); other packages' INFO lines (orbax's ~60 lines per checkpoint, TFDS's, JAX's
TPU probe) show with --verbosity=1, as do two harmless orbax warnings, and their DEBUG lines with
--verbosity=2 (absl's flag). Their other warnings and errors always show.
"""

import difflib
import logging as std_logging
import os
import re
import sys
import textwrap

from absl import flags
from absl import logging
import ml_collections

_GAN_JAX_DIR = os.path.dirname(os.path.abspath(__file__))

_KINDS = {bool: 'true or false', int: 'an integer', float: 'a number', str: 'a string',
          tuple: 'a tuple'}


def unknown_field(config, path, name='config'):
  """The one-line error for `--<name>.<path>` if `path` names no field of `config`, else None."""
  node, where = config, name
  for key in path.split('.'):
    if '[' in key:  # An index into a sequence field: ml_collections' own error explains it.
      return None
    if not isinstance(node, ml_collections.ConfigDict):
      return f'{where} is {_kind(node)}, not a section: it has no field {key!r}'
    if key not in node:
      fields = sorted(node.keys())
      close = difflib.get_close_matches(key, fields, n=1)
      hint = f' (did you mean {close[0]!r}?)' if close else ''
      return f'{where} has no field {key!r}{hint}; its fields are: {", ".join(fields) or "none"}'
    node, where = node[key], f'{where}.{key}'
  return None


def bad_value(config, path, value, name='config'):
  """The one-line error for `--<name>.<path>=<value>` whose value does not fit the field's type."""
  current = config
  for key in path.split('.'):
    current = current[key]
  if isinstance(current, ml_collections.ConfigDict):
    fields = ', '.join(sorted(current.keys())) or 'none'
    return (f'{name}.{path} is a section, not a value: set its fields, '
            f'--{name}.{path}.<field>=...; its fields are: {fields}')
  return (f'{name}.{path} must be {_kind(current)}, not {value!r} '
          f'(e.g. --{name}.{path}={current!r})')


def _kind(value):
  for t, kind in _KINDS.items():
    if type(value) is t:  # pylint: disable=unidiomatic-typecheck  (bool is an int)
      return kind
  return f'a {type(value).__name__}'


def _overrides(argv, name):
  """(path, value) of each --<name>.<path>[=value] in argv, in order (value None if absent)."""
  pattern = re.compile(r'-{1,2}(?:no)?' + re.escape(name) + r'\.([^=]+)(?:=(.*))?$', re.S)
  out = []
  for arg in argv[1:]:
    if arg == '--':
      break
    match = pattern.match(arg)
    if match:
      out.append((match.group(1), match.group(2)))
  return out


def _config_argument(argv, name):
  """The value of --<name>=VALUE (or --<name> VALUE) in argv; None if absent."""
  for i, arg in enumerate(argv[1:], 1):
    if arg == '--':
      break
    match = re.match(r'-{1,2}' + re.escape(name) + r'(?:=(.*))?$', arg, re.S)
    if match:
      if match.group(1) is not None:
        return match.group(1)
      return argv[i + 1] if i + 1 < len(argv) else None
  return None


def config_file_error(config, argument, name='config'):
  """One line if the config file named by --<name>=`argument` could not be loaded, else None.

  ml_collections defers that error to the config's first use (a traceback in the program).
  """
  if config is None or isinstance(config, ml_collections.ConfigDict):
    return None
  try:
    getattr(config, 'keys')
  except OSError as e:
    reason = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
    return f'cannot load --{name}={argument}: {reason}'
  return None


def override_error(argv, error, flag_values=flags.FLAGS, name='config'):
  """The one-line message for `error`, raised parsing `argv`, if a --<name>.* override caused it.

  ml_collections raises a KeyError or AttributeError (with a traceback) for an unknown field and
  absl an IllegalFlagValueError for a value of the wrong type. None when neither is the cause.
  """
  overrides = _overrides(argv, name)
  if not overrides or name not in flag_values:
    return None
  argument = _config_argument(argv, name)
  config = flag_values[name].value
  if config is None:  # It failed while applying the overrides: load the config file again.
    if argument is None:
      return None
    try:
      config = flag_values[name].parser.parse(argument)
    except Exception:  # pylint: disable=broad-except  (the config itself is the problem)
      return None
  message = config_file_error(config, argument, name)
  if message:
    return message
  for path, _ in overrides:
    message = unknown_field(config, path, name)
    if message:
      return message
  match = re.match(r'flag --' + re.escape(name) + r'\.([\w.]+)=', str(error))
  if isinstance(error, flags.IllegalFlagValueError) and match:
    path = match.group(1)
    values = [v for p, v in overrides if p == path]
    return bad_value(config, path, values[-1] if values else None, name)
  return None


def parse_flags(argv, flag_values=flags.FLAGS, name='config'):
  """absl.app.run's flags_parser: absl's, but a bad --<name>.* override is one line, status 2.

  So is a --<name> file that cannot be loaded.
  """
  try:
    remaining = flag_values(argv)
  except Exception as e:  # pylint: disable=broad-except  (ml_collections raises KeyError etc.)
    message = override_error(argv, e, flag_values, name)
    if message is None:
      if not isinstance(e, flags.Error):
        raise
      # What absl.app.parse_flags_with_usage prints.
      text = f'\n{textwrap.indent(str(e), "  ")}' if '\n' in str(e) else f' {e}'
      sys.stderr.write(f'FATAL Flags parsing error:{text}\n'
                       'Pass --helpshort or --helpfull to see help on flags.\n')
      sys.exit(1)
  else:
    message = None
    if name in flag_values:
      message = config_file_error(flag_values[name].value, _config_argument(argv, name), name)
    if message is None:
      return remaining
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


# Library warnings that are no problem: orbax's, whenever gan_jax opens a run's checkpoints
# read-only to find or restore one (they show with --verbosity=1).
_HARMLESS_WARNINGS = ('CheckpointManagerOptions.read_only=True, setting save_interval_steps=0',
                      'Given directory is read only=')


class LibraryFilter:
  """A logging filter: all records from `own` files and folders; other files' by --verbosity.

  Other files (libraries): warnings and errors at the default --verbosity=0 (but not
  _HARMLESS_WARNINGS), INFO lines too at 1 (all that showed at 0 before this filter), DEBUG lines
  too at 2.
  """

  def __init__(self, own):
    self._own = tuple(os.path.abspath(p) for p in own)
    self._cache = {}

  def _is_own(self, pathname):
    own = self._cache.get(pathname)
    if own is None:
      path = os.path.abspath(pathname)
      own = any(path == p or path.startswith(p + os.sep) for p in self._own)
      self._cache[pathname] = own
    return own

  def filter(self, record):
    verbosity = logging.get_verbosity()
    if verbosity >= 2 or self._is_own(record.pathname):
      return True
    if verbosity == 1:
      return record.levelno >= std_logging.INFO
    if record.levelno < std_logging.WARNING:
      return False
    message = record.getMessage()
    return not any(m in message for m in _HARMLESS_WARNINGS)


def quiet_libraries(*own):
  """Shows other packages' INFO lines only with --verbosity >= 1 (DEBUG at 2); gan_jax's always.

  `own`: files or folders whose INFO lines are also the program's own (e.g. launch.py).
  """
  handler = logging.get_absl_handler()
  for f in [f for f in handler.filters if isinstance(f, LibraryFilter)]:
    handler.removeFilter(f)
  handler.addFilter(LibraryFilter((_GAN_JAX_DIR,) + own))
