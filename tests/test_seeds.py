"""Several seeds in one compiled program (config.num_seeds): each seed trains as its own run.

Seeds 3 and 4 of a two-seed run against the single-seed runs --config.seed=3 and 4; one device
against four; SIGTERM / SIGKILL and an exact resume; one seed going non-finite; bad input; traces.
Runs are the tiny MNIST config of conftest under tfds.testing.mock_data. Compilation dominates
their cost, so the simultaneous runs (module fixture `runs`) are shared by several tests.
"""

import collections
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from unittest import mock

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from conftest import ROOT, tiny_mnist_config
from gan_jax import api
from gan_jax import checkpoint
from gan_jax import data
from gan_jax import errors
from gan_jax import experiment
from gan_jax import state as state_lib
from gan_jax import train_step
from gan_jax import validation

SEEDS = (3, 4)
NUM_EXAMPLES = 64
# Float32 rounding: seed s of the vmapped program against the plain one, and one device against
# four (a different order of the gradient sums).
RTOL, ATOL = 1e-6, 1e-7
DEVICES_RTOL, DEVICES_ATOL = 1e-5, 1e-6


def _config(num_seeds=2, seed=SEEDS[0], update_rule='simultaneous', **train):
  config = tiny_mnist_config(update_rule=update_rule,
                             k_steps=2 if update_rule == 'alternating' else 1, **train)
  config.seed, config.num_seeds = seed, num_seeds
  return config


# The same config as launch.py flags (checked against config.json in the tests that use them).
FLAGS = ['--config.model.g_hidden=(32,32)', '--config.model.d_units=(16,16)',
         '--config.model.d_pieces=3', '--config.train.batch_size=8',
         '--config.train.num_steps=6', '--config.train.log_every=2',
         '--config.train.checkpoint_every=3', '--config.train.sample_every=3',
         '--config.train.steps_per_call=2', '--config.eval.every=0',
         f'--config.seed={SEEDS[0]}', f'--config.num_seeds={len(SEEDS)}']


def _run(config, workdir, **kwargs):
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    return api.train_and_evaluate(config, workdir, **kwargs)


def _state(config, workdir, step=None):
  """(state, step) of a checkpoint of the run in `workdir` (stacked when config.num_seeds > 1)."""
  exp = experiment.build(config, (28, 28, 1), 1000)
  target = exp.initial_state(np.zeros((2, 28, 28, 1), np.float32))
  with checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True) as ckpt:
    return ckpt.restore(target, step)


def _host_record(workdir, step):
  with checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True) as ckpt:
    return ckpt.host_record(step)


def _metrics(directory):
  with open(os.path.join(directory, 'metrics.jsonl')) as f:
    lines = [json.loads(l) for l in f]
  for l in lines:
    l.pop('steps_per_sec')  # Wall-clock: the only field allowed to differ.
  return lines


def _seed_dir(workdir, seed):
  return os.path.join(workdir, f'seed_{seed}')


def _assert_close_metrics(a, b, rtol=RTOL, atol=ATOL):
  assert [l['step'] for l in a] == [l['step'] for l in b]
  for la, lb in zip(a, b):
    assert la.keys() == lb.keys()
    for k in la:
      np.testing.assert_allclose(la[k], lb[k], rtol=rtol, atol=atol,
                                 err_msg=f'step {la["step"]} {k}')


def _pngs(directory):
  samples = os.path.join(directory, 'samples')
  return {name: np.asarray(Image.open(os.path.join(samples, name)), np.int32)
          for name in sorted(os.listdir(samples))}


def _assert_close_samples(a, b, max_diff=1):
  pa, pb = _pngs(a), _pngs(b)
  assert pa.keys() == pb.keys() and pa
  for name in pa:
    assert np.abs(pa[name] - pb[name]).max() <= max_diff, name


def _assert_seeds_are_single_runs(multi, singles, config):
  """Seed s of the run in `multi` logged, sampled and ended as the single-seed run singles[s]."""
  stacked, step = _state(config, multi)
  for i, seed in enumerate(SEEDS):
    _assert_close_metrics(_metrics(_seed_dir(multi, seed)), _metrics(singles[seed]))
    single, single_step = _state(_config(num_seeds=1, seed=seed, **_train(config)), singles[seed])
    assert step == single_step == config.train.num_steps
    chex.assert_trees_all_close(state_lib.seed_slice(stacked, i), single, rtol=RTOL, atol=ATOL)
    _assert_close_samples(_seed_dir(multi, seed), singles[seed])


def _train(config):
  """The train fields of `config` _config takes as keyword arguments."""
  t = config.train
  return dict(update_rule=t.update_rule, num_steps=t.num_steps, log_every=t.log_every,
              checkpoint_every=t.checkpoint_every, sample_every=t.sample_every,
              steps_per_call=t.steps_per_call)


def _counting_seeds_chunk(traces):
  """train_step.make_seeds_chunk, counting the chunk's traces by its number of steps."""
  real = train_step.make_seeds_chunk

  def make(step, shared, member_axis):
    chunk = real(step, shared, member_axis)

    def counted(state, images, indices, members, active):
      traces[indices.shape[0]] += 1  # Per device: [steps, seeds, minibatches, local batch].
      return chunk(state, images, indices, members, active)

    return counted

  return make


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """Seeds 3 and 4 in one run, and each alone (simultaneous rule, 4 devices, 6 steps in calls of
  2 and 1 steps), with the two-seed chunk's traces counted."""
  root = tmp_path_factory.mktemp('seeds')
  traces = collections.Counter()
  multi = str(root / 'multi')
  with mock.patch.object(train_step, 'make_seeds_chunk', _counting_seeds_chunk(traces)):
    result = _run(_config(), multi)
  singles = {}
  for seed in SEEDS:
    singles[seed] = str(root / f'single_{seed}')
    _run(_config(num_seeds=1, seed=seed), singles[seed])
  return dict(root=root, multi=multi, singles=singles, result=result, traces=traces)


# 1. Equivalence with the single-seed runs. (Bit-identical on the CPU this was written on, for both
# rules: params, metrics and PNGs; asserted to float32 rounding, as XLA does not promise that a
# batched matmul rounds as the plain one does.)


def test_simultaneous_seeds_train_as_single_runs(runs):
  _assert_seeds_are_single_runs(runs['multi'], runs['singles'], _config())


def test_alternating_seeds_train_as_single_runs(tmp_path):
  # One call length only (4 steps in calls of 2): compiling is what costs here.
  train = dict(update_rule='alternating', num_steps=4, log_every=2, checkpoint_every=2,
               sample_every=2, steps_per_call=2)
  multi = str(tmp_path / 'multi')
  _run(_config(**train), multi)
  singles = {seed: str(tmp_path / f'single_{seed}') for seed in SEEDS}
  for seed in SEEDS:
    _run(_config(num_seeds=1, seed=seed, **train), singles[seed])
  _assert_seeds_are_single_runs(multi, singles, _config(**train))


def test_vmapped_seeds_train_as_single_runs(runs, tmp_path):
  # The runs above lay the seeds out as config.train.member_axis='auto' does on a CPU ('map');
  # 'vmap' (batched dots, the accelerators' choice) trains each seed as its run alone too.
  config = _config()
  config.train.member_axis = 'vmap'
  multi = str(tmp_path / 'vmap')
  _run(config, multi)
  _assert_seeds_are_single_runs(multi, runs['singles'], config)


def test_member_axis_auto_is_map_on_cpu():
  build = lambda config: experiment.build(config, (28, 28, 1), NUM_EXAMPLES)
  assert jax.default_backend() == 'cpu'
  assert build(_config()).member_axis == 'map'
  assert build(_config(num_seeds=1)).member_axis is None  # A run of one has no member axis.
  config = _config()
  config.train.member_axis = 'vmap'
  assert build(config).member_axis == 'vmap'


# 3. What a run of several seeds writes.


def test_outputs(runs):
  multi = runs['multi']
  assert sorted(os.listdir(multi)) == ['checkpoints', 'config.json', 'seed_3', 'seed_4']
  with open(os.path.join(multi, 'config.json')) as f:
    top = json.load(f)
  assert (top['seed'], top['num_seeds']) == (3, 2)
  assert checkpoint.Checkpointer(os.path.join(multi, 'checkpoints'), read_only=True).steps() == [
      3, 6]
  stacked, _ = _state(_config(), multi)
  assert np.asarray(stacked.step).tolist() == [6, 6]
  assert all(leaf.shape[0] == 2 for leaf in jax.tree.leaves(stacked))
  for seed in SEEDS:
    directory = _seed_dir(multi, seed)
    assert sorted(os.listdir(directory)) == ['config.json', 'metrics.jsonl', 'samples',
                                             'tensorboard']
    with open(os.path.join(directory, 'config.json')) as f:
      own = json.load(f)
    assert (own['seed'], own['num_seeds']) == (seed, 1)
    # The seed's config.json is that of the single-seed run of that seed.
    with open(os.path.join(runs['singles'][seed], 'config.json')) as f:
      assert own == json.load(f)
    assert [l['step'] for l in _metrics(directory)] == [2, 4, 6]
    assert sorted(os.listdir(os.path.join(directory, 'samples'))) == ['step_00000003.png',
                                                                      'step_00000006.png']
    assert os.listdir(os.path.join(directory, 'tensorboard'))
    # The returned metrics are each seed's last line.
    last = dict(_metrics(directory)[-1])
    returned = dict(runs['result']['seeds'][seed])
    returned.pop('steps_per_sec')
    assert returned == {k: v for k, v in last.items() if k != 'step'}
  assert runs['result']['stopped'] == {}
  assert _host_record(multi, 6)['stopped'] == {}


# 7. The chunk traces once per call length.


def test_chunk_traces_once_per_length(runs):
  # Events at steps 2, 3, 4, 6 with steps_per_call=2: calls of 2, 1, 1 and 2 steps. (This caught
  # Trainer.run passing its first `active` as a NumPy array: pmap compiled the first call apart
  # from the later ones, which get the replicated array the chunk returns; fixed in train.py.)
  assert runs['traces'] == {2: 1, 1: 1}


# 2. One device against four; 4. SIGTERM and SIGKILL, then an exact resume.

# launch.py under mock data; with a signal, the process sends it to itself when the host asks for
# the indices of minibatch `at` (once per call, before the call: a deterministic moment).
_LAUNCH = r'''
import os, runpy, signal, sys
root, sig, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, root)
import tensorflow_datasets as tfds
from gan_jax import data
if sig != 'none':
  real = data.EpochSampler.indices
  def indices(self, first, count):
    if first == at:
      os.kill(os.getpid(), getattr(signal, sig))
    return real(self, first, count)
  data.EpochSampler.indices = indices
num_examples = int(sys.argv[4])
sys.argv = [os.path.join(root, 'launch.py')] + sys.argv[5:]
with tfds.testing.mock_data(num_examples=num_examples):
  runpy.run_path(sys.argv[0], run_name='__main__')
'''


def _launch(workdir, devices, sig='none', at=-1):
  proc = subprocess.run(
      [sys.executable, '-c', _LAUNCH, ROOT, sig, str(at), str(NUM_EXAMPLES),
       f'--config={os.path.join(ROOT, "experiments", "mnist.py")}', f'--workdir={workdir}',
       *FLAGS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600,
      env={**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'})
  return proc.returncode, proc.stderr


def _same_config(a, b):
  with open(os.path.join(a, 'config.json')) as fa, open(os.path.join(b, 'config.json')) as fb:
    assert json.load(fa) == json.load(fb)


def test_one_device_equals_four(runs, tmp_path):
  one = str(tmp_path / 'one_device')
  rc, err = _launch(one, 1)
  assert rc == 0, err[-3000:]
  assert '1 devices' in err
  _same_config(one, runs['multi'])
  on_four, _ = _state(_config(), runs['multi'])
  on_one, _ = _state(_config(), one)
  chex.assert_trees_all_close(on_one, on_four, rtol=DEVICES_RTOL, atol=DEVICES_ATOL)
  for seed in SEEDS:
    _assert_close_metrics(_metrics(_seed_dir(one, seed)), _metrics(_seed_dir(runs['multi'], seed)),
                          DEVICES_RTOL, DEVICES_ATOL)
    _assert_close_samples(_seed_dir(one, seed), _seed_dir(runs['multi'], seed))


def _sigterm_at(minibatch):
  """EpochSampler.indices that sends this process SIGTERM when asked for minibatch `minibatch`."""
  real = data.EpochSampler.indices

  def indices(self, first, count):
    if first == minibatch:
      os.kill(os.getpid(), signal.SIGTERM)
    return real(self, first, count)

  return indices


def test_sigterm_and_sigkill_then_exact_resume(runs, tmp_path, caplog):
  workdir = str(tmp_path / 'preempted')
  # In-process, SIGTERM as the call 2 -> 3 starts: that call finishes, step 3 is an event (a
  # checkpoint, with step 3's metrics not yet logged), then the run returns.
  with mock.patch.object(data.EpochSampler, 'indices', _sigterm_at(2)):
    result = _run(_config(), workdir)
  assert result['preempted_at'] == 3 and result['stopped'] == {}
  assert 'SIGTERM: saved a checkpoint at step 3' in caplog.text
  pending = _host_record(workdir, 3)['pending']
  assert np.shape(pending['d_loss']) == (1, 2)  # [steps, seeds]
  assert [[l['step'] for l in _metrics(_seed_dir(workdir, s))] for s in SEEDS] == [[2], [2]]
  # launch.py (4 devices) resumes from step 3; SIGKILL as the call 4 -> 6 starts (step 4 logged).
  rc, err = _launch(workdir, 4, 'SIGKILL', 4)  # A config unlike the run's would exit with 2.
  assert rc == -signal.SIGKILL, err[-3000:]
  assert 'Resumed from the checkpoint at step 3' in err
  assert [[l['step'] for l in _metrics(_seed_dir(workdir, s))] for s in SEEDS] == [[2, 4], [2, 4]]
  # The same run again: from step 3 again (its pending metrics), to the end.
  caplog.clear()
  caplog.set_level(logging.INFO, logger='absl')
  _run(_config(), workdir)
  assert 'Resumed from the checkpoint at step 3' in caplog.text
  expected, step = _state(_config(), runs['multi'])
  resumed, resumed_step = _state(_config(), workdir)
  assert step == resumed_step == 6
  chex.assert_trees_all_equal(resumed, expected)  # Bit-identical on CPU.
  for seed in SEEDS:
    assert _metrics(_seed_dir(workdir, seed)) == _metrics(_seed_dir(runs['multi'], seed))
    assert _pngs(_seed_dir(workdir, seed)).keys() == _pngs(_seed_dir(runs['multi'], seed)).keys()
    for name, png in _pngs(_seed_dir(workdir, seed)).items():
      np.testing.assert_array_equal(png, _pngs(_seed_dir(runs['multi'], seed))[name])


def test_resume_with_the_other_member_axis(runs, tmp_path):
  # How the seeds are laid out is not what the run is: a run to step 3 laid out as 'map' resumes
  # as 'vmap' (no refusal) and ends where the run laid out as 'map' throughout ended.
  workdir = str(tmp_path / 'relaid')
  _run(_config(num_steps=3), workdir)
  config = _config()
  config.train.member_axis = 'vmap'
  _run(config, workdir)
  resumed, step = _state(_config(), workdir)
  expected, _ = _state(_config(), runs['multi'])
  assert step == 6
  chex.assert_trees_all_close(resumed, expected, rtol=RTOL, atol=ATOL)


# 5. A non-finite step stops its seed only.


def _poisoned_train_step(bad_seeds, bad_step):
  """train_step.make_train_step whose step gets NaN D parameters as input at step `bad_step` of
  the seeds `bad_seeds` (told apart by their base key, fold_in(key(seed), 1)): the real step then
  computes the NaN loss and the non-finite flag itself."""
  real = train_step.make_train_step
  keys = np.stack([jax.random.key_data(jax.random.fold_in(jax.random.key(s), 1))
                   for s in bad_seeds])

  def make(*args, **kwargs):
    step = real(*args, **kwargs)

    def poisoned(state, batch, rng, hypers):
      bad = (jnp.any(jnp.all(jax.random.key_data(rng) == keys, axis=-1))
             & (state.step + 1 == bad_step))
      d_params = jax.tree.map(lambda p: jnp.where(bad, jnp.nan, p), state.d_params)
      return step(state.replace(d_params=d_params), batch, rng, hypers)

    return poisoned

  return make


def test_non_finite_seed_stops_alone(runs, tmp_path, caplog):
  workdir = str(tmp_path / 'nan')
  # Seed 4 goes non-finite at step 4 (the call 3 -> 4, after the checkpoint at 3).
  with mock.patch.object(train_step, 'make_train_step', _poisoned_train_step([4], 4)):
    with pytest.raises(errors.TrainingError,
                       match=r'Seeds \[4\] stopped early \(seed 4: d_loss at step 4\); the others '
                       r'ran to step 6') as e:
      _run(_config(), workdir)
  assert '\n' not in str(e.value)
  assert 'Seed 4: non-finite d_loss at step 4' in caplog.text
  assert 'kept from step 3' in caplog.text
  reference = runs['multi']
  # Seed 3 went on, as in the run where nothing went wrong.
  _assert_close_metrics(_metrics(_seed_dir(workdir, 3)), _metrics(_seed_dir(reference, 3)))
  _assert_close_samples(_seed_dir(workdir, 3), _seed_dir(reference, 3))
  # Seed 4 logged nothing from its bad step on, and sampled nothing after it.
  assert _metrics(_seed_dir(workdir, 4)) == _metrics(_seed_dir(reference, 4))[:1]
  assert sorted(os.listdir(os.path.join(_seed_dir(workdir, 4), 'samples'))) == [
      'step_00000003.png']
  # The final checkpoint: seed 3 at step 6; seed 4 frozen at step 3, bit for bit its state in the
  # checkpoint at 3 (and that of the run without the NaN).
  final, step = _state(_config(), workdir)
  assert step == 6 and np.asarray(final.step).tolist() == [6, 3]
  expected_final, _ = _state(_config(), reference)
  chex.assert_trees_all_close(state_lib.seed_slice(final, 0),
                              state_lib.seed_slice(expected_final, 0), rtol=RTOL, atol=ATOL)
  at_3, _ = _state(_config(), workdir, 3)
  chex.assert_trees_all_equal(state_lib.seed_slice(final, 1), state_lib.seed_slice(at_3, 1))
  expected_3, _ = _state(_config(), reference, 3)
  chex.assert_trees_all_close(state_lib.seed_slice(final, 1), state_lib.seed_slice(expected_3, 1),
                              rtol=RTOL, atol=ATOL)
  assert _host_record(workdir, 6)['stopped'] == {'4': [4, 'd_loss']}

  # Resumed further (nothing poisoned now): seed 4 stays stopped, seed 3 goes on.
  caplog.clear()
  with pytest.raises(errors.TrainingError, match=r'Seeds \[4\] stopped early \(seed 4: d_loss at '
                     r'step 4\); the others ran to step 8'):
    _run(_config(num_steps=8), workdir)
  final, step = _state(_config(), workdir)
  assert step == 8 and np.asarray(final.step).tolist() == [8, 3]
  chex.assert_trees_all_equal(state_lib.seed_slice(final, 1), state_lib.seed_slice(at_3, 1))
  assert [l['step'] for l in _metrics(_seed_dir(workdir, 3))] == [2, 4, 6, 8]
  assert [l['step'] for l in _metrics(_seed_dir(workdir, 4))] == [2]
  assert 'non-finite' not in caplog.text  # Not reported again as new.


def _chunk_call(member_axis, poisoned_at=None, steps=4, state=None, active=(True, True)):
  """One call of the two-seed chunk (`steps` steps from step 0 or `state`, 4 devices), as the
  Trainer makes it; with `poisoned_at`, seed 4 goes non-finite at that step."""
  exp = experiment.build(_config(), (28, 28, 1), NUM_EXAMPLES)
  images = np.random.default_rng(0).uniform(size=(NUM_EXAMPLES, 28, 28, 1)).astype(np.float32)
  make = _poisoned_train_step([4], poisoned_at) if poisoned_at else train_step.make_train_step
  step = make(exp.g_model, exp.d_model, exp.optimizer, exp.spec)
  chunk = train_step.data_parallel_chunk(step, exp.hypers()[0], member_axis)
  samplers = [data.EpochSampler(NUM_EXAMPLES, exp.config.train.batch_size, s) for s in SEEDS]
  idx = train_step.chunk_indices(samplers, 0, steps, 1, exp.config.train.batch_size)
  rng = jnp.stack([jax.random.fold_in(jax.random.key(s), 1) for s in SEEDS])
  state = exp.initial_state(images) if state is None else state
  (state, active), metrics = chunk(state, jax.device_put(images, exp.replicated), idx,
                                   (rng, exp.hypers()[1]),
                                   jax.device_put(np.array(active), exp.replicated))
  return state, np.asarray(active).tolist(), np.asarray(metrics['finite'])


@pytest.mark.parametrize('member_axis', train_step.MEMBER_AXES)
def test_seed_stops_mid_call_at_its_last_good_step(member_axis):
  # Seed 4 goes non-finite at step 3 of a call of 4 steps: its state is that of step 2 (the call
  # is replayed for it), seed 3's that of step 4, as in calls without the NaN.
  state, active, finite = _chunk_call(member_axis, poisoned_at=3)
  assert active == [True, False]
  assert finite[:3].tolist() == [[True, True], [True, True], [True, False]]
  assert np.asarray(state.step).tolist() == [4, 2]
  clean_4 = _chunk_call(member_axis)[0]
  clean_2 = _chunk_call(member_axis, steps=2)[0]
  chex.assert_trees_all_close(state_lib.seed_slice(state, 0), state_lib.seed_slice(clean_4, 0),
                              rtol=RTOL, atol=ATOL)
  chex.assert_trees_all_close(state_lib.seed_slice(state, 1), state_lib.seed_slice(clean_2, 1),
                              rtol=RTOL, atol=ATOL)
  # Stopped, it keeps that state through later calls, bit for bit; seed 3 goes on.
  frozen = jax.tree.map(np.asarray, state_lib.seed_slice(state, 1))
  later, active, _ = _chunk_call(member_axis, state=state, active=active)
  assert active == [True, False] and np.asarray(later.step).tolist() == [8, 2]
  chex.assert_trees_all_equal(state_lib.seed_slice(later, 1), frozen)


def test_every_seed_non_finite_stops_at_once(tmp_path):
  workdir = str(tmp_path / 'nan')
  with mock.patch.object(train_step, 'make_train_step', _poisoned_train_step(SEEDS, 2)):
    with pytest.raises(errors.TrainingError,
                       match=r'Every seed went non-finite \(seed 3: d_loss at step 2, seed 4: '
                       r'd_loss at step 2\)'):
      _run(_config(), workdir)
  # At once: at the step-2 event, before the first checkpoint (step 3).
  assert checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True).steps() == []
  for seed in SEEDS:
    assert not os.path.exists(os.path.join(_seed_dir(workdir, seed), 'metrics.jsonl'))


# 6. Bad input: one line, nothing written.


def _tree(directory):
  """Every file under `directory` with its content's hash and its mtime."""
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, directory)] = (hashlib.sha256(f.read()).hexdigest(),
                                                 os.stat(path).st_mtime_ns)
  return out


def _bad_configs():
  from experiments import tfd  # pylint: disable=g-import-not-at-top
  zero = _config(num_seeds=0)
  tfd_both = tfd.get_config()
  tfd_both.num_seeds = 2
  tfd_one = tfd.get_config('stage=pretrain')
  tfd_one.num_seeds = 3
  warm = _config()
  warm.model.g_init_from = '/some/run'
  return {
      'zero': (zero, errors.ConfigError, r'^config.num_seeds must be positive, got 0\.$'),
      'tfd': (tfd_both, errors.ConfigError,
              r"^config.num_seeds=2 is not supported for a staged experiment \(stages "
              r"\['pretrain', 'train'\]\) yet"),
      'tfd_one_stage': (tfd_one, errors.ConfigError,
                        r'^config.num_seeds=3 is not supported for a staged experiment'),
      'g_init_from': (warm, errors.ConfigError,
                      r'^config.num_seeds=2 with config.model.g_init_from is not supported'),
  }


@pytest.mark.parametrize('name', ['zero', 'tfd', 'tfd_one_stage', 'g_init_from'])
def test_bad_config_writes_nothing(tmp_path, name):
  config, error, message = _bad_configs()[name]
  workdir = str(tmp_path / 'run')
  with pytest.raises(error, match=message) as e:
    _run(config, workdir)
  assert '\n' not in str(e.value)
  assert not os.path.exists(workdir)


def test_several_processes_refused():
  with mock.patch.object(validation.jax, 'process_count', return_value=2):
    with pytest.raises(errors.ConfigError,
                       match=r'^config.num_seeds=2 across 2 processes is not supported yet'):
      validation.validate(_config(), 4)
    validation.validate(_config(num_seeds=1), 4)


@pytest.mark.parametrize('source,num_seeds,change', [
    ('multi', 3, 'num_seeds: 2 -> 3'),
    ('multi', 1, 'num_seeds: 2 -> 1'),
    ('single', 2, 'num_seeds: 1 -> 2'),
])
def test_resume_with_other_num_seeds_refused(runs, tmp_path, source, num_seeds, change):
  original = runs['multi'] if source == 'multi' else runs['singles'][SEEDS[0]]
  workdir = str(tmp_path / 'run')
  shutil.copytree(original, workdir)
  before = _tree(workdir)
  old, new = change.split(': ')[1].split(' -> ')
  for allow in (False, True):  # Not even --allow_config_change: the state has another shape.
    with pytest.raises(errors.WorkdirError, match=f'holds a run of num_seeds={old}, which '
                       f'num_seeds={new} cannot resume .* even with --allow_config_change') as e:
      _run(_config(num_seeds=num_seeds), workdir, allow_config_change=allow)
    assert '\n' not in str(e.value)
    assert _tree(workdir) == before
