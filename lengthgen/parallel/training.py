"""Data-parallel plumbing of ``lengthgen.train``: shard the state, assemble global batches.

Used only when the run sees more than one device (``jax.device_count() > 1``); a single-device
run never touches it, so its numbers are exactly those of the plain loop.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lengthgen.parallel import mesh as mesh_lib


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """A "data" mesh over every device, the state's shardings and the batch sharding.

  Attributes:
    mesh: the 1-D "data" mesh.
    mode: ``"replicated"`` or ``"fsdp"`` (``mesh_lib.PARAM_SHARDINGS``).
    model_axis: the state and batch carry a leading seed axis (``num_seeds`` > 1).
  """

  mesh: jax.sharding.Mesh
  mode: str
  model_axis: bool

  @classmethod
  def create(cls, mode: str, *, model_axis: bool) -> "DataParallel":
    return cls(mesh_lib.make_data_mesh(), mode, model_axis)

  def state_shardings(self, state):
    return mesh_lib.state_shardings(state, self.mesh, self.mode, model_axis=self.model_axis)

  def put_state(self, state):
    """The state laid out on the mesh (every process holds the same initial values)."""
    return _put(state, self.state_shardings(state))

  def put_replicated(self, tree):
    return _put(tree, jax.tree.map(lambda _: mesh_lib.replicated(self.mesh), tree))

  def inputs(self, host_inputs):
    return mesh_lib.global_batch(host_inputs, self.mesh, model_axis=self.model_axis)

  def jit_step(self, step, state, *, donate: bool = True):
    """``step(state, inputs, key)`` jitted so the state keeps its layout; metrics replicated."""
    return jax.jit(step, donate_argnums=0 if donate else (),
                   out_shardings=(self.state_shardings(state), mesh_lib.replicated(self.mesh)))

  def gather(self, tree):
    """Every leaf fully replicated (for evaluation and host reads)."""
    return jax.jit(lambda x: x, out_shardings=mesh_lib.replicated(self.mesh))(tree)


def _put(tree, shardings):
  """Host values (equal on every process) onto global shardings, PRNG keys included.

  ``jax.device_put`` refuses shardings with devices of other processes; a jitted identity on
  host numpy arrays (taken as equal everywhere) lays them out instead.
  """
  leaves, treedef = jax.tree.flatten(tree)
  is_key = [jax.dtypes.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)
            for x in leaves]
  impls = [jax.random.key_impl(x) if k else None for x, k in zip(leaves, is_key)]
  host = [np.asarray(jax.random.key_data(x) if k else x) for x, k in zip(leaves, is_key)]

  def rebuild(host):
    return treedef.unflatten([jax.random.wrap_key_data(x, impl=impl) if impl is not None
                              else x for x, impl in zip(host, impls)])

  return jax.jit(rebuild, out_shardings=shardings)(host)
