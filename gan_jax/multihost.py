"""Starting JAX on several processes (hosts), before anything touches a device."""

from __future__ import annotations

from absl import logging
import jax


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, auto: bool = False) -> bool:
  """Calls `jax.distributed.initialize` when asked; returns whether it did.

  Args:
    coordinator_address: 'host:port' of process 0.
    num_processes: the number of processes.
    process_id: this process's index.
    auto: initialise with no arguments, letting JAX detect them (SLURM, Cloud TPU, Open MPI,
      Kubernetes JobSet, ...).

  Returns:
    True if JAX was initialised for several processes.
  """
  given = [a is not None for a in (coordinator_address, num_processes, process_id)]
  if not any(given) and not auto:
    return False
  if any(given) and not all(given):
    raise ValueError('Give all of --coordinator_address, --num_processes and --process_id, or '
                     'none of them (--distributed lets JAX detect them on a cluster).')
  # CPU devices need a collectives backend to talk across processes; GPUs and TPUs ignore this.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if all(given):
    jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                               process_id=process_id)
  else:
    jax.distributed.initialize()
  logging.info('Process %d of %d; %d local and %d global devices.', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return True
