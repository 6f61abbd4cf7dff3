"""launch.py's command line: one line for a bad --config.* override; a log of gan_jax's lines."""

import logging
import os
import re
import subprocess
import sys

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags
import pytest

from conftest import ROOT, tiny_mnist_config
from gan_jax import cli

MNIST = os.path.join(ROOT, 'experiments', 'mnist.py')
TINY = ['--config.model.g_hidden=(32,32)', '--config.model.d_units=(16,16)',
        '--config.model.d_pieces=3', '--config.train.batch_size=8',
        '--config.train.num_steps=4', '--config.train.log_every=2',
        '--config.train.checkpoint_every=2', '--config.train.sample_every=2',
        '--config.train.steps_per_call=2', '--config.eval.every=0']


def test_unknown_field_names_the_section_and_its_fields():
  config = tiny_mnist_config()
  message = cli.unknown_field(config, 'train.nums_steps')
  assert message.startswith("config.train has no field 'nums_steps' (did you mean 'num_steps'?); "
                            'its fields are: batch_size, checkpoint_every, ')
  assert ', '.join(sorted(config.train.keys())) in message
  assert cli.unknown_field(config, 'train.nonexistent_field').startswith(
      "config.train has no field 'nonexistent_field'; its fields are: batch_size, ")
  assert cli.unknown_field(config, 'trian.num_steps').startswith(
      "config has no field 'trian' (did you mean 'train'?); its fields are: data, eval, ")
  assert cli.unknown_field(config, 'eval.parzen.num_sample').startswith(
      "config.eval.parzen has no field 'num_sample' (did you mean 'num_samples'?)")
  assert cli.unknown_field(config, 'train.num_steps.x') == (
      "config.train.num_steps is an integer, not a section: it has no field 'x'")
  assert cli.unknown_field(config, 'train.num_steps') is None
  assert cli.unknown_field(config, 'eval.parzen.seed') is None


def test_bad_value_names_the_field_and_its_type():
  config = tiny_mnist_config()
  assert cli.bad_value(config, 'train.num_steps', 'abc') == (
      "config.train.num_steps must be an integer, not 'abc' (e.g. --config.train.num_steps=6)")
  assert cli.bad_value(config, 'optim.learning_rate', 'x').startswith(
      "config.optim.learning_rate must be a number, not 'x'")
  assert cli.bad_value(config, 'data.allow_download', 'maybe').startswith(
      "config.data.allow_download must be true or false, not 'maybe'")
  assert cli.bad_value(config, 'train', '1').startswith(
      'config.train is a section, not a value')


def _parse(monkeypatch, *args):
  """cli.parse_flags on fresh FlagValues holding only --config (as launch.py defines it)."""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, '', flag_values=flag_values, lock_config=True)
  argv = ['launch.py', *args]
  monkeypatch.setattr(sys, 'argv', argv)  # ml_collections reads the overrides from sys.argv.
  return cli.parse_flags(argv, flag_values), flag_values


@pytest.mark.parametrize('override,line', [
    ('--config.train.nums_steps=10', "error: config.train has no field 'nums_steps' (did you mean "
     "'num_steps'?); its fields are: batch_size, checkpoint_every, "),
    ('--config.trian.num_steps=1', "error: config has no field 'trian' (did you mean 'train'?); "
     'its fields are: data, eval, model, num_seeds, optim, '),
    ('--config.train.num_steps=abc',
     "error: config.train.num_steps must be an integer, not 'abc' (e.g. "
     '--config.train.num_steps='),
    ('--noconfig.data.allow_dowload', "error: config.data has no field 'allow_dowload' (did you "
     "mean 'allow_download'?)"),
])
def test_parse_flags_one_line_status_2(monkeypatch, capsys, override, line):
  with pytest.raises(SystemExit) as e:
    _parse(monkeypatch, f'--config={MNIST}', '--config.train.batch_size=8', override)
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and err.startswith(line), err


def test_parse_flags_missing_config_file(monkeypatch, capsys):
  missing = os.path.join(ROOT, 'experiments', 'mnsit.py')
  for args in [(f'--config={missing}',), ('--config', missing, '--config.seed=1')]:
    with pytest.raises(SystemExit) as e:
      _parse(monkeypatch, *args)
    assert e.value.code == 2
    assert capsys.readouterr().err == (
        f"error: cannot load --config={missing}: [Errno 2] No such file or directory: "
        f"'{missing}'\n")


def test_parse_flags_passes_good_flags_and_other_errors(monkeypatch, capsys):
  remaining, flag_values = _parse(monkeypatch, f'--config={MNIST}', '--config.train.num_steps=7',
                                  '--config.model.g_hidden=(3,4)', 'extra')
  assert remaining == ['launch.py', 'extra']
  assert flag_values.config.train.num_steps == 7 and flag_values.config.model.g_hidden == (3, 4)
  with pytest.raises(SystemExit) as e:  # Not a --config override: absl's own message.
    _parse(monkeypatch, f'--config={MNIST}', '--workdri=x')
  assert e.value.code == 1
  assert capsys.readouterr().err.startswith("FATAL Flags parsing error: Unknown command line flag "
                                            "'workdri'")


def _record(pathname, level=logging.INFO, msg='message'):
  return logging.LogRecord('absl', level, pathname, 1, msg, None, None)


def test_library_filter(monkeypatch):
  launch = os.path.join(ROOT, 'launch.py')
  library = os.path.join(os.path.dirname(logging.__file__), 'orbax', 'checkpoint_manager.py')
  own = cli.LibraryFilter([os.path.dirname(cli.__file__), launch])
  monkeypatch.setattr(absl_logging, 'get_verbosity', lambda: 0)
  assert own.filter(_record(cli.__file__)) and own.filter(_record(launch))
  assert not own.filter(_record(library))
  assert not own.filter(_record(library, logging.DEBUG))
  assert own.filter(_record(library, logging.WARNING))
  assert own.filter(_record(library, logging.ERROR))
  assert not own.filter(_record(library, logging.WARNING, 'Given directory is read only=/x'))
  assert not own.filter(_record(os.path.join(ROOT, 'launch_other.py')))  # Not a prefix match.
  monkeypatch.setattr(absl_logging, 'get_verbosity', lambda: 1)  # --verbosity=1: INFO lines.
  assert own.filter(_record(library))
  assert own.filter(_record(library, logging.WARNING, 'Given directory is read only=/x'))
  assert not own.filter(_record(library, logging.DEBUG))
  assert own.filter(_record(cli.__file__, logging.DEBUG))
  monkeypatch.setattr(absl_logging, 'get_verbosity', lambda: 2)  # --verbosity=2: all of them.
  assert own.filter(_record(library, logging.DEBUG))


def _launch(workdir, *args):
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, 'tests', 'mock_launch.py'), '40', f'--config={MNIST}',
       f'--workdir={workdir}', *TINY, *args],
      capture_output=True, text=True, timeout=600, check=False,
      env={**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'})


def _info_files(stderr):
  """The files of absl's INFO lines (not TensorFlow's C++ lines, dated 0000 00:00)."""
  return set(re.findall(r'^I(?!0000 00:00)\d{4} \S+ +\d+ (\S+):\d+\]', stderr, re.M))


def test_log_is_gan_jax_lines_libraries_at_verbosity_1(tmp_path):
  workdir = str(tmp_path / 'run')
  out = _launch(workdir, '--verbosity=1')  # A fresh run: orbax's lines are there.
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'step 4/4' in out.stderr
  assert 'checkpoint_manager.py' in _info_files(out.stderr)

  out = _launch(workdir, '--config.train.num_steps=6')  # Resumed, at the default verbosity.
  assert out.returncode == 0, out.stderr[-3000:]
  for line in ['devices (cpu)', 'G: ', 'Resumed from the checkpoint at step 4.', 'step 6/6 ',
               ' steps/s  ETA ']:
    assert line in out.stderr, line
  assert 'orbax' not in out.stderr and 'read only' not in out.stderr
  gan_jax_files = {f for f in os.listdir(os.path.join(ROOT, 'gan_jax')) if f.endswith('.py')}
  assert _info_files(out.stderr) <= gan_jax_files | {'launch.py'}, out.stderr
