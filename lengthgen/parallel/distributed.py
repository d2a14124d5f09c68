"""Multi-host start-up through ``jax.distributed.initialize``.

The coordinator address, process count and process id come from absl flags of
``lengthgen-train`` (``--coordinator_address``, ``--num_processes``, ``--process_id``)
or, when those are not given, from the environment variables ``LENGTHGEN_COORDINATOR``,
``LENGTHGEN_NUM_PROCESSES`` and ``LENGTHGEN_PROCESS_ID``. With neither, JAX's own cluster
detection (SLURM, Open MPI, Cloud TPU) is used only if ``auto`` is set; otherwise the run
stays single-process.
"""

from __future__ import annotations

import os

import jax


def initialize_from_env(coordinator_address: str | None = None,
                        num_processes: int | None = None, process_id: int | None = None,
                        *, auto: bool = False) -> bool:
  """Joins a multi-process run; returns True if ``jax.distributed`` was initialized."""
  env = os.environ
  coordinator_address = coordinator_address or env.get("LENGTHGEN_COORDINATOR")
  if num_processes is None and "LENGTHGEN_NUM_PROCESSES" in env:
    num_processes = int(env["LENGTHGEN_NUM_PROCESSES"])
  if process_id is None and "LENGTHGEN_PROCESS_ID" in env:
    process_id = int(env["LENGTHGEN_PROCESS_ID"])
  given = [v is not None for v in (coordinator_address, num_processes, process_id)]
  if any(given) and not all(given):
    raise ValueError("multi-host runs need all of --coordinator_address, --num_processes and "
                     "--process_id (or LENGTHGEN_COORDINATOR, LENGTHGEN_NUM_PROCESSES, "
                     "LENGTHGEN_PROCESS_ID)")
  if all(given):
    if not 0 <= process_id < num_processes:
      raise ValueError(f"process_id {process_id} must be in [0, {num_processes})")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
    return True
  if auto:
    jax.distributed.initialize()
    return True
  return False


def is_main_process() -> bool:
  """Process 0 alone writes config.json, metrics, results and figures."""
  return jax.process_index() == 0
