"""Runs launch.py under tfds.testing.mock_data, so subprocess tests need no real dataset.

  python tests/mock_launch.py NUM_EXAMPLES [launch.py flags...]
"""

import os
import runpy
import sys

import tensorflow_datasets as tfds

if __name__ == '__main__':
  num_examples = int(sys.argv[1])
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path.insert(0, root)
  sys.argv = [os.path.join(root, 'launch.py')] + sys.argv[2:]
  with tfds.testing.mock_data(num_examples=num_examples):
    runpy.run_path(sys.argv[0], run_name='__main__')
