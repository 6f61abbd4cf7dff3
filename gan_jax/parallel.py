"""Data parallelism over devices and processes: the one place gan_jax maps over devices.

The training chunk and the Parzen kernel are mapped over the local devices with `jax.pmap` here
and nowhere else, so moving to `jax.shard_map` is a change to this module alone. The mapped axis
is named AXIS; per-device code reduces over it (`jax.lax.pmean(x, AXIS)`) and derives its
per-device keys from `jax.lax.axis_index(AXIS)`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np

AXIS = 'batch'


def over_devices(fn: Callable, in_axes, out_axes=0, donate_argnums: Sequence[int] = (),
                 devices: Sequence[jax.Device] | None = None) -> Callable:
  """`fn` mapped over devices along AXIS (in_axes / out_axes as `jax.pmap`'s; None = shared)."""
  return jax.pmap(fn, axis_name=AXIS, in_axes=in_axes, out_axes=out_axes,
                  donate_argnums=tuple(donate_argnums),
                  devices=None if devices is None else list(devices))


def host_local(tree):
  """This process's copy of a replicated pytree.

  With several processes a replicated array is not fully addressable from any one of them; the
  work only one process does (sampling, evaluation, logging) reads its own copy.
  """
  return jax.tree.map(
      lambda x: x.addressable_data(0) if isinstance(x, jax.Array) and not x.is_fully_addressable
      else x, tree)


def process_devices() -> np.ndarray:
  """Indices, among all devices, of this process's devices: the slices of a global batch it feeds."""
  return np.array([i for i, d in enumerate(jax.devices())
                   if d.process_index == jax.process_index()])
