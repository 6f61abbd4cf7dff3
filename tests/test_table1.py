"""results/table1.py: the checkpoint chosen on validation, scored with the run's own config."""

import json
import os

import pytest
import tensorflow_datasets as tfds

from conftest import small_eval, tiny_mnist_config
from gan_jax import api
from results import table1


def test_choose_and_score(tmp_path):
  workdir = str(tmp_path / 'runs' / 'a')
  config = small_eval(tiny_mnist_config(num_steps=6, checkpoint_every=2))
  config.eval.every = 2
  config.train.update_rule = 'alternating'
  with tfds.testing.mock_data(num_examples=64):
    api.train_and_evaluate(config, workdir)
    loaded = table1.load_config(workdir)
    assert loaded.train.update_rule == 'alternating' and loaded.model.g_hidden == (32, 32)
    chosen = table1.choose(workdir)
    valid = {l['step']: l['parzen_valid'] for l in table1.metrics(workdir) if 'parzen_valid' in l}
    assert chosen['last'] == 6 and chosen['best'] == max(valid, key=valid.get)
    assert chosen['best_valid'] == valid[chosen['best']]
    assert table1.score(workdir, loaded, chosen['best'], run_protocol=False) is None
    record = table1.score(workdir, loaded, chosen['best'], run_protocol=True)
  assert record['step'] == chosen['best'] and record['n_samples'] == 50
  with open(os.path.join(workdir, f"parzen_step_{chosen['best']:08d}.json")) as f:
    assert json.load(f) == record
  assert '± ' in table1.fmt(record) and table1.fmt(None) == 'not scored'


def test_run_without_checkpoints(tmp_path):
  with pytest.raises(ValueError, match='has no checkpoints'):
    table1.choose(str(tmp_path))


def test_choose_on_protocol_files(tmp_path):
  workdir = str(tmp_path / 'run')
  config = small_eval(tiny_mnist_config(num_steps=6, checkpoint_every=2))
  with tfds.testing.mock_data(num_examples=64):
    api.train_and_evaluate(config, workdir)
    # No protocol file yet: the newest checkpoint, no estimate.
    assert table1.choose(workdir, 'protocol')['best'] == 6
    records = {s: table1.score(workdir, config, s, run_protocol=True) for s in (2, 4)}
  valid = {s: max(r['valid_ll']) for s, r in records.items()}
  chosen = table1.choose(workdir, 'protocol')
  assert chosen['best'] == max(valid, key=valid.get) and chosen['best_valid'] == max(valid.values())
  # Variants (an averaged G) and the test numbers never take part in the choice.
  loser = min(valid, key=valid.get)
  with open(os.path.join(workdir, f'parzen_step_{loser:08d}_g_average_2.json'), 'w') as f:
    json.dump(dict(records[loser], valid_ll=[1e9]), f)
  with open(os.path.join(workdir, f'parzen_step_{loser:08d}.json'), 'w') as f:
    json.dump(dict(records[loser], mean_ll=1e9), f)
  assert table1.choose(workdir, 'protocol')['best'] == chosen['best']
  with pytest.raises(ValueError, match="Unknown --choose_on 'test'"):
    table1.choose(workdir, 'test')
