"""The EMA of G (config.train.g_ema_decay): the recurrence, devices, checkpoints, resume, eval."""

import json
import os
from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
import tensorflow_datasets as tfds

from conftest import small_eval, tiny_mnist_config
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import evaluation
from gan_jax import experiment
from gan_jax import figures
from gan_jax import state as state_lib
from gan_jax import train_step
from gan_jax import workdir as workdir_lib

B = 8
OLD_FIELDS = ['d_opt_state', 'd_params', 'g_opt_state', 'g_params', 'step']


@flax.struct.dataclass
class OldGANState:
  """GANState as it was before the EMA: what every existing checkpoint holds."""
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState


def _setup(decay, update_rule='simultaneous', k=1):
  config = tiny_mnist_config(update_rule=update_rule, k_steps=k, g_ema_decay=decay)
  config.optim.name, config.optim.learning_rate = 'adam', 0.01  # Steps of ~lr in every weight.
  exp = experiment.build(config, (28, 28, 1), 1000)
  images = jnp.asarray(jax.random.uniform(jax.random.key(7), (k, B, 28, 28, 1)))
  return exp, exp.initial_state(np.asarray(images).reshape(-1, 28, 28, 1)), images


@pytest.mark.parametrize('update_rule,k', [('simultaneous', 1), ('alternating', 2)])
def test_ema_is_the_recurrence_over_gs_params(update_rule, k):
  decay = 0.9
  exp, state, batch = _setup(decay, update_rule, k)
  chex.assert_trees_all_equal(state.g_ema_params, state.g_params)  # It starts at G's init.
  chex.clear_trace_counter()  # Each parametrisation wraps the same `train_step.fixed` lambda.
  step = jax.jit(chex.assert_max_traces(exp.single_step(axis_name=None), n=1))
  ema = state.g_params
  for i in range(4):
    state, _ = step(state, batch if i % 2 else batch[:, ::-1], jax.random.key(3))
    ema = jax.tree.map(lambda e, g: decay * e + (1 - decay) * g, ema, state.g_params)
  chex.assert_trees_all_close(state.g_ema_params, ema, atol=1e-6)
  # ... which is far from G itself, so the comparison above means something.
  assert max(np.abs(e - g).max() for e, g in zip(jax.tree.leaves(state.g_ema_params),
                                                 jax.tree.leaves(state.g_params))) > 1e-2


def test_decay_0_leaves_the_state_as_it_was():
  exp, state, batch = _setup(0.0)
  step = exp.single_step(axis_name=None)
  new_state, _ = jax.jit(step)(state, batch, jax.random.key(0))
  for s in (state, new_state):
    assert s.g_ema_params is None and sorted(state_lib.to_tree(s)) == OLD_FIELDS
    old = OldGANState(s.step, s.g_params, s.d_params, s.g_opt_state, s.d_opt_state)
    assert jax.tree.structure(s).num_leaves == jax.tree.structure(old).num_leaves
    chex.assert_trees_all_equal(jax.tree.leaves(s), jax.tree.leaves(old))
  # A state whose EMA disagrees with the step's decay is a bug, caught when tracing.
  with pytest.raises(ValueError, match='has an EMA of G'):
    jax.jit(step)(state_lib.with_g_ema(state, True), batch, jax.random.key(0))


def test_four_devices_equal_one():
  assert jax.local_device_count() == 4, 'tests/conftest.py forces 4 CPU devices'
  exp, state, batch = _setup(0.9)
  rng = jax.random.key(11)
  single = jax.jit(exp.single_step(axis_name=None))
  s1, _ = single(*single(state, batch, rng)[:1], batch[:, ::-1], rng)
  multi = exp.single_step()
  p_step = jax.pmap(multi, axis_name='batch', in_axes=(None, 0, None), out_axes=(None, None))
  shard = lambda b: b.reshape(1, 4, B // 4, 28, 28, 1).transpose(1, 0, 2, 3, 4, 5)
  s4, _ = p_step(state, shard(batch), rng)
  s4, _ = p_step(s4, shard(batch[:, ::-1]), rng)
  chex.assert_trees_all_close(s4.g_ema_params, s1.g_ema_params, atol=2e-6)


def _save_old_layout(directory, state, step):
  """Writes `state` as the code before the EMA did: the GANState dataclass as item 'state'."""
  old = OldGANState(state.step, state.g_params, state.d_params, state.g_opt_state,
                    state.d_opt_state)
  manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(create=True))
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(old),
                                             host=ocp.args.JsonSave({})))
  manager.wait_until_finished()
  manager.close()


def test_checkpoints_from_before_the_ema_restore(tmp_path):
  exp, state, _ = _setup(0.0)
  old_dir, new_dir = str(tmp_path / 'old'), str(tmp_path / 'new')
  _save_old_layout(old_dir, state, 5)
  ckpt = checkpoint.Checkpointer(new_dir)
  ckpt.save(5, state)
  ckpt.close()
  # Without the EMA, a new checkpoint holds exactly the fields an old one does.
  for directory in (old_dir, new_dir):
    ckpt = checkpoint.Checkpointer(directory, read_only=True)
    assert sorted(ckpt.saved_fields(5)) == OLD_FIELDS
    restored, step = ckpt.restore_latest(state)
    assert step == 5 and restored.g_ema_params is None
    chex.assert_trees_all_equal(restored, state)
    # A target with an EMA still gets the checkpoint's structure: the caller decides.
    with_ema, _ = ckpt.restore(_setup(0.9)[1], 5)
    assert with_ema.g_ema_params is None
    ckpt.close()


def test_checkpoint_with_ema_restores_into_any_target(tmp_path):
  _, state, _ = _setup(0.9)
  state = state.replace(g_ema_params=jax.tree.map(lambda p: p + 1.0, state.g_ema_params))
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'c'))
  ckpt.save(2, state)
  ckpt.close()
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'c'), read_only=True)
  assert 'g_ema_params' in ckpt.saved_fields(2)
  for target in (state, _setup(0.0)[1]):
    chex.assert_trees_all_equal(ckpt.restore(target, 2)[0], state)
  ckpt.close()


def test_train_then_eval_and_figures_of_the_ema(tmp_path):
  workdir = str(tmp_path / 'run')
  config = small_eval(tiny_mnist_config(num_steps=4, checkpoint_every=2, sample_every=4,
                                             g_ema_decay=0.5))
  config.model.g_hidden, config.model.d_units = (16, 16), (8, 8)
  with tfds.testing.mock_data(num_examples=48):
    api.train_and_evaluate(config, workdir)
    plain = evaluation.evaluate(config, workdir, step=4)
    eval_config = small_eval(tiny_mnist_config())  # Eval needs no decay: the checkpoint has it.
    eval_config.model.g_hidden, eval_config.model.d_units = (16, 16), (8, 8)
    eval_config.eval.parzen.g_ema = True
    ema = evaluation.evaluate(eval_config, workdir, step=4)
    newest = evaluation.evaluate(eval_config, workdir)
    paths = figures.make_figures(eval_config, workdir)
  assert ema['g_ema'] and ema['step'] == 4 and 'g_ema' not in plain
  assert ema['mean_ll'] != plain['mean_ll']
  assert json.load(open(os.path.join(workdir, 'parzen_step_00000004_g_ema.json'))) == ema
  assert json.load(open(os.path.join(workdir, 'parzen_step_00000004.json'))) == plain
  assert json.load(open(os.path.join(workdir, 'parzen_g_ema.json'))) == newest
  assert paths == [os.path.join(workdir, 'figures_g_ema', n)
                   for n in ('samples.png', 'nearest.png', 'interpolation.png')]
  assert not os.path.exists(os.path.join(workdir, 'figures'))


def test_eval_of_the_ema_of_a_run_without_one_is_a_clear_error(tmp_path):
  workdir = str(tmp_path / 'run')
  config = small_eval(tiny_mnist_config(num_steps=2, checkpoint_every=2))
  with tfds.testing.mock_data(num_examples=48):
    api.train_and_evaluate(config, workdir)
    before = sorted(os.listdir(workdir))
    config.eval.parzen.g_ema = True
    with pytest.raises(checkpoint.CheckpointError,
                       match=r'g_ema=True, but the checkpoint at step 2 .* has no EMA of G: '
                             r'train with --config.train.g_ema_decay=0.999 .*g_average'):
      evaluation.evaluate(config, workdir)
    with pytest.raises(checkpoint.CheckpointError, match='has no EMA of G'):
      figures.make_figures(config, workdir)
  assert sorted(os.listdir(workdir)) == before


def test_resume_turns_the_ema_on_from_the_restored_g(tmp_path, caplog):
  workdir = str(tmp_path / 'run')
  short = tiny_mnist_config(num_steps=3, checkpoint_every=1, keep_checkpoints=10)
  longer = tiny_mnist_config(num_steps=5, checkpoint_every=1, keep_checkpoints=10,
                             g_ema_decay=0.9)
  with tfds.testing.mock_data(num_examples=40):
    api.train_and_evaluate(short, workdir)
    with pytest.raises(workdir_lib.WorkdirError, match='train.g_ema_decay: 0.0 -> 0.9'):
      api.train_and_evaluate(longer, workdir)
    api.train_and_evaluate(longer, workdir, allow_config_change=True)
  assert 'has no EMA of G' in caplog.text
  exp = experiment.build(longer, (28, 28, 1), 1000)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
  target = exp.initial_state(None)
  states = {s: ckpt.restore(target, s)[0] for s in (3, 4, 5)}
  ckpt.close()
  assert states[3].g_ema_params is None
  ema = states[3].g_params  # The EMA starts at the restored G, then follows the recurrence.
  for s in (4, 5):
    ema = jax.tree.map(lambda e, g: 0.9 * e + 0.1 * g, ema, states[s].g_params)
  chex.assert_trees_all_close(states[5].g_ema_params, ema, atol=1e-7)


def test_resume_with_the_ema_off_is_refused_and_changes_nothing(tmp_path):
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=40):
    api.train_and_evaluate(tiny_mnist_config(num_steps=2, g_ema_decay=0.9), workdir)
    before = open(os.path.join(workdir, 'config.json')).read()
    for allow in (False, True):
      with pytest.raises(workdir_lib.WorkdirError,
                         match=r'checkpoint at step 2 carries an EMA of G, which '
                               r'config.train.g_ema_decay=0 would drop'):
        api.train_and_evaluate(tiny_mnist_config(num_steps=4), workdir, allow_config_change=allow)
  assert open(os.path.join(workdir, 'config.json')).read() == before
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['2']
