"""metrics.jsonl and TensorBoard events."""

import builtins
import json
import os

from gan_jax import writers


def test_jsonl_without_tensorflow(tmp_path, monkeypatch):
  """An image without TensorFlow (e.g. a GPU machine's) still gets metrics.jsonl, no crash."""
  real_import = builtins.__import__

  def no_tensorflow(name, *args, **kwargs):
    if name == 'tensorflow' or name.startswith('flax.metrics.tensorboard') or (
        name == 'flax.metrics' and 'tensorboard' in (args[2] or ())):
      raise ImportError(f'No module named {name!r}')
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, '__import__', no_tensorflow)
  writer = writers.MetricWriter(str(tmp_path))
  writer.write(5, {'d_loss': 0.5})
  writer.close()
  assert not os.path.exists(tmp_path / 'tensorboard')
  assert [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()] == [
      {'step': 5, 'd_loss': 0.5}]


def test_tensorboard_events(tmp_path):
  writer = writers.MetricWriter(str(tmp_path))
  writer.write(1, {'d_loss': 0.25})
  writer.close()
  assert os.listdir(tmp_path / 'tensorboard')
