"""Data-parallel meshes: the global batch is split over a "data" axis of every device.

Parameters (and the optimizer state shaped like them) are either replicated on every device
(``"replicated"``) or split FSDP-style over the same "data" axis (``"fsdp"``): each array is
cut along its largest axis that the device count divides; arrays with no such axis (scalars,
small biases) stay replicated. XLA inserts the all-gathers and reduce-scatters.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding

PARAM_SHARDINGS = ("replicated", "fsdp")
DATA_AXIS = "data"


def make_data_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh named "data" over ``devices`` (default: every device of every process)."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, jax.P())


def _leaf_spec(shape, n: int, mode: str, skip: int):
  if mode == "replicated" or n == 1:
    return jax.P()
  axes = [a for a in range(skip, len(shape)) if shape[a] % n == 0 and shape[a] >= n]
  if not axes:
    return jax.P()
  best = max(axes, key=lambda a: (shape[a], -a))
  return jax.P(*[DATA_AXIS if a == best else None for a in range(len(shape))])


def state_shardings(state, mesh, mode: str, *, model_axis: bool = False):
  """The NamedSharding of every leaf of a train state (params and optimizer state alike).

  Args:
    state: a pytree of arrays (or ShapeDtypeStructs).
    mesh: a mesh with a "data" axis.
    mode: one of ``PARAM_SHARDINGS``.
    model_axis: leaves carry a leading seed axis (``num_seeds`` > 1) that is never split.
  """
  if mode not in PARAM_SHARDINGS:
    raise ValueError(f"unknown param sharding {mode!r}; valid values: "
                     f"{', '.join(PARAM_SHARDINGS)}")
  n = mesh.shape[DATA_AXIS]
  return jax.tree.map(
      lambda x: NamedSharding(mesh, _leaf_spec(np.shape(x), n, mode, int(model_axis))), state)


def batch_sharding(mesh, *, model_axis: bool = False) -> NamedSharding:
  """The batch axis (axis 0, or 1 after a seed axis) split over "data"."""
  return NamedSharding(mesh, jax.P(None, DATA_AXIS) if model_axis else jax.P(DATA_AXIS))


def global_batch(inputs: dict[str, np.ndarray], mesh, *, model_axis: bool = False) -> dict:
  """Global jax.Arrays from the full (seed, step) batch that every process can regenerate.

  Each process hands ``jax.make_array_from_process_local_data`` only the rows its devices
  hold (its contiguous slice of the batch axis), so no batch crosses the network.
  """
  sharding = batch_sharding(mesh, model_axis=model_axis)
  axis = 1 if model_axis else 0
  out = {}
  for name, value in inputs.items():
    value = np.asarray(value)
    size = value.shape[axis]
    n = mesh.shape[DATA_AXIS]
    if size % n:
      raise ValueError(f"config.train.batch_size {size} must be divisible by the {n} devices "
                       f"of the data axis")
    index = sharding.addressable_devices_indices_map(value.shape)
    rows = sorted({(s[axis].start or 0, s[axis].stop or size) for s in index.values()})
    lo, hi = rows[0][0], rows[-1][1]
    local = np.take(value, np.arange(lo, hi), axis=axis)
    out[name] = jax.make_array_from_process_local_data(sharding, local, value.shape)
  return out
