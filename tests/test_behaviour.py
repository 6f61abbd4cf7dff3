"""The architecture change kept behaviour: the same commands write the same numbers and images.

tests/golden/behaviour.json was recorded by tests/behaviour.py on the code before the change.
Bit-identity holds for the same XLA CPU build, so the comparison runs where the recording's jax
and jaxlib versions are installed (and skips, saying so, elsewhere).
"""

import json

import jax
import jaxlib
import pytest

import behaviour
from conftest import REAL_MNIST


@pytest.mark.skipif(not REAL_MNIST, reason='set TFDS_DATA_DIR to a TFDS dir holding mnist')
def test_same_files_as_before_the_architecture_change(tmp_path):
  with open(behaviour.GOLDEN) as f:
    golden = json.load(f)
  recorded = golden['environment']
  if (recorded['jax'], recorded['jaxlib']) != (jax.__version__, jaxlib.__version__):
    pytest.skip(f'recorded with jax {recorded["jax"]} / jaxlib {recorded["jaxlib"]}, this is '
                f'{jax.__version__} / {jaxlib.__version__}: bit-identity is not defined across '
                'XLA builds (record anew with tests/behaviour.py --write)')
  now = behaviour.fingerprint(str(tmp_path))
  for part in ('simultaneous', 'alternating'):
    assert now[part]['metrics'] == golden['fingerprint'][part]['metrics'], part
    assert now[part]['samples'] == golden['fingerprint'][part]['samples'], part
  assert now['parzen'] == golden['fingerprint']['parzen']
