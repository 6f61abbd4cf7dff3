"""Bad input: one clear line, before any training, nothing in the workdir lost."""

import os
import re
import subprocess
import sys

import jax
import pytest

from conftest import ROOT, tiny_mnist_config
from gan_jax import api
from gan_jax import data
from gan_jax import validation
from gan_jax import workdir as workdir_lib


@pytest.mark.parametrize('section,field,value,message', [
    ('data', 'name', 'imagenet', "Unknown data.name 'imagenet'"),
    ('train', 'generator_loss', 'hinge', "Unknown train.generator_loss 'hinge'"),
    ('train', 'update_rule', 'sequential', "Unknown train.update_rule 'sequential'"),
    ('train', 'member_axis', 'pmap', r"Unknown train.member_axis 'pmap': choose one of \['auto', "
     r"'map', 'vmap'\] \(--config.train.member_axis=...\)\.$"),
    ('model', 'prior', 'cauchy', "Unknown model.prior 'cauchy'"),
    ('optim', 'name', 'lbfgs', "Unknown optim.name 'lbfgs'"),
    ('train', 'k_steps', 0, 'k_steps .* must be an integer >= 1'),
    ('train', 'batch_size', 0, 'train.batch_size must be positive'),
    ('train', 'batch_size', -100, 'train.batch_size must be positive'),
    ('optim', 'learning_rate', 0.0, 'optim.learning_rate must be positive'),
    ('optim', 'learning_rate', -0.1, 'optim.learning_rate must be positive'),
    ('train', 'batch_size', 6, 'not divisible by the 4 devices'),
    ('model', 'd_input_keep', 1.5, 'keep probability'),
    ('train', 'num_steps', 0, 'train.num_steps must be positive'),
    ('model', 'compute_dtype', 'float16', "compute_dtype='float16' is unknown"),
    ('train', 'g_ema_decay', 1.0, r'train.g_ema_decay must be in \[0, 1\) .* got 1.0: set '
     r'--config.train.g_ema_decay=0.999'),
    ('train', 'g_ema_decay', -0.5, r'train.g_ema_decay must be in \[0, 1\)'),
    ('optim', 'min_lr', -1e-6, r"config.optim.min_lr \(the lr's floor\) must be >= 0"),
    ('optim', 'init_momentum', -0.1, r'config.optim.init_momentum must be in \[0, 1\)'),
    ('optim', 'final_momentum', 1.0,
     r'config.optim.final_momentum must be in \[0, 1\), got 1.0'),
    ('optim', 'adam_b1', 1.2, r'config.optim.adam_b1 must be in \[0, 1\)'),
    ('optim', 'adam_b2', -0.9, r'config.optim.adam_b2 must be in \[0, 1\)'),
])
def test_config_errors(section, field, value, message):
  config = tiny_mnist_config()
  config[section][field] = value
  with pytest.raises(validation.ConfigError, match=message):
    validation.validate(config, jax.device_count())


def test_bfloat16_only_for_the_fully_connected_models():
  config = tiny_mnist_config()
  config.model.discriminator, config.model.compute_dtype = 'maxout_conv', 'bfloat16'
  with pytest.raises(validation.ConfigError, match='implemented for the fully connected models'):
    validation.validate(config, jax.device_count())


def test_k_steps_needs_alternating():
  config = tiny_mnist_config(k_steps=2)
  with pytest.raises(validation.ConfigError, match='needs config.train.update_rule=alternating'):
    validation.validate(config, 1)
  config.train.update_rule = 'alternating'
  validation.validate(config, 1)


def test_missing_dataset_without_download(tmp_path):
  config = tiny_mnist_config()
  config.data.data_dir = str(tmp_path / 'empty')
  config.data.allow_download = False
  with pytest.raises(data.DataError, match="not prepared in .* downloading is off"):
    data.load_split(config.data, 'train')


def test_failed_prepare_is_one_clear_error(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds

  def offline(*args, **kwargs):
    raise ConnectionError('Failed to resolve storage.googleapis.com\nmore lines')

  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', offline)
  config = tiny_mnist_config()
  config.data.data_dir = str(tmp_path / 'empty')
  with pytest.raises(data.DataError) as e:
    data.load_split(config.data, 'train')
  text = str(e.value)
  assert '\n' not in text and 'could not be prepared' in text and 'TFDS_DATA_DIR' in text


def test_workdir_is_a_file(tmp_path):
  path = tmp_path / 'file'
  path.write_text('precious')
  with pytest.raises(workdir_lib.WorkdirError, match='is a file'):
    workdir_lib.prepare(str(path), tiny_mnist_config())
  assert path.read_text() == 'precious'


def test_workdir_with_another_run(tmp_path):
  workdir = str(tmp_path / 'run')
  other = tiny_mnist_config()
  other.optim.learning_rate = 0.5
  workdir_lib.prepare(workdir, other)
  workdir_lib.prepare(workdir, tiny_mnist_config())  # Nothing saved yet: a fresh start.
  os.makedirs(os.path.join(workdir, 'checkpoints', '10'))  # Now it holds a run.
  before = open(os.path.join(workdir, 'config.json')).read()
  workdir_lib.prepare(workdir, tiny_mnist_config(num_steps=100))  # Length may change.
  with pytest.raises(workdir_lib.WorkdirError, match='optim.learning_rate: 0.1 -> 0.5'):
    workdir_lib.prepare(workdir, other)
  assert open(os.path.join(workdir, 'config.json')).read() != before  # num_steps 100 written
  workdir_lib.prepare(workdir, other, allow_new_config=True)


def test_run_from_before_a_field_existed_resumes(tmp_path):
  """A config.json written before data.idx_dir / compute_dtype / g_ema_decay existed: same run."""
  import json
  workdir = str(tmp_path / 'run')
  workdir_lib.prepare(workdir, tiny_mnist_config())
  os.makedirs(os.path.join(workdir, 'checkpoints', '10'))
  path = os.path.join(workdir, 'config.json')
  old = json.load(open(path))
  del old['data']['idx_dir'], old['model']['compute_dtype'], old['train']['g_ema_decay']
  json.dump(old, open(path, 'w'))
  workdir_lib.prepare(workdir, tiny_mnist_config(), write=False)  # Resumes.
  bf16 = tiny_mnist_config()
  bf16.model.compute_dtype = 'bfloat16'
  with pytest.raises(workdir_lib.WorkdirError, match="model.compute_dtype: None -> 'bfloat16'"):
    workdir_lib.prepare(workdir, bf16)


def _launch(*args, env=None):
  return subprocess.run([sys.executable, os.path.join(ROOT, 'launch.py'),
                         f'--config={os.path.join(ROOT, "experiments", "mnist.py")}', *args],
                        capture_output=True, text=True, env={**os.environ, **(env or {})},
                        timeout=300, check=False)


def _own_lines(stderr):
  """stderr without log lines (absl's and TensorFlow's C++ ones)."""
  return [l for l in stderr.splitlines()
          if not re.match(r'[IWEF]\d{4} |WARNING: All log messages before absl', l)]


def test_launch_mistyped_field(tmp_path):
  out = _launch(f'--workdir={tmp_path / "w"}', '--config.train.nums_steps=10')
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  [line] = _own_lines(out.stderr)
  assert line.startswith("error: config.train has no field 'nums_steps' (did you mean "
                         "'num_steps'?); its fields are: batch_size, checkpoint_every, ")
  assert ', num_steps, ' in line
  assert not (tmp_path / 'w').exists()
  out = _launch(f'--workdir={tmp_path / "w"}', '--config.trian.num_steps=1')
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  [line] = _own_lines(out.stderr)
  assert line.startswith("error: config has no field 'trian' (did you mean 'train'?); its fields "
                         'are: data, eval, ')
  assert not (tmp_path / 'w').exists()


def test_launch_bad_value_and_missing_data(tmp_path):
  out = _launch(f'--workdir={tmp_path / "w"}', '--config.train.update_rule=sequential')
  assert out.returncode == 2
  errors = [l for l in out.stderr.splitlines() if l.startswith('error:')]
  assert errors == ["error: Unknown train.update_rule 'sequential': choose one of "
                    "['alternating', 'simultaneous'] (--config.train.update_rule=...)."]
  assert 'Traceback' not in out.stderr
  out = _launch(f'--workdir={tmp_path / "w2"}', f'--config.data.data_dir={tmp_path / "nodata"}',
                '--config.data.allow_download=False')
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  assert "error: Dataset 'mnist' is not prepared" in out.stderr


def test_launch_wrong_type(tmp_path):
  out = _launch(f'--workdir={tmp_path / "w"}', '--config.train.batch_size=many')
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  assert _own_lines(out.stderr) == ["error: config.train.batch_size must be an integer, not 'many' "
                                    '(e.g. --config.train.batch_size=100)']
  assert not (tmp_path / 'w').exists()


def test_workdir_cannot_be_created(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('precious')
  with pytest.raises(workdir_lib.WorkdirError, match='Cannot create --workdir'):
    workdir_lib.prepare(str(blocker / 'run'), tiny_mnist_config())
  assert blocker.read_text() == 'precious'


def test_resume_into_another_model_is_refused(tmp_path):
  import tensorflow_datasets as tfds
  from gan_jax import checkpoint
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=40):
    api.train_and_evaluate(tiny_mnist_config(num_steps=3), workdir)
    other = tiny_mnist_config(num_steps=6)
    other.model.d_units = (24, 24)
    with pytest.raises(workdir_lib.WorkdirError, match='model.d_units'):
      api.train_and_evaluate(other, workdir)
    with pytest.raises(checkpoint.CheckpointError, match='does not fit this model'):
      api.train_and_evaluate(other, workdir, allow_config_change=True)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3']


@pytest.mark.parametrize('value', [-5000, -1])  # ConfigDict itself refuses a float.
def test_g_average_must_be_a_step_count(value):
  config = tiny_mnist_config()
  config.eval.parzen.g_average = value
  with pytest.raises(validation.ConfigError, match=r'eval.parzen.g_average must be an integer >= 0'):
    validation.validate(config, jax.device_count())


def test_g_ema_and_g_average_are_exclusive():
  config = tiny_mnist_config()
  config.eval.parzen.g_ema, config.eval.parzen.g_average = True, 5000
  with pytest.raises(validation.ConfigError,
                     match=r'g_ema=True and g_average=5000 ask for two different Gs: set '
                           r'--config.eval.parzen.g_average=0'):
    validation.validate(config, jax.device_count())
  config.eval.parzen.g_average = 0
  validation.validate(config, jax.device_count())
