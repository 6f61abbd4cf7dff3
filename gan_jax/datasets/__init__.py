"""TFDS builders for datasets outside the TFDS catalogue.

Importing this package registers them with TFDS (e.g. `tfds.builder('tfd')`).
"""

from gan_jax.datasets import tfd  # Registers the 'tfd' builder.
from gan_jax.datasets.tfd import find_manual_file
from gan_jax.datasets.tfd import manual_file_path
from gan_jax.datasets.tfd import missing_file_message
from gan_jax.datasets.tfd import read_tfd_mat
